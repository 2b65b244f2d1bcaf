"""A running node's log: a peer that fails the same way every sync round is logged once, not
every round, and the count of its repeats is written when the node stops
(node/app/logging_setup.py's RepeatLimiter on the node's handler). Real node processes."""

from __future__ import annotations

import time
from pathlib import Path

from node.app.procs import NodeProcess
from tests.cluster.support import consortium, status, wait_until


def test_a_peer_failing_every_round_is_logged_once_by_a_running_node(tmp_path: Path) -> None:
    first, absent = consortium(tmp_path, 2, sync_interval_s=0.2, sync_jitter_s=0.0).configs
    node = NodeProcess(first).start()  # its one peer never runs: every round fails alike
    try:
        peer = absent.member_id
        wait_until(
            lambda: status(first).get("peers", {}).get(peer, {}).get("failures", 0) >= 3,
            30,
            "failed rounds",
        )
        time.sleep(2.0)  # several more rounds, each failing the same way
    finally:
        node.stop()
    lines = [x for x in node.log().splitlines() if f"peer {absent.member_id}:" in x]
    # Written once; the repeats are counted, and the count written when the node stopped.
    assert len(lines) == 2, lines
    assert "summary only" not in lines[0] and "(repeated " not in lines[0]
    repeats = int(lines[1].split("(repeated ")[1].split(maxsplit=1)[0])
    assert lines[1].endswith("summary only)") and repeats >= 2
