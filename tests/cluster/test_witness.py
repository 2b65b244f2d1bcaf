"""Witnessing across real nodes: every member cosigns the others' checkpoints it verified and
shows its cosignature with the checkpoints it serves peers, every member collects them, and a
provenance bundle shows a witness quorum."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path

import pytest

from node.app.procs import NodeGroup
from node.cli.main import main
from node.core import wire
from node.credentials.key_files import load_key
from protocol.bundle import verify_bundle
from protocol.cosignature import ALG_COSIGNATURE
from protocol.entries import Add, encode_entry
from protocol.note import NoteSignature, add_signatures, key_id, parse_note
from protocol.writer import LogWriter
from tests.cluster.support import consortium, md5_item, status, submit, wait_until
from tests.cluster.test_hostile import Rogue, _send, _signed


def test_checkpoints_gather_a_quorum_of_cosignatures_that_a_bundle_carries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = consortium(tmp_path, 3, witness_quorum=2, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b, c = setup.configs
    with NodeGroup(setup.configs):
        item = md5_item("witnessed")
        submit(a, [item])

        def cosigners_of_a(config: object) -> list[str]:
            return list(status(config)["logs"][a.origin]["cosigners"])  # type: ignore[arg-type]

        # The origin learns its peers' cosignatures of its own checkpoint, and so does each peer.
        wait_until(lambda: cosigners_of_a(a) == [b.member_id, c.member_id], 30, "a cosigned")
        for peer in (b, c):
            wait_until(lambda p=peer: cosigners_of_a(p) == [b.member_id, c.member_id], 30, "both")
        capsys.readouterr()
        assert main(["status", "--node", str(c.directory)]) == 0
        lines = capsys.readouterr().out.splitlines()
        line = next(x for x in lines if a.origin in x)
        assert "cosigned 2/2 witnessed" in line
        assert "match index: 0 pdq, 0 vpdq" in lines  # loaded (no LOADING), md5 not indexed
        bundle = tmp_path / "bundle.json"
        code = main(["audit", "proof", f"md5:{item['value']}", "--out", str(bundle),
                     "--node", str(c.directory)])  # fmt: skip
        assert code == 0
    provenance = verify_bundle(bundle.read_bytes(), a.roster_path.read_bytes())
    assert provenance.witnessed and set(provenance.cosigners) == {b.member_id, c.member_id}


def test_forged_cosignatures_under_a_real_witness_name_are_neither_stored_nor_served(
    tmp_path: Path,
) -> None:
    """A member pushes its checkpoint carrying 98 junk lines under a real witness's name: the
    node keeps none of them, and the honest cosignatures still land on its copy."""
    setup = consortium(tmp_path, 3, sync_interval_s=0.5, sync_jitter_s=0.1)
    rogue_config, b, c = setup.configs
    rogue = Rogue(rogue_config)
    writer = LogWriter(rogue_config.origin, rogue.log_key)
    raws = [encode_entry(Add(1_800_000_000_000, "md5", bytes([v]) * 16)) for v in (1, 2)]
    writer.commit(writer.plan(raws))
    honest = writer.sign().raw
    c_key = load_key(c.node_key_path)[1].public
    kid = key_id(c.member_id, c_key, ALG_COSIGNATURE)
    forged = [NoteSignature(c.member_id, kid, secrets.token_bytes(72)) for _ in range(98)]
    offered = add_signatures(honest, forged)
    with NodeGroup([b, c]):
        push = wire.Push(rogue_config.origin, offered, 0, tuple(raws))
        assert rogue.push(b, wire.encode_push(push))[0] == 200

        def cosigners(config: object) -> list[str]:
            logs = status(config)["logs"]  # type: ignore[arg-type]
            return list(logs.get(rogue_config.origin, {}).get("cosigners", []))

        both = [b.member_id, c.member_id]
        wait_until(lambda: cosigners(b) == both, 30, "b and c cosigned on b's copy")
        path = "/v1/checkpoints"
        headers = _signed(b, rogue_config.member_id, rogue.node_key, "GET", path)
        code, body = _send(b, "GET", path, headers=headers)
        assert code == 200
        shown = dict(wire.decode_vector(body, 1 << 20).checkpoints)[rogue_config.origin]
        code, served = _send(b, "GET", f"/v1/audit/checkpoint?log={rogue_config.origin}")
        assert code == 200
    # Peers are shown the origin's line and b's own; auditors get every cosignature collected.
    assert [s.name for s in parse_note(shown).signatures] == [rogue_config.origin, b.member_id]
    note = parse_note(served)
    assert [s.name for s in note.signatures] == [rogue_config.origin, b.member_id, c.member_id]
    assert not any(line in note.signatures for line in forged)
    with sqlite3.connect(b.data_dir / "hashmesh.db") as db:
        stored = [bytes(r[0]) for r in db.execute("SELECT raw FROM checkpoints")]
    assert stored and all(len(parse_note(raw).signatures) <= 3 for raw in stored)
