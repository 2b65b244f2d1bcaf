"""new_record (protocol/records.py): the fast path makes the very record the class makes."""

from __future__ import annotations

from protocol.entries import Add, decode_entry, encode_entry
from protocol.records import new_record
from protocol.replica import ReceivedEntry


def test_a_record_made_with_every_field_equals_the_one_its_class_makes() -> None:
    add = Add(1_700_000_000_000, "md5", bytes(16))
    raw = encode_entry(add)
    fast = new_record(ReceivedEntry, (7, raw, decode_entry(raw), None))
    assert type(fast) is ReceivedEntry and fast == ReceivedEntry(7, raw, add)
    assert fast.idx == 7 and fast.entry == add and fast.error is None
