"""The cache of decoded entries and recent ranges that the listeners of a stored batch share."""

from __future__ import annotations

import pytest

from node.entry_cache import DecodedEntries
from protocol.entries import Add, encode_entry
from protocol.errors import DecodeError


def test_a_remembered_decoding_is_returned_and_bad_bytes_stay_bad() -> None:
    cache = DecodedEntries(capacity=2)
    add = Add(1, "md5", bytes(16))
    raw = encode_entry(add)
    cache.remember(raw, add)
    assert cache.decode(raw) is add
    with pytest.raises(DecodeError):
        cache.decode(b"\xc1")
    with pytest.raises(DecodeError):
        cache.decode(b"\xc1")  # remembered as not decoding
    assert cache.decode(encode_entry(Add(2, "md5", bytes(16)))) == Add(2, "md5", bytes(16))


def test_recent_ranges_answer_only_what_they_hold() -> None:
    cache = DecodedEntries()
    raws = [bytes([i]) for i in range(10)]
    cache.remember_range("log", 100, raws)
    assert cache.recent("log", 102, 105) == raws[2:5]
    assert cache.recent("log", 100, 110) == raws
    assert cache.recent("log", 99, 101) is None
    assert cache.recent("log", 105, 111) is None
    assert cache.recent("other", 100, 101) is None


def test_remembering_many_keeps_the_newest_within_capacity() -> None:
    cache = DecodedEntries(capacity=3)
    adds = [Add(i, "md5", bytes([i]) * 16) for i in range(5)]
    raws = [encode_entry(a) for a in adds]
    cache.remember_many(zip(raws, adds, strict=True))
    assert [cache.decode(r) is a for r, a in zip(raws[2:], adds[2:], strict=True)] == [True] * 3
    # The two oldest were let go: they decode afresh, to equal but new objects.
    assert cache.decode(raws[0]) == adds[0] and cache.decode(raws[0]) is not adds[0]


def test_decoding_all_gives_remembered_decodings_and_decodes_the_rest() -> None:
    cache = DecodedEntries()
    adds = [Add(i, "md5", bytes([i]) * 16) for i in range(3)]
    raws = [encode_entry(a) for a in adds]
    cache.remember_many(zip(raws[:2], adds[:2], strict=True))
    assert cache.decode_all(raws[:2]) == adds[:2]  # all remembered: the same objects
    assert all(e is a for e, a in zip(cache.decode_all(raws[:2]), adds, strict=False))
    mixed = cache.decode_all([raws[0], b"\xc1", raws[2]])  # a miss, and bytes that are bad
    assert mixed == [adds[0], None, adds[2]] and mixed[0] is adds[0]
    assert cache.decode_all([raws[2]])[0] is mixed[2]  # the miss is remembered now
