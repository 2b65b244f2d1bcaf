"""Entries decoded once: a bounded cache of recently stored entries' decodings, keyed by their
exact bytes, so the listeners of one stored batch (match index, events, metrics) do not each
decode every entry again. Entries are immutable, so sharing the decoded objects is safe; a
miss falls back to the strict decoder."""

from __future__ import annotations

from collections import OrderedDict

from protocol.entries import Entry, decode_entry
from protocol.errors import DecodeError

DEFAULT_CAPACITY = 50_000


class DecodedEntries:
    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._capacity = capacity
        self._cache: OrderedDict[bytes, Entry | None] = OrderedDict()

    def remember(self, raw: bytes, entry: Entry | None) -> None:
        """Keep a decoding made elsewhere (None: the bytes did not decode)."""
        self._cache[raw] = entry
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)

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
