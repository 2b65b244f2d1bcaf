"""A member that shows two histories to two nodes is caught when those honest nodes compare:
both keep the two signed checkpoints as evidence and hold that member's new entries back."""

from __future__ import annotations

import json
from pathlib import Path

from node.app.procs import NodeGroup
from node.cli.main import main
from protocol.evidence import verify_evidence
from protocol.roster import SignedRoster
from tests.cluster.support import consortium, status, wait_until
from tests.cluster.test_hostile import Rogue, _page


def test_two_honest_nodes_comparing_notes_catch_a_split_view(
    tmp_path: Path, capsys: object
) -> None:
    setup = consortium(tmp_path, 3, sync_interval_s=0.5, sync_jitter_s=0.1, push=False)
    rogue_config, b, c = setup.configs
    rogue = Rogue(rogue_config)
    with NodeGroup([b, c]):
        # Each honest node gets a different, validly signed history of the same size.
        assert rogue.push(b, _page(rogue, [1, 2]))[0] == 200
        assert rogue.push(c, _page(rogue, [3, 4]))[0] == 200

        def caught(config: object) -> bool:
            return [e["origin"] for e in status(config)["equivocations"]] == [rogue_config.origin]  # type: ignore[arg-type]

        wait_until(lambda: caught(b) and caught(c), 30, "both honest nodes caught it")
    capsys.readouterr()  # type: ignore[attr-defined]
    code = main(["audit", "verify", str(b.directory), "--json"])
    assert code == 5  # an audit of b's copy reports the equivocation
    roster = SignedRoster.decode(b.roster_path.read_bytes()).roster
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "signed two different roots at size 2" in out
    # The evidence in the report checks with the roster alone, as auditor.md shows.
    (reported,) = json.loads(out)["equivocation_evidence"]
    proven = verify_evidence(roster, bytes.fromhex(reported["evidence"]))
    assert proven.detail == reported["proves"]
