"""Entries decoded once: the last few stored ranges of entries with their decodings, so the
listeners of one stored batch (match index, events, metrics) neither read it back from the
store nor decode it again. A batch is remembered when its listeners are told of it (after
it is stored, and after the batches before it were told of), so it is the newest range while
they run. Entries are immutable, so sharing the decoded objects is safe; a miss falls back to
the store and to the strict decoder."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import NamedTuple

from node.store.base import Store
from protocol.entries import Entry, decode_entry
from protocol.errors import DecodeError

#: Entries the remembered ranges hold at most (the newest range is always kept whole): a few
#: batches of a catch-up (node/pipeline.py: up to MAX_QUEUED_ENTRIES and a page each).
DEFAULT_CAPACITY = 50_000
RECENT_RANGES = 8


class _Range(NamedTuple):
    raws: Sequence[bytes]
    entries: Sequence[Entry | None]  # None: the bytes did not decode


class DecodedEntries:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._held = 0  # entries in _ranges
        self._ranges: OrderedDict[tuple[str, int], _Range] = OrderedDict()

    def remember_range(
        self, origin: str, start: int, raws: Sequence[bytes], entries: Sequence[Entry | None]
    ) -> None:
        """Entries [start, start+len) of a log, just stored, and their decodings."""
        if len(raws) != len(entries):
            raise ValueError("a range's entries and decodings differ in number")
        old = self._ranges.pop((origin, start), None)
        self._held += len(raws) - (len(old.raws) if old else 0)
        self._ranges[(origin, start)] = _Range(raws, entries)
        while len(self._ranges) > 1 and (
            len(self._ranges) > RECENT_RANGES or self._held > self._capacity
        ):
            _, dropped = self._ranges.popitem(last=False)
            self._held -= len(dropped.raws)

    def _find(self, origin: str, start: int, end: int) -> tuple[_Range, int] | None:
        """The newest remembered range holding all of [start, end), and its first index."""
        for (log, first), held in reversed(self._ranges.items()):
            if log == origin and first <= start and end <= first + len(held.raws):
                return held, first
        return None

    async def read_decoded(
        self, store: Store, origin: str, start: int, end: int
    ) -> list[Entry | None]:
        """The decodings of entries [start, end) of a log (None for bytes that do not
        decode): from the recent ranges, else read from the store and decoded."""
        found = self._find(origin, start, end)
        if found is not None:
            held, first = found
            return list(held.entries[start - first : end - first])
        return [decoded_or_none(raw) for raw in await store.entries(origin, start, end)]


def decoded_or_none(raw: bytes) -> Entry | None:
    """`decode_entry`, with None for bytes that do not decode."""
    try:
        return decode_entry(raw)
    except DecodeError:
        return None
