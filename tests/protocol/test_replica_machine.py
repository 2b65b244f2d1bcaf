"""Property-based test of the replica state machine: whatever order pages, stale and future
checkpoints, forged signatures and forks arrive in, the replica only ever holds a prefix of the
honest log, never rolls back, and reports a fork as EquivocationError with both checkpoints.

HASHMESH_FUZZ_EXAMPLES sets how many runs (default 60): a longer run is
`HASHMESH_FUZZ_EXAMPLES=5000 .venv/bin/python -m pytest -q tests/protocol/test_replica_machine.py`.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from protocol import merkle
from protocol.checkpoint import Checkpoint, sign_checkpoint
from protocol.entries import Add, encode_entry
from protocol.errors import EquivocationError, ProofError, RollbackError, SignatureError
from protocol.merkle import NodeId
from protocol.replica import LogReplica
from protocol.signing import SigningKey
from protocol.writer import LogWriter
from tests.support import make_members, make_roster

EXAMPLES = int(os.environ.get("HASHMESH_FUZZ_EXAMPLES", "60"))
MEMBERS = make_members(1)
ROSTER, _, _ = make_roster(MEMBERS)
ORIGIN = MEMBERS[0]


class ReplicaMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.writer = LogWriter(ORIGIN.origin, ORIGIN.checkpoint_key)
        self.raws: list[bytes] = []
        self.nodes: dict[NodeId, bytes] = {}
        self.checkpoints: dict[int, bytes] = {}
        self.replica = LogReplica(ORIGIN.origin)
        self.forked = False

    @rule(count=st.integers(1, 9))
    def origin_appends_and_signs(self, count: int) -> None:
        raws = [encode_entry(Add(len(self.raws) + i, "md5", os.urandom(16))) for i in range(count)]
        plan = self.writer.plan(raws)
        self.writer.commit(plan)
        self.nodes.update(plan.nodes)
        self.raws.extend(raws)
        self.checkpoints[self.writer.size] = self.writer.sign().raw

    @precondition(lambda self: self.checkpoints and not self.forked)
    @rule(data=st.data())
    def a_page_arrives(self, data: st.DataObject) -> None:
        size = data.draw(st.sampled_from(sorted(self.checkpoints)))
        start = data.draw(st.integers(0, size - 1))
        end = data.draw(st.integers(start + 1, size))
        proof = merkle.consistency_proof(end, size, self.nodes) if end < size else []
        try:
            plan = self.replica.verify_entries(
                start, self.raws[start:end], self.checkpoints[size], proof, ROSTER
            )
        except (RollbackError, ProofError):
            assert start != self.replica.size or size <= self.replica.size
            return
        self.replica.commit(plan)

    @precondition(lambda self: self.checkpoints and not self.forked)
    @rule(data=st.data())
    def a_checkpoint_is_offered(self, data: st.DataObject) -> None:
        size = data.draw(st.sampled_from(sorted(self.checkpoints)))
        ids = self.replica.prefix_ids(size)
        prefix = {i: self.nodes[i] for i in ids} if ids else None
        self.replica.accept_checkpoint(self.checkpoints[size], ROSTER, prefix)

    @precondition(lambda self: self.checkpoints)
    @rule(data=st.data())
    def a_forged_signature_is_refused(self, data: st.DataObject) -> None:
        size = data.draw(st.sampled_from(sorted(self.checkpoints)))
        fake = sign_checkpoint(
            Checkpoint(ORIGIN.origin, size, os.urandom(32)), SigningKey.generate()
        )
        try:
            self.replica.accept_checkpoint(fake.raw, ROSTER)
        except SignatureError:
            return
        raise AssertionError("a checkpoint signed by the wrong key was accepted")

    @precondition(lambda self: self.replica.size > 0 and not self.forked)
    @rule()
    def the_origin_forks(self) -> None:
        size = self.replica.size
        fork = sign_checkpoint(
            Checkpoint(ORIGIN.origin, size, os.urandom(32)), ORIGIN.checkpoint_key
        )
        try:
            self.replica.accept_checkpoint(fork.raw, ROSTER)
        except EquivocationError as e:
            assert fork.raw in (e.first, e.second)
            self.forked = True
            return
        raise AssertionError("a fork was not detected")

    @invariant()
    def holds_a_prefix_of_the_honest_log(self) -> None:
        size = self.replica.size
        assert size <= len(self.raws)
        expected = merkle.tree_hash(size, self.nodes) if size else merkle.EMPTY_ROOT
        assert self.replica.root == expected
        held = self.replica.checkpoint
        if held is not None:  # the latest checkpoint all of whose entries are held
            assert 0 < held.checkpoint.size <= size
            assert held.checkpoint.root == merkle.tree_hash(held.checkpoint.size, self.nodes)


ReplicaMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_replica_state_machine = ReplicaMachine.TestCase
