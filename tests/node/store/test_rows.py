"""Store rows made of received entries: the columns every store finds entries by."""

from __future__ import annotations

from node.store.base import EntryRow
from node.store.rows import entry_row
from protocol.entries import Add, Dispute, EntryRef, Retract


def test_each_kind_of_entry_makes_the_row_its_named_fields_make() -> None:
    target = EntryRef("hashmesh.acme.example/log", 7)
    url = "https://example.com/x"
    cases = [
        (Add(5, "pdq", bytes(32)), EntryRow(1, b"r", 0, "pdq", bytes(32), timestamp_ms=5)),
        (Add(6, "url", url), EntryRow(1, b"r", 0, "url", url.encode(), timestamp_ms=6)),
        (Retract(8, target), EntryRow(1, b"r", 1, None, None, target.log, 7, timestamp_ms=8)),
        (
            Dispute(9, target, "other"),
            EntryRow(1, b"r", 2, None, None, target.log, 7, timestamp_ms=9),
        ),
        (None, EntryRow(1, b"r")),  # did not decode: kept, but found by nothing
    ]
    for entry, expected in cases:
        row = entry_row(1, b"r", entry, 42)
        assert type(row) is EntryRow
        assert row == expected._replace(received_ms=42)
        assert row._asdict() == expected._replace(received_ms=42)._asdict()
