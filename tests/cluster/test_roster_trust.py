"""Rosters between real nodes: a member set up from a later roster gets the earlier ones from
its peers, so its provenance bundles verify against the consortium's first roster; a removed
member's node learns it was removed, says so, and refuses submissions, and the others show its
log as removed; nodes whose roster expired keep replicating, say so, and take only a fresh
successor."""

from __future__ import annotations

import time
import urllib.request
from pathlib import Path

import pytest

from node.app.consortium import free_port
from node.app.procs import NodeGroup
from node.cli.main import main
from node.config import NodeConfig, load_config
from protocol.roster import SignedRoster
from tests.cluster.support import api, consortium, found, md5_item, status, submit, wait_until


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def draft(
    capsys: pytest.CaptureFixture[str],
    node: NodeConfig,
    out: Path,
    keys: tuple[Path, ...],
    *change: str,
) -> Path:
    """Draft a change of `node`'s roster and sign it with `keys`."""
    current = out.with_suffix(".current")
    assert (
        cli(capsys, "admin", "current", "--out", str(current), "--node", str(node.directory))[0]
        == 0
    )
    code, text = cli(capsys, "admin", change[0], str(current), *change[1:], "--out", str(out))
    assert code == 0, text
    for key in keys:
        assert cli(capsys, "admin", "sign", str(out), "--key", str(key))[0] == 0
    return out


def publish(
    capsys: pytest.CaptureFixture[str],
    node: NodeConfig,
    out: Path,
    keys: tuple[Path, ...],
    *change: str,
) -> Path:
    """Draft a change of `node`'s roster, sign it with `keys` and publish it at `node`."""
    draft(capsys, node, out, keys, *change)
    code, text = cli(capsys, "admin", "publish", str(out), "--node", str(node.directory))
    assert code == 0, text
    return out


def chain_versions(config: NodeConfig) -> list[int]:
    chain = api(config).call("GET", "/v1/roster/chain")["rosters"]
    return [SignedRoster.decode(bytes.fromhex(raw)).roster.version for raw in chain]


def test_a_node_offered_a_new_roster_by_two_peers_at_once_keeps_it_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = consortium(tmp_path, 3, sync_interval_s=0.5, sync_jitter_s=0.0)
    a, b, c = setup.configs
    with NodeGroup([a, b]):
        publish(capsys, a, tmp_path / "v2.roster", setup.admin_key_paths, "renew")
        wait_until(lambda: chain_versions(b) == [1, 2], 30, "v2 at b")
        # c starts behind both: its first round asks a and b at once, and both offer v2.
        with NodeGroup([c]):
            wait_until(lambda: status(c)["roster"]["version"] == 2, 30, "v2 at c")
            time.sleep(1.0)  # any second copy would be appended by now
            assert chain_versions(c) == [1, 2]


def test_a_member_set_up_from_a_later_roster_makes_bundles_a_genesis_pinned_auditor_verifies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = consortium(tmp_path, 2, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b = setup.configs
    genesis = tmp_path / "genesis.roster"
    genesis.write_bytes(a.roster_path.read_bytes())
    new_dir = tmp_path / "newcomer"
    code, _ = cli(capsys, "init", str(new_dir), "--member-id", "newcomer",
                  "--peer-port", str(free_port()), "--operator-port", str(free_port()))  # fmt: skip
    assert code == 0
    newcomer = load_config(new_dir)
    with NodeGroup(setup.configs):
        v2 = publish(capsys, a, tmp_path / "v2.roster", setup.admin_key_paths,
                     "add-member", "--join", str(new_dir / "join-request.json"))  # fmt: skip
        wait_until(lambda: chain_versions(b) == [1, 2], 30, "v2 spread")
        new_dir.joinpath(newcomer.roster_path.name).write_bytes(v2.read_bytes())
        with NodeGroup([newcomer]):
            api(newcomer).call("POST", "/v1/sync")  # `init` set a 30 s interval: one more round now
            wait_until(lambda: chain_versions(newcomer) == [1, 2], 60, "the earlier roster")
            own, theirs = md5_item("the newcomer's takedown"), md5_item("b's takedown")
            submit(newcomer, [own])
            submit(b, [theirs])
            wait_until(lambda: found(newcomer, theirs), 30, "b's takedown at the newcomer")
            for item in (own, theirs):
                bundle = tmp_path / f"{item['value']}.bundle"
                code, text = cli(capsys, "audit", "proof", f"md5:{item['value']}",
                                 "--out", str(bundle), "--node", str(new_dir))  # fmt: skip
                assert code == 0, text
                code, text = cli(capsys, "audit", "verify-proof", str(bundle),
                                 "--genesis", str(genesis))  # fmt: skip
                assert code == 0 and "valid" in text, text
    # And it keeps them: restarted, its chain still starts at the first roster.
    with NodeGroup([a, newcomer]):
        assert chain_versions(newcomer) == [1, 2]


def test_a_removed_members_node_says_it_is_removed_and_refuses_submissions(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = consortium(tmp_path, 3, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b, gone = setup.configs
    with NodeGroup(setup.configs):
        before = md5_item("before the removal")
        submit(gone, [before])
        wait_until(lambda: found(a, before) and found(b, before), 30, "before the removal")
        publish(capsys, a, tmp_path / "v2.roster", setup.admin_key_paths,
                "remove-member", "--member", gone.member_id)  # fmt: skip

        def told() -> bool:
            return status(gone)["roster"]["version"] == 2

        wait_until(told, 30, "the removed member's node learns of the roster removing it")
        now = status(gone)
        assert now["in_roster"] is False
        assert any("NOT IN roster version 2" in alert for alert in now["alerts"])

        def refused_by_every_peer() -> bool:
            peers = status(gone)["peers"]
            return set(peers) == {a.member_id, b.member_id} and all(
                p["refusing"] and p["reachable"] is False for p in peers.values()
            )

        wait_until(refused_by_every_peer, 30, "peers shown as refusing us")
        code, text = cli(capsys, "submit", "md5:" + md5_item("after")["value"],
                         "--label", "terrorist-attack", "--node", str(gone.directory))  # fmt: skip
        assert code != 0 and "not in roster version 2" in text, text
        code, text = cli(capsys, "status", "--node", str(gone.directory))
        assert "NOT IN ROSTER" in text and "REFUSES US" in text, text
        metrics = _metrics(gone)
        assert "hashmesh_in_roster 0.0" in metrics

        # The others keep its log, marked removed rather than up to date.
        wait_until(lambda: status(b)["roster"]["version"] == 2, 30, "v2 at b")
        for config in (a, b):
            log = status(config)["logs"][gone.origin]
            assert log["removed"] is True and log["member"] is None and log["size"] == 1
    # Restarted, the removed member's node starts, still saying so.
    with NodeGroup([gone]):
        assert status(gone)["in_roster"] is False


def test_nodes_whose_roster_expired_keep_replicating_alert_and_take_only_a_fresh_successor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = consortium(tmp_path, 2, valid_days=20 / 86_400, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b = setup.configs
    with NodeGroup(setup.configs):
        wait_until(lambda: status(a)["roster"]["expired"], 60, "the roster expires")
        assert any("has EXPIRED" in alert for alert in status(a)["alerts"])
        assert 'hashmesh_roster_expired{version="1"} 1.0' in _metrics(a)
        item = md5_item("after the expiry")
        submit(a, [item])
        wait_until(lambda: found(b, item), 30, "replicated under an expired roster")

        keys = setup.admin_key_paths
        stale = draft(capsys, a, tmp_path / "stale.roster", keys, "renew", "--valid-days", "1e-5")
        time.sleep(1.5)  # 1e-5 days is 0.864 s: it expires before it is offered
        code, text = cli(capsys, "admin", "publish", str(stale), "--node", str(a.directory))
        assert code != 0 and "expired" in text and status(a)["roster"]["version"] == 1, text
        publish(capsys, a, tmp_path / "v2.roster", keys, "renew")
        for config in (a, b):
            wait_until(lambda cfg=config: status(cfg)["roster"]["version"] == 2, 30, "v2 spread")
            assert not status(config)["roster"]["expired"]


def _metrics(config: NodeConfig) -> str:
    token = config.token_path.read_text().strip()
    request = urllib.request.Request(
        config.operator_url + "/metrics",
        headers={"Authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # loopback
        return str(response.read().decode())
