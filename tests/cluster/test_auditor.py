"""An auditor in the roster runs a node that reads every member's log and writes nothing: it
catches up on every log, its copy passes `audit verify`, and its attempts to write (submit,
push, offer a roster) are refused with 403. And an outside auditor holding only the genesis
roster verifies provenance bundles from every node through every kind of roster change."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from node.app.consortium import free_port
from node.app.procs import NodeGroup
from node.cli.main import main
from node.config import NodeConfig, load_config
from node.core import wire
from node.errors import RequestError
from tests.cluster.support import consortium, found, md5_item, roots, submit, wait_until
from tests.cluster.test_compromise import publish
from tests.cluster.test_governance import cli, draft
from tests.cluster.test_hostile import Rogue, _page, _send, _signed


def test_an_auditor_reads_every_log_and_may_write_nothing(tmp_path: Path) -> None:
    setup = consortium(tmp_path, 2, auditors=1, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b, auditor = setup.configs
    with NodeGroup(setup.configs):
        submit(a, [md5_item(f"a{i}") for i in range(30)])
        submit(b, [md5_item(f"b{i}") for i in range(20)])

        def audited() -> dict[str, tuple[int, str]]:
            return {o: r for o, r in roots(auditor).items() if o in (a.origin, b.origin)}

        def complete() -> bool:
            return audited() == {a.origin: roots(a)[a.origin], b.origin: roots(b)[b.origin]}

        wait_until(complete, 30, "auditor holds every log")
        with pytest.raises(RequestError, match="403"):
            submit(auditor, [md5_item("an auditor's takedown")])
        # Its node key reads through the peer API but cannot write.
        as_peer = Rogue(auditor)
        path = "/v1/checkpoints"
        headers = _signed(a, auditor.member_id, as_peer.node_key, "GET", path)
        code, body = _send(a, "GET", path, headers=headers)
        assert code == 200 and len(wire.decode_vector(body, 1 << 20).checkpoints) >= 2
        code, body = as_peer.push(b, _page(as_peer, [1, 2]))
        assert code == 403 and b"read-only" in body
    assert main(["audit", "verify", str(auditor.directory)]) == 0


def test_a_genesis_only_auditor_verifies_bundles_from_every_node_through_roster_changes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = consortium(tmp_path, 2, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b = setup.configs
    (admin,) = setup.admin_key_paths
    genesis = tmp_path / "genesis.bin"
    genesis.write_bytes(setup.roster)
    new_dir = tmp_path / "newcomer"
    code, _ = cli(capsys, "init", str(new_dir), "--member-id", "newcomer",
                  "--peer-port", str(free_port()), "--operator-port", str(free_port()))  # fmt: skip
    assert code == 0
    newcomer = load_config(new_dir)
    checked = 0

    def verified(nodes: tuple[NodeConfig, ...], *items: dict[str, str]) -> None:
        nonlocal checked
        for node in nodes:
            for item in items:
                checked += 1
                out = tmp_path / f"bundle{checked}.json"
                hash_arg = f"md5:{item['value']}"
                code, text = cli(capsys, "audit", "proof", hash_arg, "--out", str(out),
                                 "--node", str(node.directory), "--json")  # fmt: skip
                assert code == 0, text
                # Every node serves the chain from the genesis, the newcomer too (it fetched
                # the versions before its own from a peer): the bundle carries it as served.
                assert "WARNING" not in text and '"first_roster_version": 1' in text, text
                code, text = cli(
                    capsys, "audit", "verify-proof", str(out), "--genesis", str(genesis)
                )
                assert code == 0, f"{node.member_id} {item}: {text}"

    ia, ib = md5_item("a0"), md5_item("b0")
    with NodeGroup(setup.configs):
        submit(a, [ia])
        submit(b, [ib])
        wait_until(lambda: found(a, ib) and found(b, ia), 30, "first entries")
        verified((a, b), ia, ib)

        # Add a member: its node starts from the roster that names it.
        v2 = draft(capsys, a.directory, tmp_path / "v2.roster", "add-member",
                   "--join", str(new_dir / "join-request.json"))  # fmt: skip
        publish(capsys, v2, admin, a, b)
        shutil.copy(v2, newcomer.roster_path)
        new_item = md5_item("newcomer's")
        with NodeGroup([newcomer]):
            wait_until(lambda: found(newcomer, ia), 30, "the newcomer catches up")
            submit(newcomer, [new_item])
            wait_until(lambda: found(a, new_item) and found(b, new_item), 30, "it spreads")
            verified((a, b, newcomer), ia, ib, new_item)

            # Remove it: its entries stay provable, judged by the last roster naming it.
            v3 = draft(capsys, a.directory, tmp_path / "v3.roster", "remove-member",
                       "--member", "newcomer")  # fmt: skip
            publish(capsys, v3, admin, a, b)
        verified((a, b), new_item)

        # Rotate b's key, then declare a's compromised from 1 and re-key it.
        code, out = cli(capsys, "keys", "rotate", "--node", str(b.directory), "--json")
        assert code == 0, out
        key = json.loads(out)["new_key"]
        v4 = draft(capsys, a.directory, tmp_path / "v4.roster", "rotate-key", "--member",
                   b.member_id, "--new-key", key, "--after-size", "1")  # fmt: skip
        publish(capsys, v4, admin, a, b)
        ib1, ia1, ia2 = md5_item("b1"), md5_item("a1"), md5_item("a2")
        submit(b, [ib1])
        submit(a, [ia1])
        wait_until(lambda: found(a, ib1) and found(b, ia1), 30, "b's new key signs")
        verified((a, b), ib, ib1)

        v5 = draft(capsys, a.directory, tmp_path / "v5.roster", "compromise-key",
                   "--member", a.member_id, "--from-size", "1")  # fmt: skip
        publish(capsys, v5, admin, a, b)
        verified((a, b), ia)
        code, out = cli(capsys, "keys", "rotate", "--node", str(a.directory), "--json")
        assert code == 0, out
        key = json.loads(out)["new_key"]
        v6 = draft(capsys, b.directory, tmp_path / "v6.roster", "rotate-key", "--member",
                   a.member_id, "--new-key", key, "--after-size", "1")  # fmt: skip
        publish(capsys, v6, admin, a, b)
        submit(a, [ia2])
        wait_until(lambda: found(b, ia2), 30, "a's new key signs")
        verified((a, b), ia, ia1, ia2, ib1, new_item)
    for node in (a, b):
        code, text = cli(capsys, "audit", "verify", str(node.directory), "--genesis",
                         str(genesis))  # fmt: skip
        assert code == 0, text
