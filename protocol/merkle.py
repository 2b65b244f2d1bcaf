"""RFC 9162 Merkle trees (RFC 6962 hashing): incremental roots, proof generation and checking.

Sans-IO in two phases: the node stores only the hashes of COMPLETE subtrees, addressed as
NodeId (level, k) = the subtree over leaves [k * 2**level, (k + 1) * 2**level). Functions named
`*_ids` say which stored nodes a computation needs; the caller fetches them, then calls the
matching function with a mapping NodeId -> hash. Every such computation touches O(log n) nodes.
The spec of this module is docs/protocol.md (section "Merkle tree").
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TypeAlias

from protocol.errors import ProofError, ValidationError

HASH_SIZE = 32
NodeId: TypeAlias = tuple[int, int]

_sha256 = hashlib.sha256
_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"

EMPTY_ROOT: bytes = _sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """SHA-256(0x00 || entry): the hash of one log entry as a leaf."""
    return _sha256(_LEAF_PREFIX + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right): the hash of an interior node."""
    _check_hash(left, "left child")
    _check_hash(right, "right child")
    return _sha256(_NODE_PREFIX + left + right).digest()


# Argument checks. Bad arguments are the caller's bug (ValidationError); bad proof contents
# or storage contents are evidence against the peer or store (ProofError).


def _check_count(value: int, name: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValidationError(f"{name} must be a non-negative int, got {value!r}")


def _check_hash(value: bytes, name: str) -> None:
    if not isinstance(value, bytes | bytearray) or len(value) != HASH_SIZE:
        raise ValidationError(f"{name} must be {HASH_SIZE} bytes")


def _check_index(index: int, size: int) -> None:
    _check_count(index, "index")
    _check_count(size, "size")
    if index >= size:
        raise ValidationError(f"index {index} is not below the tree size {size}")


def _check_sizes(old_size: int, new_size: int) -> None:
    _check_count(old_size, "old_size")
    _check_count(new_size, "new_size")
    if old_size > new_size:
        raise ValidationError(f"old_size {old_size} is larger than new_size {new_size}")


# Node addressing.


def subtree_ids(start: int, end: int) -> list[NodeId]:
    """The complete subtrees that exactly cover leaves [start, end), left to right.

    Each step takes the largest subtree that begins at `start` (so is aligned to its own size)
    and ends at or before `end`; the sizes therefore grow, then shrink: O(log n) ids.
    """
    _check_count(start, "start")
    _check_count(end, "end")
    if start > end:
        raise ValidationError(f"range start {start} is after its end {end}")
    ids: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        ids.append((level, start >> level))
        start += 1 << level
    return ids


def peak_ids(size: int) -> list[NodeId]:
    """The peaks of a tree of `size`: one complete subtree per set bit, largest (leftmost) first."""
    return subtree_ids(0, size)


def _fetch(nodes: Mapping[NodeId, bytes], node_id: NodeId) -> bytes:
    value = nodes.get(node_id)
    if value is None:
        raise ProofError(f"stored node {node_id} is missing")
    if len(value) != HASH_SIZE:
        raise ProofError(f"stored node {node_id} has {len(value)} bytes, not {HASH_SIZE}")
    return bytes(value)


def _fold(hashes: Sequence[bytes]) -> bytes:
    """Root of adjacent subtrees of strictly decreasing size: each one is the left sibling of
    everything to its right, which is how RFC 9162 splits a tree (largest power of two first)."""
    result = hashes[-1]
    for i in range(len(hashes) - 2, -1, -1):
        result = _sha256(_NODE_PREFIX + hashes[i] + result).digest()
    return result


# A proof element is the hash of one node of the RFC 9162 tree of `size` leaves. Such a node
# covers [start, end) with start aligned to a power of two 2**l and end = min(start + 2**l, size):
# either a complete subtree (one stored id) or, on the right edge only, a run of complete
# subtrees of decreasing size whose _fold is the node's hash.


def _range_hash(start: int, end: int, nodes: Mapping[NodeId, bytes]) -> bytes:
    return _fold([_fetch(nodes, node_id) for node_id in subtree_ids(start, end)])


def _sibling_ranges(level: int, k: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges of the siblings met walking up from node (level, k) to the root, bottom-up.

    A level where the path node has no sibling (it is the right edge and its would-be sibling
    starts at or beyond `size`) contributes nothing: in the RFC tree that node is not split.
    """
    ranges: list[tuple[int, int]] = []
    while k or (1 << level) < size:
        start = (k ^ 1) << level
        if start < size:
            ranges.append((start, min(start + (1 << level), size)))
        k >>= 1
        level += 1
    return ranges


def _inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    _check_index(index, size)
    return _sibling_ranges(0, index, size)


def _consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """RFC 9162 SUBPROOF as leaf ranges: the largest subtree ending at old_size (omitted when it
    is the whole old tree, i.e. old_size is a power of two), then that node's sibling path."""
    _check_sizes(old_size, new_size)
    if old_size in (0, new_size):
        return []
    level = (old_size & -old_size).bit_length() - 1
    k = (old_size - 1) >> level
    ranges = [] if k == 0 else [(k << level, old_size)]
    return ranges + _sibling_ranges(level, k, new_size)


def _ids_of(ranges: Sequence[tuple[int, int]]) -> list[NodeId]:
    # dict keeps first-seen order: deterministic, and deduplicated should ranges ever overlap.
    return list(
        dict.fromkeys(node_id for start, end in ranges for node_id in subtree_ids(start, end))
    )


def tree_hash_ids(size: int) -> list[NodeId]:
    """Stored nodes needed for the root at `size`: its peaks."""
    return peak_ids(size)


def tree_hash(size: int, nodes: Mapping[NodeId, bytes]) -> bytes:
    """RFC 9162 root of the first `size` leaves, from the nodes named by tree_hash_ids(size)."""
    _check_count(size, "size")
    if size == 0:
        return EMPTY_ROOT
    return _range_hash(0, size, nodes)


def inclusion_proof_ids(index: int, size: int) -> list[NodeId]:
    """Stored nodes needed for the inclusion proof of leaf `index` in the tree of `size`."""
    return _ids_of(_inclusion_ranges(index, size))


def inclusion_proof(index: int, size: int, nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.3.1 PATH(index, D[size]): sibling hashes from the leaf upward."""
    return [_range_hash(start, end, nodes) for start, end in _inclusion_ranges(index, size)]


def consistency_proof_ids(old_size: int, new_size: int) -> list[NodeId]:
    """Stored nodes needed for the consistency proof from `old_size` to `new_size`."""
    return _ids_of(_consistency_ranges(old_size, new_size))


def consistency_proof(old_size: int, new_size: int, nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    """RFC 9162 section 2.1.4.1 PROOF(old_size, D[new_size]); empty if old_size is 0 or new_size."""
    return [_range_hash(s, e, nodes) for s, e in _consistency_ranges(old_size, new_size)]


# Verification: RFC 9162 sections 2.1.3.2 and 2.1.4.2, step by step.


def _check_proof_elements(proof: Sequence[bytes]) -> None:
    for i, element in enumerate(proof):
        if not isinstance(element, bytes | bytearray) or len(element) != HASH_SIZE:
            raise ProofError(f"proof element {i} is not a {HASH_SIZE}-byte hash")


def root_from_inclusion_proof(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` implies for leaf hash `leaf` at `index` in a tree of `size`.

    Raises ValidationError for impossible arguments, ProofError for a proof of the wrong shape.
    """
    _check_index(index, size)
    _check_hash(leaf, "leaf hash")
    _check_proof_elements(proof)
    fn, sn = index, size - 1
    result = bytes(leaf)
    for element in proof:
        if sn == 0:
            raise ProofError(f"inclusion proof for {index} in {size} is too long ({len(proof)})")
        if fn & 1 or fn == sn:
            result = _sha256(_NODE_PREFIX + element + result).digest()
            # Climb past the levels where our node is the right edge with no sibling.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            result = _sha256(_NODE_PREFIX + result + element).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof for {index} in {size} is too short ({len(proof)})")
    return result


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash `leaf` is at `index` in the tree of `size` with `root`, or raise."""
    _check_hash(root, "root")
    if root_from_inclusion_proof(index, size, leaf, proof) != root:
        raise ProofError(f"inclusion proof for {index} in {size} does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree (new_size, new_root) extends (old_size, old_root), or raise ProofError.

    Equal sizes need an empty proof and equal roots. The empty tree (whose root must be
    EMPTY_ROOT) is extended by every tree, with an empty proof.
    """
    _check_sizes(old_size, new_size)
    _check_hash(old_root, "old root")
    _check_hash(new_root, "new root")
    _check_proof_elements(proof)
    if old_size == 0 and old_root != EMPTY_ROOT:
        raise ProofError("the root of the empty tree is not SHA-256 of nothing")
    if old_size in (0, new_size):
        if proof:
            raise ProofError(f"consistency from {old_size} to {new_size} needs an empty proof")
        if old_size == new_size and old_root != new_root:
            raise ProofError(f"two different roots for size {new_size}")
        return
    if not proof:
        raise ProofError(f"empty consistency proof from {old_size} to {new_size}")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first = second = bytes(path[0])
    for element in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof from {old_size} to {new_size} is too long")
        if fn & 1 or fn == sn:
            first = _sha256(_NODE_PREFIX + element + first).digest()
            second = _sha256(_NODE_PREFIX + element + second).digest()
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            second = _sha256(_NODE_PREFIX + second + element).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof from {old_size} to {new_size} is too short")
    if first != old_root:
        raise ProofError(f"consistency proof does not lead to the root at {old_size}")
    if second != new_root:
        raise ProofError(f"consistency proof does not lead to the root at {new_size}")


class CompactRange:
    """Incremental root over leaves [0, size) from O(log n) state: the hashes of the complete
    subtrees ('peaks') of the size's binary decomposition, largest (leftmost) first.

    Mutable; owned by one caller. `append` is on the replication hot path, hence no per-call
    validation beyond the leaf's length and the root cached until the next append.
    """

    __slots__ = ("_peaks", "_root", "_size")

    def __init__(self, size: int = 0, peaks: Sequence[bytes] = ()) -> None:
        _check_count(size, "size")
        held = list(peaks)
        if len(held) != size.bit_count():
            raise ValidationError(
                f"a tree of {size} leaves has {size.bit_count()} peaks, not {len(held)}"
            )
        for i, peak in enumerate(held):
            _check_hash(peak, f"peak {i}")
        self._size = size
        self._peaks = [bytes(peak) for peak in held]
        self._root: bytes | None = None

    @property
    def size(self) -> int:
        return self._size

    @property
    def peaks(self) -> tuple[bytes, ...]:
        return tuple(self._peaks)

    def append(self, leaf: bytes) -> list[tuple[NodeId, bytes]]:
        """Add one LEAF HASH; return every subtree it completes, smallest first.

        That is ((0, index), leaf) then each merged parent ((1, k), h), ((2, k'), h), ...:
        exactly the hashes a store must keep.
        """
        if len(leaf) != HASH_SIZE:
            raise ValidationError(f"a leaf hash has {HASH_SIZE} bytes, not {len(leaf)}")
        index = self._size
        peaks = self._peaks
        completed: list[tuple[NodeId, bytes]] = [((0, index), leaf)]
        node = leaf
        level = 0
        k = index
        # A right child (odd k) merges with the peak to its left, repeatedly upward.
        while k & 1:
            node = _sha256(_NODE_PREFIX + peaks.pop() + node).digest()
            k >>= 1
            level += 1
            completed.append(((level, k), node))
        peaks.append(node)
        self._size = index + 1
        self._root = None
        return completed

    def extend(self, entries: Sequence[bytes], leaves: bool = True) -> list[tuple[NodeId, bytes]]:
        """Add the leaves of ENTRIES (their bytes, hashed here); return every subtree they
        complete, in the order `append` of each leaf hash would. With `leaves` false, the
        level-0 nodes (the leaf hashes) are left out but for the last one, a peak when the
        size is odd: a store keeps only that one, and hashes its stored entries for the
        others. One call a page: the loop keeps its state in locals, the hot path of
        catch-up."""
        sha256, node_prefix, leaf_prefix = _sha256, _NODE_PREFIX, _LEAF_PREFIX
        peaks = self._peaks
        pop, push = peaks.pop, peaks.append
        completed: list[tuple[NodeId, bytes]] = []
        add = completed.append
        index = self._size
        leaf = b""
        for entry in entries:
            node = leaf = sha256(leaf_prefix + entry).digest()
            if leaves:
                add(((0, index), leaf))
            k = index
            if k & 1:  # a right child merges with the peak to its left, repeatedly upward
                level = 0
                while k & 1:
                    node = sha256(node_prefix + pop() + node).digest()
                    k >>= 1
                    level += 1
                    add(((level, k), node))
            push(node)
            index += 1
        if entries and not leaves:
            add(((0, index - 1), leaf))
        self._size = index
        self._root = None
        return completed

    def root(self) -> bytes:
        """RFC 9162 root of the current size (EMPTY_ROOT for 0)."""
        if self._root is None:
            self._root = _fold(self._peaks) if self._peaks else EMPTY_ROOT
        return self._root

    def copy(self) -> CompactRange:
        clone = CompactRange.__new__(CompactRange)
        clone._size = self._size
        clone._peaks = list(self._peaks)
        clone._root = self._root
        return clone
