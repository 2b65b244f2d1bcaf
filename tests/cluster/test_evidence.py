"""Equivocation evidence travels: a member that shows a fork to one node only is held by every
honest node, those reachable at once (pushed) and one that was down (pulled at its next sync).
With pushes off, the scheduled pull alone carries it. Real node processes on loopback; the
hostile member is played by the test with its real keys."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from node.app.procs import NodeGroup
from node.config import NodeConfig
from node.core import wire
from protocol.entries import Add, encode_entry
from protocol.evidence import verify_evidence
from protocol.roster import SignedRoster
from protocol.writer import LogWriter
from tests.cluster.support import consortium, status, wait_until
from tests.cluster.test_hostile import Rogue, _send, _signed

SYNC_S = 1.0
#: Slack on one sync interval for a loaded machine (two cores shared by many processes).
SLACK_S = 15.0


def _entries(values: list[int]) -> tuple[bytes, ...]:
    return tuple(encode_entry(Add(1_800_000_000_000, "md5", bytes([v]) * 16)) for v in values)


def _push(rogue: Rogue, checkpoint_of: list[int], sent: list[int]) -> bytes:
    """A push of entries `sent` under a true checkpoint of entries `checkpoint_of`."""
    writer = LogWriter(rogue.config.origin, rogue.log_key)
    writer.commit(writer.plan(list(_entries(checkpoint_of))))
    cp = writer.sign().raw
    return wire.encode_push(wire.Push(rogue.config.origin, cp, 0, _entries(sent)))


def _held(config: NodeConfig, origin: str) -> bool:
    return [e["origin"] for e in status(config)["equivocations"]] == [origin]


@pytest.mark.parametrize("push", [True, False], ids=["pushed", "pulled"])
def test_a_fork_shown_to_one_node_only_is_held_by_every_honest_node_within_a_sync_interval(
    tmp_path: Path, push: bool
) -> None:
    setup = consortium(tmp_path, 4, sync_interval_s=SYNC_S, sync_jitter_s=0.1, push=push)
    rogue_config, b, c, late = setup.configs
    rogue = Rogue(rogue_config)
    origin = rogue_config.origin
    with NodeGroup([b, c]):
        # b alone is shown a validly signed checkpoint whose entries do not match it...
        code, _ = rogue.push(b, _push(rogue, [1, 2], [5, 6]))
        assert code == 400
        # ...then everyone a different checkpoint of the same size, with its entries.
        assert rogue.push(c, _push(rogue, [3, 4], [3, 4]))[0] == 200
        started = time.monotonic()
        assert rogue.push(b, _push(rogue, [3, 4], [3, 4]))[0] == 200
        wait_until(lambda: _held(b, origin), 30, "b, shown the fork, holds the log")
        wait_until(lambda: _held(c, origin), SYNC_S + SLACK_S, "c holds it too")
        took = time.monotonic() - started
        path = "/v1/evidence"
        headers = _signed(c, rogue_config.member_id, rogue.node_key, "GET", path)
        code, body = _send(c, "GET", path, headers=headers)
        assert code == 200
        with NodeGroup([late]):
            # A node that was down when it happened pulls the evidence at its first sync.
            wait_until(lambda: _held(late, origin), 2 * SYNC_S + SLACK_S, "the late node")
    assert took < SYNC_S + SLACK_S
    roster = SignedRoster.decode(c.roster_path.read_bytes()).roster
    (served,) = wire.decode_evidence_list(body, 1 << 20)
    proven = verify_evidence(roster, served)
    assert proven.origin == origin
    assert proven.detail == f"{origin} signed two different roots at size 2"
