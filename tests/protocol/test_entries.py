"""Entries and signal values: validation per type and strict decoding."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import codec
from protocol.entries import (
    MAX_ENTRY_BYTES,
    MAX_REMEMBERED_INCIDENTS,
    MAX_REMEMBERED_LABEL_SETS,
    Add,
    Confirm,
    Dispute,
    EntryRef,
    Retract,
    _decode_items,
    decode_entry,
    encode_entry,
)
from protocol.errors import DecodeError, ValidationError
from protocol.signals import VpdqFrame, decode_vpdq, encode_vpdq, parse_value, validate_value

PDQ = bytes(range(32))


def test_add_round_trip_and_layout() -> None:
    add = Add(1_700_000_000_000, "pdq", PDQ, ("glorification", "terrorist-attack"), "inc-1", b"r")
    raw = encode_entry(add)
    assert decode_entry(raw) == add
    assert codec.decode(raw) == [
        1,
        0,
        1_700_000_000_000,
        "pdq",
        PDQ,
        ["glorification", "terrorist-attack"],
        "inc-1",
        b"r",
    ]


def test_retract_and_dispute_round_trip() -> None:
    r = Retract(5, EntryRef("a.example/log", 3), "mistake")
    d = Dispute(6, EntryRef("b.example/log", 9), "not-terrorist-content", "news report")
    assert decode_entry(encode_entry(r)) == r
    assert decode_entry(encode_entry(d)) == d


@pytest.mark.parametrize(
    ("signal_type", "value"),
    [
        ("pdq", bytes(31)),
        ("pdq", bytes(33)),
        ("md5", bytes(15)),
        ("sha256", bytes(16)),
        ("video_md5", bytes(32)),
        ("url", "ftp://x"),
        ("url", "https://a b"),
        ("url", b"https://x"),
        ("pdq", "00" * 32),
        ("vpdq", bytes(40)),
        ("unknown", bytes(16)),
    ],
)
def test_values_are_validated_per_type(signal_type: str, value: bytes | str) -> None:
    with pytest.raises(ValidationError):
        validate_value(signal_type, value)


def test_labels_must_be_sorted_unique_and_kebab_case() -> None:
    with pytest.raises(ValidationError):
        Add(0, "md5", bytes(16), ("b", "a"))
    with pytest.raises(ValidationError):
        Add(0, "md5", bytes(16), ("a", "a"))
    with pytest.raises(ValidationError):
        Add(0, "md5", bytes(16), ("Not Kebab",))


def test_remembered_valid_label_sets_never_let_an_invalid_set_through() -> None:
    # Valid label sets are remembered so each is checked once; an invalid set must still be
    # refused every time, also after many valid sets filled and emptied the memory.
    good = ("terrorist-attack", "violent")
    Add(0, "md5", bytes(16), good)
    for i in range(MAX_REMEMBERED_LABEL_SETS + 5):
        Add(0, "md5", bytes(16), (f"label-{i}",))
        with pytest.raises(ValidationError):
            Add(0, "md5", bytes(16), ("violent", "terrorist-attack"))  # unsorted
    assert Add(0, "md5", bytes(16), good).labels == good


def test_decoded_adds_of_one_label_set_and_signal_type_share_those_objects() -> None:
    """A catch-up holds tens of thousands of decoded adds at once: equal label sets and
    signal types are one object each, not one an entry, and stay equal to what was sent."""
    labels = ("terrorist-attack", "violent")
    first, second = (
        decode_entry(encode_entry(Add(ts, "pdq", bytes([ts]) * 32, labels))) for ts in (1, 2)
    )
    assert isinstance(first, Add) and isinstance(second, Add)
    assert first.labels == second.labels == labels
    assert first.labels is second.labels
    assert first.labels[0] is second.labels[0]
    assert first.signal_type == second.signal_type == "pdq"
    assert first.signal_type is second.signal_type


def test_remembered_valid_incidents_never_let_an_invalid_one_through() -> None:
    Add(0, "md5", bytes(16), (), "christchurch-2019")
    for i in range(MAX_REMEMBERED_INCIDENTS + 5):
        Add(0, "md5", bytes(16), (), f"incident-{i}")
        with pytest.raises(ValidationError):
            Add(0, "md5", bytes(16), (), "-starts-with-a-dash")
    assert Add(0, "md5", bytes(16), (), "christchurch-2019").incident == "christchurch-2019"


_FIELD_CHOICES: list[list[codec.Value]] = [
    [1, 2, 0],  # version
    [0, 1, 3],  # kind
    [0, 1_700_000_000_000, 2**53, 2**53 + 1, -1, "12", None],  # timestamp
    ["md5", "pdq", "url", "vpdq", "x" * 40, b"md5", None],  # signal type
    [bytes(16), bytes(32), bytes(15), "https://example.org/a", "not a url", None, [1]],
    [[], ["terrorist-attack"], ["a", "b"], ["b", "a"], ["A"], [b"a"], [["a"]], ["a"] * 17],
    [None, "inc-1", "-bad", "x" * 65, b"inc", ["inc"]],  # incident
    [None, b"ref", bytes(257), "ref", 5],  # reference
]


@given(st.tuples(*(st.sampled_from(c) for c in _FIELD_CHOICES)), st.booleans())
def test_the_fast_add_path_decodes_exactly_as_the_field_by_field_path(
    fields: tuple[codec.Value, ...], short: bool
) -> None:
    # decode_entry tries a plain add first; what it accepts, and every error, must be what
    # decoding field by field gives.
    items = list(fields[:5] if short else fields)
    raw = codec.encode(items)
    value = codec.decode(raw, max_bytes=MAX_ENTRY_BYTES, max_items=24)
    try:
        expected: Any = _decode_items(value)
    except DecodeError as e:
        expected = str(e)
    try:
        got: Any = decode_entry(raw)
    except DecodeError as e:
        got = str(e)
    assert got == expected


def test_vpdq_frames_round_trip() -> None:
    frames = [VpdqFrame(PDQ, 90, i, i * 1000) for i in range(3)]
    value = encode_vpdq(frames)
    assert decode_vpdq(value) == frames
    validate_value("vpdq", value)


def test_parse_value_reads_hex_and_urls() -> None:
    assert parse_value("md5", "00" * 16) == bytes(16)
    assert parse_value("url", "https://example.org/x") == "https://example.org/x"
    with pytest.raises(ValidationError):
        parse_value("md5", "zz" * 16)


def test_invalid_content_in_canonical_form_is_a_decode_error() -> None:
    raw = codec.encode([1, 0, 0, "pdq", bytes(31), [], None, None])
    with pytest.raises(DecodeError, match="pdq"):
        decode_entry(raw)
    with pytest.raises(DecodeError, match="version"):
        decode_entry(codec.encode([2, 0, 0, "md5", bytes(16), [], None, None]))
    with pytest.raises(DecodeError, match="kind"):
        decode_entry(codec.encode([1, 7, 0]))
    with pytest.raises(DecodeError):
        decode_entry(codec.encode([1, 0, 0, "md5", bytes(16), [], None]))


def test_trailing_bytes_after_an_entry_are_refused() -> None:
    raw = encode_entry(Add(0, "md5", bytes(16)))
    with pytest.raises(DecodeError, match="trailing"):
        decode_entry(raw + b"\x00")


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_only_to_entries_or_decode_error(data: bytes) -> None:
    try:
        entry = decode_entry(data)
    except DecodeError:
        return
    assert encode_entry(entry) == data


@pytest.mark.parametrize(
    "add",
    [
        lambda: Add(1, "md5", bytes(16), labels=("glorification\n",)),
        lambda: Add(1, "md5", bytes(16), incident="christchurch-2019\n"),
        lambda: Add(1, "url", "https://example.com/x\n"),
    ],
)
def test_a_trailing_newline_does_not_slip_past_label_incident_or_url_checks(add: Any) -> None:
    with pytest.raises(ValidationError):
        add()


def test_a_decoded_add_is_the_frozen_add_its_fields_make() -> None:
    made = Add(1_700_000_000_000, "pdq", bytes(range(32)), ("violent",), "inc-1", b"ref")
    decoded = decode_entry(encode_entry(made))
    assert type(decoded) is Add and decoded == made and hash(decoded) == hash(made)
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.value = b"changed"  # type: ignore[misc]


@pytest.mark.parametrize("position", [1, 2, 3])  # version, kind, timestamp
def test_a_boolean_where_an_add_has_an_integer_is_refused(position: int) -> None:
    # True and False compare equal to 1 and 0: only exact types keep them out.
    raw = bytearray(encode_entry(Add(0, "md5", bytes(16))))
    assert raw[position] in (0x00, 0x01)  # fixints: version 1, kind 0, timestamp 0
    raw[position] = 0xC3 if raw[position] == 0x01 else 0xC2
    with pytest.raises(DecodeError, match="booleans are not part of the encoding"):
        decode_entry(bytes(raw))


def test_a_str_subclass_equal_to_a_remembered_incident_is_still_checked() -> None:
    class Posing(str):
        def __eq__(self, other: object) -> bool:
            return True

        def __hash__(self) -> int:
            return hash("inc-remembered")

    Add(0, "md5", bytes(16), (), "inc-remembered")
    with pytest.raises(ValidationError):
        Add(0, "md5", bytes(16), (), Posing("-not valid-"))


def test_a_confirmation_round_trips_with_its_layout() -> None:
    c = Confirm(7, EntryRef("b.example/log", 9), "also-removed", "same video")
    raw = encode_entry(c)
    assert decode_entry(raw) == c
    assert codec.decode(raw) == [1, 3, 7, ["b.example/log", 9], "also-removed", "same video"]


def test_a_confirmation_needs_a_known_reason_code() -> None:
    with pytest.raises(ValidationError):
        Confirm(7, EntryRef("b.example/log", 9), "wrong-label")
    raw = codec.encode([1, 3, 7, ["b.example/log", 9], "agree", ""])
    with pytest.raises(DecodeError):
        decode_entry(raw)


def test_an_entry_of_an_unknown_kind_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="unknown kind 9"):
        decode_entry(codec.encode([1, 9, 7, ["b.example/log", 9], "reviewed", ""]))
