"""The Merkle tree's incremental state: compact ranges and the subtrees they store."""

from __future__ import annotations

import itertools

import pytest

from protocol import merkle
from protocol.errors import ValidationError
from protocol.merkle import CompactRange, NodeId
from tests.protocol.merkle_support import (
    MAX_EXHAUSTIVE,
    NODES,
    REF,
    SOME_HASH,
)


def test_subtree_ids_are_the_minimal_aligned_cover() -> None:
    for start in range(70):
        for end in range(start, 140):
            ids = merkle.subtree_ids(start, end)
            position = start
            for level, k in ids:
                assert k << level == position  # contiguous and aligned by construction of the id
                position += 1 << level
            assert position == end
            for (level, k), (next_level, _) in itertools.pairwise(ids):
                assert not (level == next_level and k % 2 == 0)  # two siblings would merge
    for size in range(200):
        levels = [level for level, _ in merkle.peak_ids(size)]
        assert (
            levels == sorted(levels, reverse=True) == [b for b in range(9, -1, -1) if size >> b & 1]
        )


def completed_by(index: int) -> list[tuple[NodeId, bytes]]:
    """The reference's subtrees that leaf `index` completes: those ending at index + 1."""
    expected = [((0, index), REF.leaf(index))]
    level = 1
    while (index + 1) % (1 << level) == 0:
        start = index + 1 - (1 << level)
        expected.append(((level, start >> level), REF.mth(start, index + 1)))
        level += 1
    return expected


def test_compact_range_appends_exactly_the_reference_subtrees() -> None:
    tree = CompactRange()
    for index in range(MAX_EXHAUSTIVE):
        assert tree.append(REF.leaf(index)) == completed_by(index)
        assert tree.size == index + 1
        assert tree.root() == REF.root(index + 1)
        assert tree.peaks == tuple(
            REF.mth(k << lv, (k + 1) << lv) for lv, k in merkle.peak_ids(index + 1)
        )


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_compact_range_extended_by_pages_completes_what_appending_each_leaf_does(
    chunk: int,
) -> None:
    entries = [i.to_bytes(4, "big") for i in range(MAX_EXHAUSTIVE)]  # REF's leaves' entries
    for first in (0, 1, 5):  # from a restored size, too
        tree = CompactRange(first, [NODES[i] for i in merkle.peak_ids(first)])
        for start in range(first, MAX_EXHAUSTIVE, chunk):
            page = entries[start : start + chunk]
            expected = [node for i in range(start, start + len(page)) for node in completed_by(i)]
            assert tree.extend(page) == expected
            assert tree.size == start + len(page)
            assert tree.root() == REF.root(tree.size)
    assert CompactRange().extend([]) == []


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_compact_range_extended_without_leaves_keeps_only_the_last_leaf(chunk: int) -> None:
    entries = [i.to_bytes(4, "big") for i in range(MAX_EXHAUSTIVE)]
    for first in (0, 1, 5):
        tree = CompactRange(first, [NODES[i] for i in merkle.peak_ids(first)])
        for start in range(first, MAX_EXHAUSTIVE, chunk):
            page = entries[start : start + chunk]
            end = start + len(page)
            every = [node for i in range(start, end) for node in completed_by(i)]
            inner = [node for node in every if node[0][0] > 0]
            assert tree.extend(page, leaves=False) == [*inner, ((0, end - 1), REF.leaf(end - 1))]
            assert tree.root() == REF.root(end)
    assert CompactRange().extend([], leaves=False) == []


def test_compact_range_restored_from_peak_ids_continues_identically() -> None:
    for size in range(0, 130):
        restored = CompactRange(size, [NODES[i] for i in merkle.peak_ids(size)])
        assert restored.root() == REF.root(size)
        for index in range(size, size + 5):
            assert restored.append(REF.leaf(index)) == completed_by(index)
        assert restored.root() == REF.root(size + 5)


def test_compact_range_copies_are_independent() -> None:
    original = CompactRange(3, [NODES[1, 0], NODES[0, 2]])
    clone = original.copy()
    clone.append(REF.leaf(3))
    assert (original.size, original.root(), original.peaks) == (
        3,
        REF.root(3),
        (NODES[1, 0], NODES[0, 2]),
    )
    assert (clone.size, clone.root()) == (4, REF.root(4))
    original.append(SOME_HASH)
    assert (clone.size, clone.root(), clone.peaks) == (4, REF.root(4), (NODES[2, 0],))


@pytest.mark.parametrize(
    ("size", "peaks"),
    [
        (-1, []),
        (3, [SOME_HASH]),
        (1, [SOME_HASH, SOME_HASH]),
        (1, [b"short"]),
        (1, [32]),
        (2, ["x" * 32]),
    ],
)
def test_compact_range_rejects_inconsistent_state(size: int, peaks: list[bytes]) -> None:
    with pytest.raises(ValidationError):
        CompactRange(size, peaks)


def test_compact_range_rejects_a_leaf_that_is_not_a_hash() -> None:
    tree = CompactRange()
    with pytest.raises(ValidationError):
        tree.append(b"an entry, not its leaf hash")
    assert tree.size == 0 and tree.root() == merkle.EMPTY_ROOT
