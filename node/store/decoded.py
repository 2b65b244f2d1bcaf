"""Entries decoded once: the last few stored ranges of entries with their decodings, so the
listeners of one stored batch (match index, metrics) neither read it back from the store nor
decode it again; node/core/listeners.py, its one reader, hands them over. A batch is
remembered when its listeners are told of it (after it is stored, and after the batches
before it were told of), so it is the newest range while they run. Entries are immutable, so
sharing the decoded objects is safe; a miss falls back to the store and to the strict
decoder."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from node.store.base import Store
from protocol.entries import Entry, decode_entry
from protocol.errors import DecodeError

#: Entries the remembered ranges hold at most; the newest range is always kept whole. None
#: by default beyond it: a range's listeners take its decodings on their first ask (one
#: `Decodings` a range, node/core/listeners.py), which comes before the next batch of the log
#: is remembered, so older ranges would only be held for a re-delivery, which can read the
#: store; at a catch-up's pace they were 23 MiB of decoded entries (docs/performance.md).
DEFAULT_CAPACITY = 0
RECENT_RANGES = 8


class DecodedEntries:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._held = 0  # entries in _ranges
        # (log, first index) -> decodings of that log's entries from there (None: the bytes
        # did not decode)
        self._ranges: OrderedDict[tuple[str, int], Sequence[Entry | None]] = OrderedDict()

    def remember_range(self, origin: str, start: int, entries: Sequence[Entry | None]) -> None:
        """The decodings of entries [start, start+len) of a log, just stored."""
        old = self._ranges.pop((origin, start), None)
        self._held += len(entries) - (len(old) if old is not None else 0)
        self._ranges[(origin, start)] = entries
        while len(self._ranges) > 1 and (
            len(self._ranges) > RECENT_RANGES or self._held > self._capacity
        ):
            _, dropped = self._ranges.popitem(last=False)
            self._held -= len(dropped)

    async def read_decoded(
        self, store: Store, origin: str, start: int, end: int
    ) -> list[Entry | None]:
        """The decodings of entries [start, end) of a log (None for bytes that do not
        decode): from the recent ranges, else read from the store and decoded."""
        for (log, first), held in reversed(self._ranges.items()):  # the newest first
            if log == origin and first <= start and end <= first + len(held):
                return list(held[start - first : end - first])
        return [decoded_or_none(raw) for raw in await store.entries(origin, start, end)]


def decoded_or_none(raw: bytes) -> Entry | None:
    """`decode_entry`, with None for bytes that do not decode."""
    try:
        return decode_entry(raw)
    except DecodeError:
        return None
