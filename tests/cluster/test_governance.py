"""The roster's life on a running consortium, through the CLI: onboarding a member by a
threshold of admins, refusing under-signed, forged and rolled-back rosters, removing a member,
rotating a member's checkpoint key, declaring a key compromised, and replacing the admins."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from node.app.consortium import free_port
from node.app.procs import NodeGroup
from node.cli.main import main
from node.config import load_config
from node.errors import RequestError
from tests.cluster.support import api, consortium, found, md5_item, status, submit, wait_until


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def draft(capsys: pytest.CaptureFixture[str], node: Path, out: Path, *change: str) -> Path:
    current = out.with_suffix(".current")
    assert cli(capsys, "admin", "current", "--out", str(current), "--node", str(node))[0] == 0
    code, text = cli(capsys, "admin", change[0], str(current), *change[1:], "--out", str(out))
    assert code == 0, text
    return out


def sign(capsys: pytest.CaptureFixture[str], roster: Path, *keys: Path) -> None:
    for key in keys:
        assert cli(capsys, "admin", "sign", str(roster), "--key", str(key))[0] == 0


def roster_version(config: object) -> int:
    return int(status(config)["roster"]["version"])


def test_onboarding_refusals_and_removal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = consortium(tmp_path, 3, admins=3, threshold=2, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b, c = setup.configs
    admin1, admin2, admin3 = setup.admin_key_paths
    new_dir = tmp_path / "newcomer"
    code, _ = cli(capsys, "init", str(new_dir), "--member-id", "newcomer",
                  "--peer-port", str(free_port()), "--operator-port", str(free_port()))  # fmt: skip
    assert code == 0
    newcomer = load_config(new_dir)
    with NodeGroup(setup.configs):
        v2 = draft(capsys, a.directory, tmp_path / "v2.roster", "add-member",
                   "--join", str(new_dir / "join-request.json"))  # fmt: skip
        sign(capsys, v2, admin1)
        code, out = cli(capsys, "admin", "publish", str(v2), "--node", str(a.directory))
        assert code == 4 and "threshold" in out  # one signature of two: refused
        sign(capsys, v2, admin3)
        assert cli(capsys, "admin", "publish", str(v2), "--node", str(a.directory))[0] == 0
        for config in (b, c):
            wait_until(lambda cfg=config: roster_version(cfg) == 2, 30, "v2 spread")

        # Forged (signed by strangers) and rolled-back rosters are refused.
        forged = draft(capsys, b.directory, tmp_path / "forged.roster", "renew")
        for i in range(2):
            key = tmp_path / f"stranger{i}.key"
            assert cli(capsys, "admin", "keygen", f"stranger{i}", "--out", str(key))[0] == 0
            sign(capsys, forged, key)
        code, out = cli(capsys, "admin", "publish", str(forged), "--node", str(b.directory))
        assert code == 4 and "threshold" in out
        code, out = cli(capsys, "admin", "publish", str(a.roster_path), "--node", str(b.directory))
        assert code == 0 and "already known" in out and roster_version(b) == 2
        stale = tmp_path / "stale.roster"
        shutil.copy(v2, stale)
        sign(capsys, stale, admin2)  # same version 2, other bytes: a rollback attempt
        code, out = cli(capsys, "admin", "publish", str(stale), "--node", str(b.directory))
        assert code == 4 and "not newer" in out

        # The newcomer starts from the roster that names it and joins the exchange.
        shutil.copy(v2, newcomer.roster_path)
        with NodeGroup([newcomer]):
            item = md5_item("for the newcomer")
            submit(b, [item])
            wait_until(lambda: found(newcomer, item), 30, "newcomer receives")
            own = md5_item("from the newcomer")
            submit(newcomer, [own])
            wait_until(lambda: found(a, own), 30, "newcomer's takedown spreads")

            v3 = draft(capsys, c.directory, tmp_path / "v3.roster", "remove-member",
                       "--member", "newcomer")  # fmt: skip
            sign(capsys, v3, admin2, admin3)
            assert cli(capsys, "admin", "publish", str(v3), "--node", str(c.directory))[0] == 0
            for config in (a, b):
                wait_until(lambda cfg=config: roster_version(cfg) == 3, 30, "v3 spread")
            # A peer that took v3 sends it to the member it removes, whose node then refuses
            # submissions that no peer would take.
            wait_until(lambda: roster_version(newcomer) == 3, 30, "the newcomer learns of v3")
            with pytest.raises(RequestError, match="403"):
                submit(newcomer, [md5_item("after removal")])

            def refused() -> bool:
                peers = status(newcomer)["peers"]
                return all("unknown member" in str(p["last_error"]) for p in peers.values())

            # Its next round (the newcomer syncs every 30 s) meets the refusals: ask for it now.
            api(newcomer).call("POST", "/v1/sync")
            wait_until(refused, 30, "a removed member's requests are refused")


def test_key_rotation_compromise_and_new_admins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = consortium(tmp_path, 3, admins=2, threshold=2, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b, c = setup.configs
    admin1, admin2 = setup.admin_key_paths
    with NodeGroup(setup.configs):
        before = md5_item("before rotation")
        submit(b, [before])
        wait_until(lambda: found(a, before), 30, "before rotation")
        code, out = cli(capsys, "keys", "rotate", "--node", str(b.directory), "--json")
        rotation = json.loads(out)
        assert code == 0 and rotation["after_size"] == 1
        waiting = md5_item("during rotation")
        submit(b, [waiting])  # acknowledged, but not signed with a key about to retire
        wait_until(lambda: any("wait for a checkpoint" in x for x in status(b)["alerts"]), 30, "!")
        assert not found(a, waiting)
        v2 = draft(capsys, a.directory, tmp_path / "v2.roster", "rotate-key", "--member",
                   b.member_id, "--new-key", rotation["new_key"], "--after-size", "1")  # fmt: skip
        sign(capsys, v2, admin1, admin2)
        assert cli(capsys, "admin", "publish", str(v2), "--node", str(a.directory))[0] == 0
        wait_until(lambda: found(a, waiting) and found(c, waiting), 30, "signed with the new key")
        assert (b.directory / "keys" / "checkpoint.0.old.key").exists()

        # c's key is declared compromised from its current size: nothing beyond is accepted.
        early = md5_item("c before compromise")
        submit(c, [early])
        wait_until(lambda: found(a, early), 30, "c's honest entry")
        v3 = draft(capsys, a.directory, tmp_path / "v3.roster", "compromise-key",
                   "--member", c.member_id, "--from-size", "1")  # fmt: skip
        sign(capsys, v3, admin1, admin2)
        assert cli(capsys, "admin", "publish", str(v3), "--node", str(a.directory))[0] == 0
        wait_until(lambda: roster_version(c) == 3, 30, "v3 at c")
        late = md5_item("c after compromise")
        submit(c, [late])
        wait_until(lambda: any("wait for a checkpoint" in x for x in status(c)["alerts"]), 30, "c")
        assert found(a, early) and not found(a, late)

        # New admins and threshold: v4 must carry 2 of the old admins and 1 of the new.
        new_admin = tmp_path / "new-admin.key"
        assert cli(capsys, "admin", "keygen", "new-admin", "--out", str(new_admin))[0] == 0
        v4 = draft(capsys, a.directory, tmp_path / "v4.roster", "set-admins",
                   "--admin", str(new_admin.with_suffix(".pub")), "--threshold", "1")  # fmt: skip
        sign(capsys, v4, admin1, admin2)
        code, out = cli(capsys, "admin", "publish", str(v4), "--node", str(a.directory))
        assert code == 4 and "its own" in out
        sign(capsys, v4, new_admin)
        assert cli(capsys, "admin", "publish", str(v4), "--node", str(a.directory))[0] == 0
        v5 = draft(capsys, a.directory, tmp_path / "v5.roster", "renew")
        sign(capsys, v5, admin1, admin2)  # the old admins no longer count
        code, out = cli(capsys, "admin", "publish", str(v5), "--node", str(a.directory))
        assert code == 4 and "threshold" in out
