"""Witnessing across real nodes: every member cosigns the others' checkpoints it verified, the
cosignatures travel with the checkpoints, and a provenance bundle shows a witness quorum."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.cli.main import main
from node.procs import NodeGroup
from protocol.bundle import verify_bundle
from tests.cluster.support import consortium, md5_item, status, submit, wait_until


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
