"""PageFetches: the pages of one pull asked for ahead, in order, whatever page size a peer uses."""

from __future__ import annotations

import asyncio

import pytest

from node.core import wire
from node.errors import PeerError
from node.replication.page_fetches import PREFETCH_PAGES, PageFetches


class Peer:
    """Serves a log of `size` entries in pages of at most `cap`; records every ask."""

    def __init__(self, size: int, cap: int, fail_at: int | None = None) -> None:
        self.size = size
        self.cap = cap
        self.fail_at = fail_at
        self.asked: list[int] = []
        self.most_under_way = 0
        self._under_way = 0
        self.finished = 0

    async def entries(self, start: int) -> wire.EntriesPage:
        self.asked.append(start)
        self._under_way += 1
        self.most_under_way = max(self.most_under_way, self._under_way)
        try:
            await asyncio.sleep(0.001)
            if start == self.fail_at:
                raise PeerError("peer: connection reset")
            entries = tuple(b"%d" % i for i in range(start, min(self.size, start + self.cap)))
            return wire.EntriesPage(b"cp", start, entries, ())
        finally:
            self._under_way -= 1
            self.finished += 1


async def pull(peer: Peer, start: int, page_size: int) -> list[int]:
    fetches = PageFetches(peer.entries, peer.size)
    fetches.ask(start, page_size)
    got: list[int] = []
    try:
        while fetches:
            page = await fetches.next_page()
            assert page.start == start + len(got)  # in order, no gap, no overlap
            got += [int(e) for e in page.entries]
    finally:
        await fetches.cancel()
    return got


@pytest.mark.parametrize("cap", [100, 40, 7])
async def test_every_entry_arrives_once_in_order_whatever_the_peers_page_size(cap: int) -> None:
    peer = Peer(1000, cap)
    assert await pull(peer, 3, 100) == list(range(3, 1000))
    assert peer.most_under_way <= PREFETCH_PAGES
    assert max(peer.asked) < 1000  # never asked beyond the log's size


async def test_a_peer_serving_shorter_pages_costs_one_wasted_guess_then_none() -> None:
    peer = Peer(1000, 40)
    await pull(peer, 0, 100)
    wasted = len(peer.asked) - len(range(0, 1000, 40))
    assert 1 <= wasted <= PREFETCH_PAGES - 1


async def test_a_failed_fetch_raises_and_leaves_no_fetch_running() -> None:
    peer = Peer(1000, 100, fail_at=300)
    with pytest.raises(PeerError):
        await pull(peer, 0, 100)
    assert peer.finished == len(peer.asked)  # the fetches asked ahead were ended too
