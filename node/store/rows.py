"""Turning entries into store rows, and stored rows back into located entries."""

from __future__ import annotations

from node.store.base import EntryRow, FoundEntry
from protocol.entries import Add, Confirm, Dispute, Entry, EntryRef, Retract, decode_entry
from protocol.errors import DecodeError
from protocol.records import new_record
from protocol.signals import value_key
from protocol.view import LocatedEntry


def entry_row(index: int, raw: bytes, entry: Entry | None, received_ms: int) -> EntryRow:
    """The store row of an entry; an entry that did not decode is kept but never found."""
    if isinstance(entry, Add):
        key = value_key(entry.value)
        ts = entry.timestamp_ms
        return new_record(
            EntryRow, (index, raw, 0, entry.signal_type, key, None, None, ts, received_ms)
        )
    if isinstance(entry, Retract | Dispute | Confirm):
        kind = 1 if isinstance(entry, Retract) else 2 if isinstance(entry, Dispute) else 3
        log, target, ts = entry.target.log, entry.target.index, entry.timestamp_ms
        return new_record(EntryRow, (index, raw, kind, None, None, log, target, ts, received_ms))
    return new_record(EntryRow, (index, raw, None, None, None, None, None, 0, received_ms))


def located(found: FoundEntry) -> LocatedEntry | None:
    """Decode a stored entry (verified when it arrived); None if it never decoded."""
    try:
        entry = decode_entry(found.raw)
    except DecodeError:
        return None
    return LocatedEntry(EntryRef(found.log, found.index), entry, found.received_ms)
