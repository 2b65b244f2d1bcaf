"""The PDQ index finds exactly the hashes a brute-force scan finds, at every distance."""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.errors import RequestError
from node.matching import chunk_tables
from node.matching.chunk_tables import (
    EMPTY_TABLE,
    NO_TABLES,
    build_tables,
    chunk_values,
    extend_table,
    extend_tables,
)
from node.matching.pdq_index import _VERIFY_BLOCK, PdqIndex, hashes_to_words, merge_step


def _flip(h: bytes, bits: list[int]) -> bytes:
    v = int.from_bytes(h, "big")
    for b in bits:
        v ^= 1 << b
    return v.to_bytes(32, "big")


def _brute(stored: list[bytes], query: bytes, radius: int) -> list[tuple[int, int]]:
    q = int.from_bytes(query, "big")
    found = []
    for row, h in enumerate(stored):
        d = (int.from_bytes(h, "big") ^ q).bit_count()
        if d <= radius:
            found.append((d, row))
    return [(row, d) for d, row in sorted(found)]


def _spread_flips(rng: random.Random, distance: int) -> list[int]:
    """`distance` bit positions spread as evenly as possible over the index's 16 chunks (the
    diagonals of the 16x16 bit grid: chunk c holds bit (row i, column (i + c) mod 16)): the
    case where no chunk matches exactly, which the pigeonhole argument must still cover."""
    per_chunk = [distance // 16 + (1 if c < distance % 16 else 0) for c in range(16)]
    bits = []
    for c, k in enumerate(per_chunk):
        bits += [16 * i + (i + c) % 16 for i in rng.sample(range(16), k)]
    return bits


def test_chunk_c_is_the_diagonal_of_bits_row_i_column_i_plus_c_of_the_grid() -> None:
    """The chunks, computed by rotating and transposing words, are the diagonals the module
    names: chunk c's i-th bit (most significant first) is bit (row i, column (i + c) mod 16)
    of the hash's 16x16 grid, row-major from its first byte's top bit."""
    rng = random.Random(3)
    hashes = [rng.randbytes(32) for _ in range(300)] + [bytes(32), b"\xff" * 32]
    bits = np.unpackbits(np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, 32), axis=1)
    diagonal = [16 * i + (i + c) % 16 for c in range(16) for i in range(16)]
    expected = np.ascontiguousarray(np.packbits(bits[:, diagonal], axis=1)).view(">u2")
    assert (chunk_values(hashes_to_words(hashes)) == expected).all()


Planted = tuple[list[bytes], list[tuple[bytes, int, int]]]


@pytest.fixture(scope="module")
def planted() -> Planted:
    """5,000 random hashes, plus near-duplicates of some of them at every distance 0..64.

    Returns the stored hashes and (query, row of its original, distance) triples."""
    rng = random.Random(7)
    stored = [rng.randbytes(32) for _ in range(5000)]
    queries = []
    for distance in range(65):
        for spread in (False, True):
            row = rng.randrange(len(stored))
            bits = _spread_flips(rng, distance) if spread else rng.sample(range(256), distance)
            queries.append((_flip(stored[row], bits), row, distance))
    # Near-duplicates stored too, so a query has several hits at different distances.
    for distance in range(0, 40, 3):
        stored.append(_flip(stored[0], rng.sample(range(256), distance)))
    return stored, queries


def test_every_planted_near_duplicate_within_31_is_found(planted: Planted) -> None:
    stored, queries = planted
    index = PdqIndex.build(stored)
    for query, row, distance in queries:
        got = index.search(query, 31)
        assert got == _brute(stored, query, 31)
        if distance <= 31:
            assert (row, distance) in got


@pytest.mark.parametrize("radius", [0, 1, 15, 16, 17, 31, 32, 47, 48, 64])
def test_results_equal_brute_force_at_every_radius(planted: Planted, radius: int) -> None:
    stored, queries = planted
    index = PdqIndex.build(stored)
    for query, row, distance in queries:
        got = index.search(query, radius)
        assert got == _brute(stored, query, radius)
        assert ((row, distance) in got) == (distance <= radius)
    batch = index.search_many([q for q, _, _ in queries], radius)
    assert batch == [index.search(q, radius) for q, _, _ in queries]


def test_live_adds_are_found_before_and_after_merging(planted: Planted) -> None:
    stored, queries = planted
    index = PdqIndex(merge_at=1000)
    first = index.add_many(stored[:1500])  # crosses merge_at: tables built
    assert first == 0
    for i, h in enumerate(stored[1500:]):  # one by one: buffer, merge, buffer again
        assert index.add(h) == 1500 + i
        if i % 700 == 0:
            q, _, _ = queries[i % len(queries)]
            assert index.search(q, 31) == _brute(stored[: 1501 + i], q, 31)
    assert len(index) == len(stored)
    for query, _, _ in queries:
        assert index.search(query, 31) == _brute(stored, query, 31)
    index.compact()
    for query, _, _ in queries:
        assert index.search(query, 31) == _brute(stored, query, 31)
    assert index.hash_at(17) == stored[17]


def test_empty_index_and_bad_input() -> None:
    index = PdqIndex()
    assert index.search(bytes(32)) == []
    assert index.search_many([]) == []
    with pytest.raises(RequestError):
        index.search(bytes(31))
    with pytest.raises(RequestError):
        index.search(bytes(32), radius=-1)
    with pytest.raises(RequestError):
        index.add(b"short")
    with pytest.raises(RequestError):
        PdqIndex.build(np.zeros((3, 31), dtype=np.uint8))


def test_build_from_an_array_equals_build_from_bytes() -> None:
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 256, size=(2000, 32), dtype=np.uint8)
    from_array = PdqIndex.build(arr)
    from_bytes = PdqIndex.build([row.tobytes() for row in arr])
    query = arr[5].tobytes()
    assert from_array.search(query, 40) == from_bytes.search(query, 40)
    assert from_array.search(query, 40)[0] == (5, 0)


@settings(max_examples=60, deadline=None)
@given(
    base=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40),
    flips=st.lists(st.integers(0, 255), max_size=40),
    radius=st.integers(0, 80),
)
def test_property_index_equals_brute_force(
    base: list[bytes], flips: list[int], radius: int
) -> None:
    index = PdqIndex(merge_at=16)
    index.add_many(base[: len(base) // 2])
    for h in base[len(base) // 2 :]:
        index.add(h)
    query = _flip(base[0], sorted(set(flips)))
    assert index.search(query, radius) == _brute(base, query, radius)


def test_tables_built_from_a_snapshot_while_adds_go_on_search_exactly() -> None:
    rng = random.Random(7)
    stored = [rng.randbytes(32) for _ in range(3000)]
    index = PdqIndex(merge_at=1000)
    index.add_many(stored[:1500], merge=False)
    assert index.merge_due()
    snapshot = index.snapshot()
    # While the tables are built elsewhere, more hashes arrive; the index grows its array.
    index.add_many(stored[1500:], merge=False)
    tables = extend_tables(*snapshot)
    index.adopt(tables)
    assert tables.rows == 1500
    queries = [_flip(stored[i], [1, 70, 200]) for i in (3, 1499, 1500, 2999)]
    for query in queries:
        assert index.search(query, 31) == _brute(stored, query, 31)
    index.compact()  # newer tables of all 3000 ...
    index.adopt(tables)  # ... are not replaced by the older ones
    assert not index.merge_due()
    for query in queries:
        assert index.search(query, 31) == _brute(stored, query, 31)


@settings(max_examples=60, deadline=None)
@given(
    old=st.integers(min_value=0, max_value=300),
    added=st.integers(min_value=0, max_value=300),
    distinct=st.integers(min_value=1, max_value=40),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_extending_tables_gives_the_tables_a_full_build_gives(
    old: int, added: int, distinct: int, seed: int
) -> None:
    # Few distinct hashes put many rows in one bucket, where the order of rows matters.
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 2**64, size=(distinct, 4), dtype=np.uint64)
    words = pool[rng.integers(0, distinct, size=old + added)]
    extended = extend_tables(build_tables(words, old), words, old + added)
    built = build_tables(words, old + added)
    assert extended.rows == built.rows == old + added
    for mine, theirs in zip(extended.chunks, built.chunks, strict=True):
        assert np.array_equal(mine.sorted_rows, theirs.sorted_rows)
        assert np.array_equal(mine.offsets, theirs.offsets)


def test_an_index_merged_many_times_searches_as_one_built_at_once() -> None:
    rng = random.Random(11)
    stored = [rng.randbytes(32) for _ in range(5000)]
    stored += [_flip(stored[i], [i % 256]) for i in range(0, 5000, 7)]  # near duplicates
    grown = PdqIndex(merge_at=300)
    for start in range(0, len(stored), 250):
        grown.add_many(stored[start : start + 250])
    grown.compact()
    built = PdqIndex.build(stored)
    assert extend_tables(NO_TABLES, *grown.snapshot()[1:]).rows == len(stored)
    for i in range(0, len(stored), 97):
        query = _flip(stored[i], [3, 100])
        assert grown.search(query, 31) == built.search(query, 31) == _brute(stored, query, 31)


def _bank(shape: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """A bank shaped like real ones: `clustered`, a few items with many variants each (0..20
    bits from the item); `skewed`, each row of the 16x16 bit grid leaning to 0 or 1."""
    if shape == "clustered":
        items = rng.integers(0, 256, size=(max(1, n // 25), 32), dtype=np.uint8)
        bank = items[rng.integers(0, len(items), size=n)]
        flips = rng.integers(0, 21, size=n)
        masks = rng.random((n, 256)) < (flips[:, None] / 256)
        return np.asarray(bank ^ np.packbits(masks, axis=1), dtype=np.uint8)
    lean = np.repeat(rng.choice([0.1, 0.3, 0.5, 0.7, 0.9], size=16), 16)
    return np.packbits(rng.random((n, 256)) < lean, axis=1)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.sampled_from(["clustered", "skewed"]),
    n=st.integers(min_value=1, max_value=600),
    radius=st.sampled_from([0, 15, 16, 31, 32, 47]),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_property_index_is_exact_on_clustered_and_skewed_banks(
    shape: str, n: int, radius: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    pick = random.Random(seed)
    bank = _bank(shape, n, rng)
    stored = [bytes(h) for h in bank]
    index = PdqIndex.build(bank[: n // 2], merge_at=64)
    index.add_many(bank[n // 2 :])  # some merged at add time, some left in the buffer
    queries = [
        _flip(stored[pick.randrange(n)], _spread_flips(pick, pick.randint(0, radius)))
        for _ in range(6)
    ] + [_flip(stored[pick.randrange(n)], pick.sample(range(256), radius)) for _ in range(4)]
    got = index.search_many(queries, radius)
    assert got == [_brute(stored, q, radius) for q in queries]


def test_searches_are_exact_while_a_merge_has_replaced_only_some_chunk_tables() -> None:
    """A merge adopts one chunk's table at a time: between two, the tables cover different
    rows, and a search must neither miss the rows some tables lack nor report one twice."""
    rng = random.Random(13)
    stored = [rng.randbytes(32) for _ in range(2000)]
    stored += [_flip(stored[i], [i % 256, (7 * i) % 256]) for i in range(0, 2000, 5)]
    index = PdqIndex(merge_at=100_000)
    index.add_many(stored[:1000])
    index.compact()
    index.add_many(stored[1000:], merge=False)
    new, first = index.merge_keys()
    keys = chunk_values(new)
    queries = [_flip(stored[i], [3, 100]) for i in (0, 999, 1000, 1500, 2001, len(stored) - 1)]
    for chunk in range(16):
        index.adopt_table(chunk, merge_step(index.table(chunk), keys, first, chunk))
        assert index.tabled == (len(stored) if chunk == 15 else 1000)
        for query in queries:
            assert index.search(query, 31) == _brute(stored, query, 31)


def _table_in_row_order(keys: npt.NDArray[np.uint16]) -> npt.NDArray[np.int64]:
    return np.argsort(keys, kind="stable").astype(np.int64)


def test_a_table_of_more_than_65536_rows_gives_back_every_row_number() -> None:
    # Rows past 2**16 keep their high bits in a second array (3 bytes a row in all).
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 2**16, size=70_000, dtype=np.uint16)
    table = extend_table(extend_table(EMPTY_TABLE, keys[:40_000], 40_000), keys[40_000:], 70_000)
    assert table.high.dtype == np.uint8
    assert np.array_equal(table.sorted_rows, _table_in_row_order(keys))
    positions = np.array([0, 69_999, 12_345], dtype=np.int64)
    assert np.array_equal(table.rows_at(positions), _table_in_row_order(keys)[positions])


def test_a_table_past_the_one_byte_limit_holds_its_high_bits_in_two_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(chunk_tables, "BYTE_HIGH_ROWS", 1 << 16)
    rng = np.random.default_rng(4)
    keys = rng.integers(0, 2**16, size=70_000, dtype=np.uint16)
    small = extend_table(EMPTY_TABLE, keys[:50_000], 50_000)
    table = extend_table(small, keys[50_000:], 70_000)
    assert (small.high.dtype, table.high.dtype) == (np.uint8, np.uint16)
    assert np.array_equal(table.sorted_rows, _table_in_row_order(keys))


def test_a_batch_verified_in_many_pieces_and_a_probe_larger_than_one_piece_stay_exact() -> None:
    """Candidates are verified a piece at a time (about _VERIFY_BLOCK of them, whole probes):
    a batch whose candidates fill many pieces, and one probe with more candidates than a
    piece (thousands of hashes sharing a chunk value), find what brute force finds."""
    rng = random.Random(21)
    base = rng.randbytes(32)
    # Copies of one hash, each with at most one bit flipped: in every chunk nearly all keep
    # base's value, so one probe of that value finds more candidates than a piece holds.
    crowd = [_flip(base, rng.sample(range(240, 256), rng.randint(0, 1))) for _ in range(5000)]
    stored = crowd + [rng.randbytes(32) for _ in range(3000)]
    index = PdqIndex.build(stored)
    queries = [_flip(base, rng.sample(range(256), d)) for d in (0, 5, 20, 31)]
    queries += [
        _flip(stored[rng.randrange(len(stored))], _spread_flips(rng, 31)) for _ in range(60)
    ]
    assert len(stored) > _VERIFY_BLOCK
    assert index.search_many(queries, 31) == [_brute(stored, q, 31) for q in queries]
