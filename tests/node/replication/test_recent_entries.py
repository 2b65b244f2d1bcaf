"""The entries most recently pushed are read from the store once for every peer's pusher."""

from __future__ import annotations

import asyncio

from node.replication.recent_entries import RecentEntries

LOG = [f"entry {i}".encode() for i in range(100)]


class _Store:
    def __init__(self) -> None:
        self.reads: list[tuple[str, int, int]] = []

    async def entries(self, origin: str, start: int, end: int) -> list[bytes]:
        self.reads.append((origin, start, end))
        return LOG[start:end]


def test_a_range_pushed_to_every_peer_is_read_from_the_store_once() -> None:
    store = _Store()
    recent = RecentEntries(store.entries)

    async def push_to_26_peers() -> list[list[bytes]]:
        return [await recent.entries("o", 10, 20) for _ in range(26)]

    answers = asyncio.run(push_to_26_peers())
    assert all(a == LOG[10:20] for a in answers)
    assert store.reads == [("o", 10, 20)]


def test_a_range_partly_kept_is_read_whole_and_logs_are_kept_apart() -> None:
    store = _Store()
    recent = RecentEntries(store.entries)

    async def reads() -> None:
        await recent.entries("o", 10, 20)
        assert await recent.entries("o", 15, 25) == LOG[15:25]
        assert await recent.entries("p", 10, 20) == LOG[10:20]
        assert await recent.entries("o", 12, 18) == LOG[12:18]

    asyncio.run(reads())
    assert store.reads == [("o", 10, 20), ("o", 15, 25), ("p", 10, 20)]


def test_at_most_capacity_entries_are_kept_the_least_recently_pushed_dropped() -> None:
    store = _Store()
    recent = RecentEntries(store.entries, capacity=10)

    async def reads() -> None:
        await recent.entries("o", 0, 8)
        await recent.entries("o", 8, 16)
        assert len(recent) == 10
        await recent.entries("o", 8, 16)  # kept
        await recent.entries("o", 0, 8)  # 0..5 were dropped
        await recent.entries("o", 0, 50)  # beyond capacity: read, not kept
        assert len(recent) <= 10

    asyncio.run(reads())
    assert store.reads == [("o", 0, 8), ("o", 8, 16), ("o", 0, 8), ("o", 0, 50)]
