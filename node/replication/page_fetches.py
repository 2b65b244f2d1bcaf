"""The page fetches of one pull (PageFetches): the next pages of a log asked for from a peer
while the current one is verified, in order, whatever page size the peer serves."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any

from node.core import wire
from node.errors import NodeError

#: Pages of one log asked for ahead of the one being verified.
PREFETCH_PAGES = 2


#: A page fetch: the coroutine of PeerClient.entries.
Fetch = Coroutine[Any, Any, wire.EntriesPage]


class PageFetches:
    """The page fetches of one pull, in order: at most PREFETCH_PAGES under way."""

    def __init__(self, fetch: Callable[[int], Fetch], size: int) -> None:
        self._fetch = fetch
        self._size = size
        self._under_way: deque[tuple[int, asyncio.Task[wire.EntriesPage]]] = deque()

    def __bool__(self) -> bool:
        return bool(self._under_way)

    def ask(self, start: int, step: int) -> None:
        """Ask for pages from `start` on, `step` entries apart, until enough are under way."""
        at = self._under_way[-1][0] + step if self._under_way else start
        while len(self._under_way) < PREFETCH_PAGES and at < self._size:
            self._under_way.append((at, asyncio.create_task(self._fetch(at))))
            at += step

    async def next_page(self) -> wire.EntriesPage:
        """The next page; the pages after it are asked for before it is returned."""
        _, task = self._under_way.popleft()
        page = await task
        if not page.entries:
            await self.cancel()  # the peer has nothing more: stop asking
            return page
        following = page.start + len(page.entries)
        if self._under_way and self._under_way[0][0] != following:
            await self.cancel()  # the peer's pages are shorter than guessed
        self.ask(following, len(page.entries))
        return page

    async def cancel(self) -> None:
        """Cancel every fetch under way and wait for them to end."""
        while self._under_way:
            _, task = self._under_way.pop()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, NodeError):
                await task
