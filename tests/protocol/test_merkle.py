"""protocol.merkle: published RFC 6962 vectors, a naive RFC 9162 reference, and tampered proofs."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import merkle
from protocol.errors import ProofError, ValidationError
from protocol.merkle import CompactRange, NodeId
from tests.protocol.merkle_reference import (
    CT_CONSISTENCY,
    CT_INCLUSION,
    CT_LEAVES,
    CT_NODES,
    CT_ROOTS,
    TD_CONSISTENCY_IDS,
    TD_INCLUSION_IDS,
    UniformReference,
)
from tests.protocol.merkle_support import (
    BIG,
    CT_TREE,
    MAX_EXHAUSTIVE,
    REF,
    SOME_HASH,
    hx,
    only,
)


def test_hashing_matches_the_published_leaves_and_empty_root() -> None:
    assert hashlib.sha256(b"").digest() == merkle.EMPTY_ROOT == CT_ROOTS[0]
    assert [merkle.leaf_hash(e) for e in CT_LEAVES] == CT_NODES[0]
    assert merkle.node_hash(CT_NODES[0][0], CT_NODES[0][1]) == CT_NODES[1][0]
    with pytest.raises(ValidationError):
        merkle.node_hash(b"short", CT_NODES[0][1])


def test_published_roots_and_every_completed_subtree() -> None:
    tree = CompactRange()
    assert tree.root() == CT_ROOTS[0]
    for index, entry in enumerate(CT_LEAVES):
        completed = tree.append(merkle.leaf_hash(entry))
        expected = [((0, index), CT_NODES[0][index])]
        level, k = 0, index
        while k & 1:
            level, k = level + 1, k >> 1
            expected.append(((level, k), CT_NODES[level][k]))
        assert completed == expected
        assert tree.root() == CT_ROOTS[index + 1]
        ids = merkle.tree_hash_ids(index + 1)
        assert merkle.tree_hash(index + 1, only(ids, CT_TREE)) == CT_ROOTS[index + 1]


@pytest.mark.parametrize(("index", "size"), list(CT_INCLUSION))
def test_published_inclusion_proofs(index: int, size: int) -> None:
    proof = hx(CT_INCLUSION[index, size])
    assert (
        merkle.inclusion_proof(index, size, only(merkle.inclusion_proof_ids(index, size), CT_TREE))
        == proof
    )
    leaf, root = CT_NODES[0][index], CT_ROOTS[size]
    merkle.verify_inclusion(index, size, leaf, proof, root)
    assert merkle.root_from_inclusion_proof(index, size, leaf, proof) == root
    for bad_index, bad_size in ((index - 1, size), (index + 1, size), (index ^ 2, size),
                                (index, size * 2), (index, size // 2)):  # fmt: skip
        with pytest.raises((ProofError, ValidationError)):
            merkle.verify_inclusion(bad_index, bad_size, leaf, proof, root)


@pytest.mark.parametrize(("old", "new"), list(CT_CONSISTENCY))
def test_published_consistency_proofs(old: int, new: int) -> None:
    proof = hx(CT_CONSISTENCY[old, new])
    assert (
        merkle.consistency_proof(old, new, only(merkle.consistency_proof_ids(old, new), CT_TREE))
        == proof
    )
    merkle.verify_consistency(old, new, CT_ROOTS[old], CT_ROOTS[new], proof)
    if old == new:
        return
    for bad_old, bad_new in (
        (old - 1, new),
        (old + 1, new),
        (old ^ 2, new),
        (old, new * 2),
        (old, new // 2),
    ):
        with pytest.raises((ProofError, ValidationError)):
            merkle.verify_consistency(bad_old, bad_new, CT_ROOTS[old], CT_ROOTS[new], proof)


@pytest.mark.parametrize(("index", "size"), list(TD_INCLUSION_IDS))
def test_inclusion_ids_match_the_published_node_sets(index: int, size: int) -> None:
    assert set(merkle.inclusion_proof_ids(index, size)) == TD_INCLUSION_IDS[index, size]


@pytest.mark.parametrize(("old", "new"), list(TD_CONSISTENCY_IDS))
def test_consistency_ids_match_the_published_node_sets(old: int, new: int) -> None:
    assert set(merkle.consistency_proof_ids(old, new)) == TD_CONSISTENCY_IDS[old, new]


def check_ids(ids: list[NodeId], size: int) -> None:
    """Only complete subtrees inside the tree, no repeats, O(log n) of them."""
    assert len(ids) == len(set(ids))
    assert all((k + 1) << level <= size for level, k in ids)
    assert len(ids) <= 2 * size.bit_length() + 1


def test_roots_and_inclusion_proofs_equal_the_reference_for_every_small_tree() -> None:
    for size in range(1, MAX_EXHAUSTIVE + 1):
        root = REF.root(size)
        ids = merkle.tree_hash_ids(size)
        check_ids(ids, size)
        assert merkle.tree_hash(size, only(ids)) == root
        for index in range(size):
            ids = merkle.inclusion_proof_ids(index, size)
            check_ids(ids, size)
            proof = merkle.inclusion_proof(index, size, only(ids))
            assert proof == REF.path(index, size), (index, size)
            merkle.verify_inclusion(index, size, REF.leaf(index), proof, root)


def test_consistency_proofs_equal_the_reference_for_every_small_pair() -> None:
    for new in range(1, MAX_EXHAUSTIVE + 1):
        new_root = REF.root(new)
        for old in range(new + 1):
            ids = merkle.consistency_proof_ids(old, new)
            check_ids(ids, new)
            proof = merkle.consistency_proof(old, new, only(ids))
            assert proof == (REF.proof(old, new) if 0 < old < new else []), (old, new)
            merkle.verify_consistency(old, new, REF.root(old), new_root, proof)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_larger_trees_agree_with_the_reference(data: st.DataObject) -> None:
    size = data.draw(st.integers(MAX_EXHAUSTIVE, BIG))
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(0, size))
    root = REF.root(size)
    assert merkle.tree_hash(size, only(merkle.tree_hash_ids(size))) == root
    proof = merkle.inclusion_proof(index, size, only(merkle.inclusion_proof_ids(index, size)))
    assert proof == REF.path(index, size)
    merkle.verify_inclusion(index, size, REF.leaf(index), proof, root)
    proof = merkle.consistency_proof(old, size, only(merkle.consistency_proof_ids(old, size)))
    assert proof == (REF.proof(old, size) if 0 < old < size else [])
    merkle.verify_consistency(old, size, REF.root(old), root, proof)


class UniformNodes(Mapping[NodeId, bytes]):
    """Stored nodes of the uniform tree of `size` leaves: complete subtrees only."""

    def __init__(self, ref: UniformReference, size: int) -> None:
        self.ref, self.size = ref, size

    def __getitem__(self, node_id: NodeId) -> bytes:
        level, k = node_id
        if k < 0 or (k + 1) << level > self.size:
            raise KeyError(node_id)
        return self.ref.mth(0, 1 << level)

    def __iter__(self) -> Iterator[NodeId]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


UNIFORM = UniformReference()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_huge_trees_agree_with_the_reference(data: st.DataObject) -> None:
    size = data.draw(st.integers(1, 2**64))
    index = data.draw(st.integers(0, size - 1))
    old = data.draw(st.integers(0, size))
    nodes = UniformNodes(UNIFORM, size)
    root = UNIFORM.root(size)
    assert merkle.tree_hash(size, nodes) == root
    check_ids(merkle.inclusion_proof_ids(index, size), size)
    proof = merkle.inclusion_proof(index, size, nodes)
    assert proof == UNIFORM.path(index, size)
    merkle.verify_inclusion(index, size, UNIFORM.leaf(0), proof, root)
    check_ids(merkle.consistency_proof_ids(old, size), size)
    proof = merkle.consistency_proof(old, size, nodes)
    assert proof == (UNIFORM.proof(old, size) if 0 < old < size else [])
    merkle.verify_consistency(old, size, UNIFORM.root(old), root, proof)


def flips(proof: list[bytes]) -> Iterator[list[bytes]]:
    for i, element in enumerate(proof):
        for bit in range(8 * merkle.HASH_SIZE):
            flipped = bytearray(element)
            flipped[bit // 8] ^= 1 << (bit % 8)
            yield [*proof[:i], bytes(flipped), *proof[i + 1 :]]


def reshaped(proof: list[bytes], extra: bytes) -> Iterator[list[bytes]]:
    if proof:
        yield proof[:-1]
        yield proof[1:]
        yield [*proof[:-1], extra, proof[-1]]
    yield [*proof, extra]
    yield [extra, *proof]
    yield [*proof, b""]


def rejected(check: Callable[..., object], *args: object, valid_args: bool = True) -> None:
    with pytest.raises(ProofError if valid_args else ValidationError):
        check(*args)


def test_inclusion_verification_rejects_any_tampering() -> None:
    verify = merkle.verify_inclusion
    for size in range(1, 25):
        root = REF.root(size)
        for index in range(size):
            leaf, proof = REF.leaf(index), REF.path(index, size)
            for bad in [*flips(proof), *reshaped(proof, root)]:
                rejected(verify, index, size, leaf, bad, root)
            for bad in reshaped(proof, root):  # a proof of the wrong shape implies no root at all
                rejected(merkle.root_from_inclusion_proof, index, size, leaf, bad)
            for other in range(size):
                if other != index:
                    rejected(verify, other, size, leaf, proof, root)
            for bad_size in (size - 1, size + 1, size * 2, size // 2):
                # A proof carries no size: only a different shape is detectable by itself.
                if index < bad_size and len(REF.path(index, bad_size)) != len(proof):
                    rejected(verify, index, bad_size, leaf, proof, root)
            for bad_root in (SOME_HASH, merkle.EMPTY_ROOT, REF.root(size + 1)):
                rejected(verify, index, size, leaf, proof, bad_root)
            rejected(verify, index, size, SOME_HASH, proof, root)
            rejected(verify, size, size, leaf, proof, root, valid_args=False)


def test_consistency_verification_rejects_any_tampering() -> None:
    verify = merkle.verify_consistency
    for new in range(1, 25):
        new_root = REF.root(new)
        for old in range(new + 1):
            old_root, proof = REF.root(old), (REF.proof(old, new) if 0 < old < new else [])
            for bad in [*flips(proof), *reshaped(proof, old_root), *reshaped(proof, new_root)]:
                rejected(verify, old, new, old_root, new_root, bad)
            bad_roots = [(SOME_HASH, new_root)]
            if old != new:
                bad_roots.append((new_root, old_root))
            if old != 0:  # every tree extends the empty one, whatever its root
                bad_roots.append((old_root, SOME_HASH))
            for bad_old_root, bad_new_root in bad_roots:
                rejected(verify, old, new, bad_old_root, bad_new_root, proof)
            for bad_old, bad_new in (
                (old - 1, new),
                (old + 1, new),
                (old, new + 1),
                (old, new - 1),
            ):
                if 0 <= bad_old <= bad_new:
                    expected = REF.proof(bad_old, bad_new) if 0 < bad_old < bad_new else []
                    if len(expected) != len(proof):
                        rejected(verify, bad_old, bad_new, old_root, new_root, proof)
            rejected(verify, new + 1, new, new_root, new_root, [], valid_args=False)


def test_the_empty_tree_and_equal_sizes() -> None:
    merkle.verify_consistency(0, 0, merkle.EMPTY_ROOT, merkle.EMPTY_ROOT, [])
    merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, REF.root(5), [])
    merkle.verify_consistency(5, 5, REF.root(5), REF.root(5), [])
    rejected(lambda: merkle.verify_consistency(0, 5, REF.root(1), REF.root(5), []))
    rejected(lambda: merkle.verify_consistency(0, 5, merkle.EMPTY_ROOT, REF.root(5), [REF.root(5)]))
    rejected(lambda: merkle.verify_consistency(5, 5, REF.root(5), REF.root(5), [REF.root(5)]))
    assert merkle.consistency_proof_ids(0, 9) == merkle.consistency_proof_ids(9, 9) == []
    assert merkle.consistency_proof(0, 9, {}) == merkle.consistency_proof(9, 9, {}) == []
    assert merkle.tree_hash_ids(0) == [] and merkle.tree_hash(0, {}) == merkle.EMPTY_ROOT
    assert merkle.inclusion_proof(0, 1, {}) == []


def test_proof_elements_that_are_not_hashes_are_proof_errors() -> None:
    proof = REF.path(5, 11)
    for bad_element in (b"", proof[1][:-1], proof[1] + b"\x00"):
        bad = [proof[0], bad_element, *proof[2:]]
        with pytest.raises(ProofError, match="element 1"):
            merkle.root_from_inclusion_proof(5, 11, REF.leaf(5), bad)
        with pytest.raises(ProofError, match="element 1"):
            merkle.verify_consistency(5, 11, REF.root(5), REF.root(11), bad)


def test_missing_or_malformed_stored_nodes_are_proof_errors() -> None:
    for index, size in ((0, 7), (81, 95), (1000, 2047)):
        ids = merkle.inclusion_proof_ids(index, size)
        for missing in ids:
            nodes = only(ids)
            del nodes[missing]
            with pytest.raises(ProofError, match="missing"):
                merkle.inclusion_proof(index, size, nodes)
        ids = merkle.consistency_proof_ids(index + 1, size)
        for missing in ids:
            nodes = only(ids)
            nodes[missing] = nodes[missing][:-1]
            with pytest.raises(ProofError):
                merkle.consistency_proof(index + 1, size, nodes)
    with pytest.raises(ProofError):
        merkle.tree_hash(7, {})


@pytest.mark.parametrize(
    "call",
    [
        lambda: merkle.inclusion_proof_ids(5, 5),
        lambda: merkle.inclusion_proof_ids(-1, 5),
        lambda: merkle.inclusion_proof(0, 0, {}),
        lambda: merkle.consistency_proof_ids(6, 5),
        lambda: merkle.consistency_proof_ids(-1, 5),
        lambda: merkle.consistency_proof(6, 5, {}),
        lambda: merkle.tree_hash_ids(-1),
        lambda: merkle.tree_hash(-1, {}),
        lambda: merkle.subtree_ids(4, 3),
        lambda: merkle.peak_ids(True),
        lambda: merkle.root_from_inclusion_proof(3, 3, SOME_HASH, []),
        lambda: merkle.root_from_inclusion_proof(0, 1, b"short", []),
        lambda: merkle.verify_inclusion(0, 1, SOME_HASH, [], b"short"),
        lambda: merkle.verify_consistency(1, 2, b"short", SOME_HASH, [SOME_HASH]),
    ],
)
def test_impossible_arguments_are_validation_errors(call: Callable[[], object]) -> None:
    with pytest.raises(ValidationError):
        call()
