"""Catching up one log on request (CatchUps): a peer pushed us a checkpoint of a log far ahead
of what we hold ("gap"), so we fetch that log from it, not a sync round with every peer.

However many gaps are answered for one log (every peer relaying the same burst), at most one
fetch of it runs, and at most one more waits, for the largest size asked; a fetch that finds
the log already caught up ends at once. State is bounded by the roster's logs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

#: Fetches `origin` up to `size` from member `member_id` (origin, member_id, size); whether it
#: did (a failure is recorded against the peer by the fetcher, not raised).
Fetch = Callable[[str, str, int], Awaitable[bool]]


class CatchUps:
    """The catch-ups of one node: requested from anywhere, run as tasks of `run`."""

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        #: origin -> (member id, size) wanted and not yet under way
        self._wanted: dict[str, tuple[str, int]] = {}
        self._running: set[str] = set()
        self._wake = asyncio.Event()
        #: Catch-ups that ended without error (a count, for the tests and the benchmark).
        self.done = 0

    def request(self, origin: str, member_id: str, size: int) -> None:
        """Want `origin` up to `size`, from `member_id` (the latest asker is asked)."""
        _, wanted = self._wanted.get(origin, ("", 0))
        self._wanted[origin] = (member_id, max(size, wanted))
        self._wake.set()

    def busy(self) -> bool:
        """Whether a catch-up runs or waits."""
        return bool(self._running or self._wanted)

    async def run(self) -> None:
        """Start each wanted log's fetch, one at a time a log, until cancelled."""
        async with asyncio.TaskGroup() as group:
            while True:
                await self._wake.wait()
                self._wake.clear()
                for origin in [o for o in self._wanted if o not in self._running]:
                    member_id, size = self._wanted.pop(origin)
                    self._running.add(origin)
                    group.create_task(self._one(origin, member_id, size))

    async def _one(self, origin: str, member_id: str, size: int) -> None:
        try:
            if await self._fetch(origin, member_id, size):
                self.done += 1
        finally:
            self._running.discard(origin)
            if origin in self._wanted:
                self._wake.set()
