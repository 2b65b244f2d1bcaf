"""The entries most recently pushed, kept so that one read serves every peer's pusher.

A new checkpoint of our log is pushed to every peer, each pusher sending the same entries
(from what that peer holds): read from the store once, not once a peer. Entries never change
once in a log, so what is kept is always right; at most `capacity` entries are kept, the
least recently pushed dropped first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable

#: Entries kept: a few pushes of a page each, a few MiB.
DEFAULT_CAPACITY = 16_384

Read = Callable[[str, int, int], Awaitable[list[bytes]]]


class RecentEntries:
    """Entries [start, end) of a log, from those kept or else from `read` (the store)."""

    def __init__(self, read: Read, capacity: int = DEFAULT_CAPACITY) -> None:
        self._read = read
        self._capacity = capacity
        self._kept: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def __len__(self) -> int:
        return len(self._kept)

    async def entries(self, origin: str, start: int, end: int) -> list[bytes]:
        kept = self._kept
        keys = [(origin, i) for i in range(start, end)]
        if all(k in kept for k in keys):
            for k in keys:
                kept.move_to_end(k)
            return [kept[k] for k in keys]
        raws = await self._read(origin, start, end)
        if len(raws) <= self._capacity:
            for k, raw in zip(keys, raws, strict=False):
                kept[k] = raw
                kept.move_to_end(k)
            while len(kept) > self._capacity:
                kept.popitem(last=False)
        return raws
