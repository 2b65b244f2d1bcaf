"""The replica state machine: checkpoints, pages of entries, rollback and equivocation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from protocol import merkle
from protocol.checkpoint import Checkpoint, sign_checkpoint
from protocol.cosignature import ALG_COSIGNATURE
from protocol.entries import Add, encode_entry
from protocol.errors import (
    DecodeError,
    EquivocationError,
    ProofError,
    RollbackError,
    SignatureError,
)
from protocol.note import NoteSignature, add_signatures, key_id
from protocol.replica import CheckpointStatus, LogReplica, ReceivedEntry
from protocol.signing import SigningKey
from protocol.writer import LogWriter
from tests import support
from tests.support import make_members, make_roster


def entries(n: int, salt: int = 0) -> list[bytes]:
    return [encode_entry(Add(i + salt, "md5", (i + salt).to_bytes(16, "big"))) for i in range(n)]


@pytest.fixture
def setup() -> tuple[object, ...]:
    members = make_members(2)
    roster, _, _ = make_roster(members)
    origin = members[0]
    writer = LogWriter(origin.origin, origin.checkpoint_key)
    return roster, origin, writer


def grow(writer: LogWriter, raws: list[bytes]) -> bytes:
    writer.commit(writer.plan(raws))
    return writer.sign().raw


def test_pages_with_consistency_proofs_are_accepted_in_order(setup) -> None:
    roster, origin, writer = setup
    raws = entries(10)
    plan = writer.plan(raws)
    writer.commit(plan)
    cp = writer.sign().raw
    nodes = dict(plan.nodes)
    replica = LogReplica(origin.origin)
    for start in (0, 4, 8):
        page = raws[start : start + 4]
        end = start + len(page)
        proof = merkle.consistency_proof(end, 10, nodes) if end < 10 else []
        result = replica.verify_entries(start, page, cp, proof, roster)
        assert replica.size == start  # nothing changes before commit
        replica.commit(result)
    assert replica.size == 10
    assert replica.root == writer.root
    assert replica.checkpoint is not None and replica.checkpoint.raw == cp
    assert [e.entry for e in result.entries] == [
        Add(8, "md5", (8).to_bytes(16, "big")),
        Add(9, "md5", (9).to_bytes(16, "big")),
    ]
    assert result.entries == (  # received entries with every field, made directly as tuples
        ReceivedEntry(8, raws[8], Add(8, "md5", (8).to_bytes(16, "big")), None),
        ReceivedEntry(9, raws[9], Add(9, "md5", (9).to_bytes(16, "big")), None),
    )
    assert all(type(e) is ReceivedEntry for e in result.entries)


def test_an_entry_its_origin_signed_that_does_not_decode_is_received_with_why(setup) -> None:
    roster, origin, writer = setup
    raws = [*entries(2), b"\xc1"]
    cp = grow(writer, raws)
    plan = LogReplica(origin.origin).verify_entries(0, raws, cp, [], roster)
    bad = plan.entries[2]
    assert (bad.idx, bad.raw, bad.entry) == (2, b"\xc1", None)
    assert bad.error is not None and "msgpack" in bad.error
    assert plan.entries[0].error is None


def test_entries_that_do_not_hash_to_the_checkpoint_are_refused(setup) -> None:
    roster, origin, writer = setup
    cp = grow(writer, entries(3))
    replica = LogReplica(origin.origin)
    with pytest.raises(ProofError):
        replica.verify_entries(0, entries(3, salt=1), cp, [], roster)
    assert replica.size == 0


def test_a_page_with_a_bad_consistency_proof_is_refused(setup) -> None:
    roster, origin, writer = setup
    cp = grow(writer, entries(8))
    replica = LogReplica(origin.origin)
    with pytest.raises(ProofError):
        replica.verify_entries(0, entries(4), cp, [bytes(32)] * 3, roster)


def test_entries_beyond_the_checkpoint_are_refused(setup) -> None:
    roster, origin, writer = setup
    cp = grow(writer, entries(3))
    replica = LogReplica(origin.origin)
    with pytest.raises(ProofError, match="beyond"):
        replica.verify_entries(0, entries(4), cp, [], roster)


def test_checkpoint_signed_by_another_key_is_refused(setup) -> None:
    roster, origin, _ = setup
    forger = LogWriter(origin.origin, SigningKey.generate())
    cp = grow(forger, entries(2))
    replica = LogReplica(origin.origin)
    with pytest.raises(SignatureError):
        replica.accept_checkpoint(cp, roster)


def test_checkpoint_of_another_origin_is_refused(setup) -> None:
    roster, _origin, writer = setup
    cp = grow(writer, entries(2))
    with pytest.raises(DecodeError):
        LogReplica("test.hashmesh/m1").accept_checkpoint(cp, roster)


def test_rollback_to_an_older_checkpoint_is_refused(setup) -> None:
    roster, origin, writer = setup
    old = grow(writer, entries(2))
    new = grow(writer, entries(2, salt=2))
    replica = LogReplica(origin.origin)
    plan = replica.verify_entries(0, entries(2) + entries(2, salt=2), new, [], roster)
    replica.commit(plan)
    prefix = {node_id: dict(plan.nodes)[node_id] for node_id in replica.prefix_ids(2)}
    status, _ = replica.accept_checkpoint(old, roster, prefix)
    assert status is CheckpointStatus.STALE
    assert replica.checkpoint is not None and replica.checkpoint.raw == new
    with pytest.raises(RollbackError):
        replica.verify_entries(0, entries(2), old, [], roster)


def test_two_roots_at_one_size_are_equivocation_with_both_as_evidence(setup) -> None:
    roster, origin, writer = setup
    honest = grow(writer, entries(3))
    fork = sign_checkpoint(Checkpoint(origin.origin, 3, bytes(32)), origin.checkpoint_key).raw
    replica = LogReplica(origin.origin)
    replica.commit(replica.verify_entries(0, entries(3), honest, [], roster))
    with pytest.raises(EquivocationError) as caught:
        replica.accept_checkpoint(fork, roster)
    assert {caught.value.first, caught.value.second} == {honest, fork}


def test_an_older_checkpoint_contradicting_held_entries_is_equivocation(setup) -> None:
    roster, origin, writer = setup
    raws = entries(6)
    plan = writer.plan(raws)
    writer.commit(plan)
    cp = writer.sign().raw
    replica = LogReplica(origin.origin)
    replica.commit(replica.verify_entries(0, raws, cp, [], roster))
    fork = sign_checkpoint(Checkpoint(origin.origin, 4, bytes(32)), origin.checkpoint_key).raw
    ids = replica.prefix_ids(4)
    with pytest.raises(EquivocationError):
        replica.accept_checkpoint(fork, roster, {i: dict(plan.nodes)[i] for i in ids})


def test_forked_checkpoint_seen_ahead_is_caught_when_entries_pass_it(setup) -> None:
    roster, origin, writer = setup
    raws = entries(8)
    plan = writer.plan(raws)
    writer.commit(plan)
    honest = writer.sign().raw
    fork = sign_checkpoint(Checkpoint(origin.origin, 5, bytes(32)), origin.checkpoint_key).raw
    replica = LogReplica(origin.origin)
    assert replica.accept_checkpoint(fork, roster)[0] is CheckpointStatus.AHEAD
    with pytest.raises(EquivocationError):
        replica.verify_entries(0, raws, honest, [], roster)


def signed_pages(
    writer: LogWriter, n: int
) -> tuple[list[bytes], bytes, Callable[[int], list[bytes]]]:
    """n entries under one checkpoint, and the consistency proof from a page's end to it."""
    raws = entries(n)
    plan = writer.plan(raws)
    writer.commit(plan)
    nodes = dict(plan.nodes)
    return raws, writer.sign().raw, lambda end: merkle.consistency_proof(end, n, nodes)


def test_a_page_verified_after_an_uncommitted_plan_commits_in_order(setup) -> None:
    roster, origin, writer = setup
    raws, cp, proof_to = signed_pages(writer, 12)
    replica = LogReplica(origin.origin)
    first = replica.verify_entries(0, raws[:4], cp, proof_to(4), roster)
    second = replica.verify_entries(4, raws[4:8], cp, proof_to(8), roster, after=first)
    assert replica.size == 0  # neither counts before its commit
    with pytest.raises(ProofError, match="does not continue"):
        replica.commit(second)  # out of order
    replica.commit(first)
    replica.commit(second)
    third = replica.verify_entries(8, raws[8:], cp, [], roster)
    replica.commit(third)
    assert replica.size == 12 and replica.root == writer.root
    assert replica.checkpoint is not None and replica.checkpoint.raw == cp


def test_a_page_must_start_where_the_uncommitted_plan_ends(setup) -> None:
    roster, origin, writer = setup
    raws, cp, proof_to = signed_pages(writer, 12)
    replica = LogReplica(origin.origin)
    first = replica.verify_entries(0, raws[:4], cp, proof_to(4), roster)
    with pytest.raises(ProofError, match="start at 0, we hold 4"):
        replica.verify_entries(0, raws[:4], cp, proof_to(4), roster, after=first)
    replica.commit(first)
    with pytest.raises(ProofError, match="does not continue"):
        replica.verify_entries(4, raws[4:8], cp, [], roster, after=first)  # already committed
    with pytest.raises(ProofError):
        replica.verify_entries(4, entries(4, salt=99), cp, proof_to(8), roster)
    assert replica.size == 4


def test_a_checkpoint_carrying_forged_witness_lines_is_kept_with_verified_lines_only(
    setup,
) -> None:
    roster, origin, writer = setup
    raws = entries(3)
    honest = grow(writer, raws)
    member = roster.members[1]
    kid = key_id(member.member_id, member.node_key, ALG_COSIGNATURE)
    forged = [NoteSignature(member.member_id, kid, bytes([i]) * 72) for i in range(98)]
    offered = add_signatures(honest, forged)
    replica = LogReplica(origin.origin)
    replica.commit(replica.verify_entries(0, raws, offered, [], roster))
    assert replica.checkpoint is not None
    assert replica.checkpoint.raw == honest


def test_a_checkpoint_opened_again_under_another_roster_is_checked_again(setup) -> None:
    roster, origin, writer = setup
    raw = grow(writer, entries(2))
    replica = LogReplica(origin.origin)
    assert replica.open(raw, roster) is replica.open(bytes(raw), roster)
    rekeyed = [support.TestMember(origin.member_id, origin.origin), *make_members(2)[1:]]
    other, _, _ = make_roster(rekeyed)
    with pytest.raises(SignatureError):
        replica.open(raw, other)
