"""Remembered near-duplicate searches stay exact as hashes are added, and stay bounded."""

from __future__ import annotations

import random

import pytest

from node.matching.indexes import MatchIndex
from node.matching.near_cache import NearCache
from node.matching.pdq_index import PdqIndex


def _flip(h: bytes, bits: list[int]) -> bytes:
    v = int.from_bytes(h, "big")
    for b in bits:
        v ^= 1 << b
    return v.to_bytes(32, "big")


def _near(rng: random.Random, h: bytes, distance: int) -> bytes:
    return _flip(h, rng.sample(range(256), distance))


def test_a_remembered_answer_gains_the_near_duplicates_added_since() -> None:
    rng = random.Random(1)
    base = [rng.randbytes(32) for _ in range(500)]
    index = PdqIndex.build(base, merge_at=64)
    cache = NearCache()
    asked = base[:20]
    assert cache.search(index, 0, asked, 31) == index.search_many(asked, 31)
    # Near-duplicates of the asked hashes arrive later, some merged into the tables.
    for i in range(300):
        index.add(_near(rng, asked[i % 20], rng.randrange(32)))
    assert cache.search(index, 0, asked, 31) == index.search_many(asked, 31)
    assert any(len(found) > 1 for found in cache.search(index, 0, asked, 31))


def test_remembered_answers_match_fresh_searches_through_random_adds() -> None:
    rng = random.Random(2)
    stored = [rng.randbytes(32) for _ in range(200)]
    index = PdqIndex.build(stored, merge_at=32)
    cache = NearCache(capacity=50, rescan_max=100)
    for _ in range(40):
        for _ in range(rng.randrange(0, 150)):  # sometimes past rescan_max
            index.add(_near(rng, rng.choice(stored), rng.randrange(40)))
        asked = [rng.choice(stored) for _ in range(rng.randrange(1, 30))]
        assert cache.search(index, 0, asked, 31) == index.search_many(asked, 31)
        assert len(cache) <= 50


def test_a_new_index_forgets_remembered_answers() -> None:
    rng = random.Random(3)
    first = [rng.randbytes(32) for _ in range(50)]
    cache = NearCache()
    old = PdqIndex.build(first)
    assert cache.search(old, 0, first[:5], 31) == old.search_many(first[:5], 31)
    # A load builds a new index whose rows mean other hashes: epoch 1.
    second = [_near(rng, first[0], 3), *first]
    new = PdqIndex.build(second)
    assert cache.search(new, 1, first[:5], 31) == new.search_many(first[:5], 31)


def test_the_cache_holds_at_most_its_capacity() -> None:
    rng = random.Random(4)
    stored = [rng.randbytes(32) for _ in range(100)]
    index = PdqIndex.build(stored)
    cache = NearCache(capacity=10)
    cache.search(index, 0, stored, 31)
    assert len(cache) == 10


def test_repeated_values_in_one_call_get_one_answer_each() -> None:
    rng = random.Random(5)
    stored = [rng.randbytes(32) for _ in range(30)]
    index = PdqIndex.build(stored)
    asked = [stored[3], stored[3], stored[7]]
    assert NearCache().search(index, 0, asked, 31) == index.search_many(asked, 31)


@pytest.mark.asyncio
async def test_match_index_near_searches_see_adds_and_reloads() -> None:
    rng = random.Random(6)
    values = [rng.randbytes(32) for _ in range(40)]
    index = MatchIndex()
    index.add_pdq_run("a" * 64, list(range(40)), values)
    assert index.near_pdq_many(values[:3]) == index.match_pdq_many(values[:3])
    twin = _near(rng, values[0], 5)
    index.add_pdq_run("b" * 64, [0], [twin])
    [found] = index.near_pdq_many([values[0]])
    assert ("b" * 64, 0, 5) in [(h.log, h.index, h.distance) for h in found]

    async def rows():  # a reload from the store holds only the twin
        yield ("c" * 64, 0, twin)

    await index.load("pdq", rows())
    [found] = index.near_pdq_many([values[0]])
    assert [(h.log, h.index, h.distance) for h in found] == [("c" * 64, 0, 5)]


def test_a_query_that_is_a_held_hash_is_remembered_as_its_corroboration_search() -> None:
    rng = random.Random(7)
    values = [rng.randbytes(32) for _ in range(30)]
    index = MatchIndex()
    index.add_pdq_run("a" * 64, list(range(30)), values)
    miss = rng.randbytes(32)
    index.match_pdq_values([values[4], _near(rng, values[5], 3), miss])
    # Only the exact hit is remembered: near queries and misses are not hashes the index holds.
    assert len(index._near) == 1
    assert index.near_pdq_many([values[4]]) == index.match_pdq_many([values[4]])
