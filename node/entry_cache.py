"""Entries decoded once: a bounded cache of recently stored entries' decodings, keyed by their
exact bytes, and of the last few stored ranges, so the listeners of one stored batch (match
index, events, metrics) neither read it back from the store nor decode it again. Entries are
immutable, so sharing the decoded objects is safe; a miss falls back to the store and to the
strict decoder."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

from node.store.base import Store
from protocol.entries import Entry, decode_entry
from protocol.errors import DecodeError

#: At least one batch a catch-up stores (node/pipeline.py: up to MAX_QUEUED_ENTRIES and a
#: page), so its listeners find every entry of it.
DEFAULT_CAPACITY = 50_000
RECENT_RANGES = 8


class _Missing:
    """Not in the cache (None is a remembered decoding: the bytes did not decode)."""

    __slots__ = ()


_MISSING = _Missing()


class DecodedEntries:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._cache: OrderedDict[bytes, Entry | None] = OrderedDict()
        self._ranges: OrderedDict[tuple[str, int], list[bytes]] = OrderedDict()

    def remember_range(self, origin: str, start: int, raws: list[bytes]) -> None:
        """Entries [start, start+len) of a log, just stored."""
        self._ranges[(origin, start)] = raws
        while len(self._ranges) > RECENT_RANGES:
            self._ranges.popitem(last=False)

    def recent(self, origin: str, start: int, end: int) -> list[bytes] | None:
        """Entries [start, end) if one remembered range holds them all."""
        for (log, first), raws in reversed(self._ranges.items()):
            if log == origin and first <= start and end <= first + len(raws):
                return raws[start - first : end - first]
        return None

    async def read(self, store: Store, origin: str, start: int, end: int) -> list[bytes]:
        """Entries [start, end) of a log: from the recent ranges, else from the store."""
        found = self.recent(origin, start, end)
        return found if found is not None else await store.entries(origin, start, end)

    def remember(self, raw: bytes, entry: Entry | None) -> None:
        """Keep a decoding made elsewhere (None: the bytes did not decode)."""
        self._cache[raw] = entry
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)

    def remember_many(self, decoded: Iterable[tuple[bytes, Entry | None]]) -> None:
        """`remember` for many: one dict update, then the oldest beyond capacity go."""
        cache = self._cache
        cache.update(decoded)
        for _ in range(len(cache) - self._capacity):
            cache.popitem(last=False)

    def decode_all(self, raws: Sequence[bytes]) -> list[Entry | None]:
        """`decode` of each raw, None for one that does not decode: one cache lookup each
        when the cache holds them, as it does for the batch its listeners are told of."""
        get = self._cache.get
        found: list[Entry | _Missing | None] = [get(raw, _MISSING) for raw in raws]
        if not found.count(_MISSING):
            return found  # type: ignore[return-value]  # no _MISSING in it
        return [self._decoded_or_none(raw) for raw in raws]

    def _decoded_or_none(self, raw: bytes) -> Entry | None:
        try:
            return self.decode(raw)
        except DecodeError:
            return None

    def decode(self, raw: bytes) -> Entry:
        """The entry, as decode_entry gives it; DecodeError for bytes that do not decode."""
        if raw in self._cache:
            entry = self._cache[raw]
        else:
            try:
                entry = decode_entry(raw)
            except DecodeError:
                entry = None
            self.remember(raw, entry)
        if entry is None:
            raise DecodeError("entry does not decode")
        return entry
