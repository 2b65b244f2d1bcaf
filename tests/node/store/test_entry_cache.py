"""The recent ranges of stored entries, with their decodings, that a batch's listeners share."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.store.decoded import DecodedEntries
from node.store.sqlite.store import SqliteStore
from protocol.entries import Add, Entry, encode_entry
from tests.node.store.test_store import A, Log


def _adds(first: int, n: int) -> tuple[list[bytes], list[Entry | None]]:
    adds: list[Entry | None] = [
        Add(i, "md5", bytes([i % 256]) * 16) for i in range(first, first + n)
    ]
    return [encode_entry(a) for a in adds if a is not None], adds


class _NoStore:
    """A store that is never to be read: what a remembered range answers needs none."""

    async def entries(self, origin: str, start: int, end: int) -> list[bytes]:
        raise LookupError(f"read {origin} [{start}, {end}) from the store")


async def test_recent_ranges_answer_only_what_they_hold() -> None:
    cache = DecodedEntries()
    _, adds = _adds(0, 10)
    cache.remember_range("log", 100, adds)
    store = _NoStore()
    assert await cache.read_decoded(store, "log", 102, 105) == adds[2:5]  # type: ignore[arg-type]
    assert await cache.read_decoded(store, "log", 100, 110) == adds  # type: ignore[arg-type]
    for origin, start, end in (("log", 99, 101), ("log", 105, 111), ("other", 100, 101)):
        with pytest.raises(LookupError):
            await cache.read_decoded(store, origin, start, end)  # type: ignore[arg-type]


async def test_a_remembered_range_gives_its_own_decodings_without_the_store() -> None:
    cache = DecodedEntries()
    _, adds = _adds(0, 4)
    decodings: list[Entry | None] = [*adds[:3], None]  # the last did not decode
    cache.remember_range("log", 10, decodings)
    found = await cache.read_decoded(None, "log", 11, 14)  # type: ignore[arg-type]  # unused
    assert found == decodings[1:] and found[0] is adds[1]


async def test_a_range_not_remembered_is_read_from_the_store_and_decoded(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "s.db")
    await store.open()
    try:
        raws, adds = _adds(0, 3)
        await Log(A).append(store, [*raws, b"\xc1"])  # the origin signed bytes that are bad
        cache = DecodedEntries()
        cache.remember_range("another log", 0, adds)
        assert await cache.read_decoded(store, A, 1, 4) == [adds[1], adds[2], None]
    finally:
        await store.close()


async def test_ranges_beyond_the_capacity_go_oldest_first_but_the_newest_stays_whole() -> None:
    cache = DecodedEntries(capacity=5)
    store = _NoStore()

    async def held(start: int, end: int) -> bool:
        try:
            await cache.read_decoded(store, "log", start, end)  # type: ignore[arg-type]
        except LookupError:
            return False
        return True

    for k in range(3):
        _, adds = _adds(3 * k, 3)
        cache.remember_range("log", 3 * k, adds)
    assert [await held(0, 3), await held(3, 6), await held(6, 9)] == [False, False, True]
    _, adds = _adds(100, 8)  # larger than the capacity on its own: kept, and alone
    cache.remember_range("log", 9, adds)
    assert [await held(9, 17), await held(6, 9)] == [True, False]


async def test_by_default_only_the_newest_range_is_held() -> None:
    cache = DecodedEntries()
    store = _NoStore()
    for k in range(2):
        _, adds = _adds(3 * k, 3)
        cache.remember_range("log", 3 * k, adds)
    assert await cache.read_decoded(store, "log", 3, 6) == adds  # type: ignore[arg-type]
    with pytest.raises(LookupError):
        await cache.read_decoded(store, "log", 0, 3)  # type: ignore[arg-type]
