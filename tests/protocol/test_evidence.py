"""protocol.evidence: self-contained equivocation evidence, verified with the roster alone."""

from __future__ import annotations

import pytest

from protocol import codec, merkle
from protocol.checkpoint import Checkpoint, sign_checkpoint
from protocol.cosignature import cosign
from protocol.errors import ProofError, ProtocolError, RosterError, SignatureError, ValidationError
from protocol.evidence import decode_evidence, encode_evidence, evidence_of, verify_evidence
from protocol.note import add_signatures
from protocol.signing import SigningKey
from protocol.writer import LogWriter
from tests.support import make_members, make_roster

LEAVES = [bytes([i]) * 8 for i in range(8)]


@pytest.fixture
def setup() -> tuple[object, ...]:
    members = make_members(3)
    roster, _, _ = make_roster(members)
    return roster, members[0], members[1]


def signed_tree(origin, entries: list[bytes]) -> bytes:
    writer = LogWriter(origin.origin, origin.checkpoint_key)
    writer.commit(writer.plan(entries))
    return writer.sign().raw


def test_two_roots_at_one_size_prove_equivocation_to_anyone_with_the_roster(setup) -> None:
    roster, origin, witness = setup
    one = signed_tree(origin, LEAVES[:4])
    other = signed_tree(origin, [b"x", *LEAVES[1:4]])
    # Cosignature lines are not part of evidence: they are left out.
    cosigned = add_signatures(one, [cosign("x\n", witness.member_id, witness.node_key, 1)])
    made = evidence_of(roster, other, cosigned)
    assert made.raw == encode_evidence(min(one, other), max(one, other))
    again = verify_evidence(roster, made.raw)
    assert again == made
    assert again.detail == f"{origin.origin} signed two different roots at size 4"


def test_a_smaller_checkpoint_the_larger_tree_does_not_extend_is_proven_with_its_prefix(
    setup,
) -> None:
    roster, origin, _ = setup
    larger = signed_tree(origin, LEAVES[:7])
    for size in range(1, 7):  # powers of two included: the prefix root is in the evidence
        fork = signed_tree(origin, [b"fork", *LEAVES[1:size]])
        ids = merkle.tree_hash_ids(size) + merkle.consistency_proof_ids(size, 7)
        full = _all_nodes(LEAVES[:7], ids)
        prefix = merkle.tree_hash(size, full)
        proof = merkle.consistency_proof(size, 7, full)
        made = evidence_of(roster, larger, fork, prefix, proof)
        assert verify_evidence(roster, made.raw).first.checkpoint.size == size
        # The honest prefix itself proves nothing; nor does a proof that does not hold.
        honest = signed_tree(origin, LEAVES[:size])
        with pytest.raises(ValidationError):
            evidence_of(roster, honest, larger, prefix, proof)
        with pytest.raises(ProofError):
            evidence_of(roster, fork, larger, bytes(32), proof)


def _all_nodes(entries: list[bytes], ids: list[merkle.NodeId]) -> dict[merkle.NodeId, bytes]:
    """Every node named, hashed from the entries (a reference, not the code under test)."""
    out = {}
    for level, index in ids:
        start, end = index << level, min((index + 1) << level, len(entries))
        out[(level, index)] = _root([merkle.leaf_hash(e) for e in entries[start:end]])
    return out


def _root(hashes: list[bytes]) -> bytes:
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return merkle.node_hash(_root(hashes[:k]), _root(hashes[k:]))


def test_evidence_that_proves_nothing_is_refused_with_why(setup) -> None:
    roster, origin, other_member = setup
    one = signed_tree(origin, LEAVES[:4])
    other = signed_tree(origin, [b"x", *LEAVES[1:4]])
    with pytest.raises(ValidationError):  # two copies of one checkpoint
        evidence_of(roster, one, one)
    with pytest.raises(ValidationError):  # two sizes without the proof
        evidence_of(roster, one, signed_tree(origin, LEAVES[:5]))
    with pytest.raises(ValidationError):  # two different logs
        evidence_of(roster, one, signed_tree(other_member, [b"x", *LEAVES[1:4]]))
    forged = sign_checkpoint(Checkpoint(origin.origin, 4, bytes(32)), SigningKey.generate()).raw
    with pytest.raises(SignatureError):  # not signed by the origin's key
        evidence_of(roster, one, forged)
    stranger = make_members(4)[3]
    stranger.origin = "test.hashmesh/stranger"
    with pytest.raises(RosterError):  # no member has that log
        evidence_of(roster, signed_tree(stranger, LEAVES[:1]), signed_tree(stranger, [b"y"]))
    valid = evidence_of(roster, one, other).raw
    first, second, _, _ = decode_evidence(valid)
    for bad in (
        encode_evidence(second, first),  # the order is part of the encoding
        encode_evidence(
            add_signatures(first, [cosign("a\n", "m1", SigningKey.generate(), 1)]), second
        ),
        encode_evidence(first, second, bytes(32)),
        valid + b"\x00",
        codec.encode([2, first, second, b"", []]),
        b"",
    ):
        with pytest.raises(ProtocolError):
            verify_evidence(roster, bad)
