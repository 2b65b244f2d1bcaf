"""The canonical codec: round trips, strictness, and only DecodeError on any bad input."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import codec
from protocol.errors import DecodeError

values = st.recursive(
    st.none()
    | st.integers(min_value=codec.MIN_INT, max_value=codec.MAX_INT)
    | st.binary(max_size=64)
    | st.text(max_size=32),
    lambda children: st.lists(children, max_size=6),
    max_leaves=30,
)


@given(values)
def test_round_trip_gives_identical_bytes(value: codec.Value) -> None:
    raw = codec.encode(value)
    assert codec.decode(raw) == value
    assert codec.encode(codec.decode(raw)) == raw


@given(st.binary(max_size=256))
def test_arbitrary_bytes_give_a_value_or_decode_error_only(data: bytes) -> None:
    try:
        value = codec.decode(data)
    except DecodeError:
        return
    assert codec.encode(value) == data


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"\x91\x01\x00", "trailing"),
        (b"\xcc\x01", "canonical"),  # 1 written as uint8
        (b"\xd0\x05", "canonical"),  # 5 written as int8
        (b"\xd9\x01a", "canonical"),  # 'a' written as str8
        (b"\xc4\x01", "malformed"),  # truncated bin
        (b"\x81\x01\x02", "malformed"),  # a map
        (b"\xc3", "booleans"),
        (b"\xcb" + b"\0" * 8, "float"),
        (b"\xd4\x01\x00", "malformed"),  # ext
        (b"", "malformed"),
        (b"\xa2\xff\xfe", "malformed"),  # invalid UTF-8
    ],
)
def test_non_canonical_or_foreign_input_is_refused(raw: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        codec.decode(raw)


def test_over_long_input_and_fields_are_refused() -> None:
    with pytest.raises(DecodeError, match="exceeds"):
        codec.decode(codec.encode(b"x" * 100), max_bytes=50)
    with pytest.raises(DecodeError):
        codec.decode(codec.encode(list(range(20))), max_items=10)


def test_deep_nesting_is_refused_not_crashing() -> None:
    raw = b"\x91" * 5000 + b"\xc0"
    with pytest.raises(DecodeError):
        codec.decode(raw)


def test_encode_refuses_types_outside_the_model() -> None:
    for bad in (True, 1.5, {"a": 1}, 2**64):
        with pytest.raises(DecodeError):
            codec.encode(bad)  # type: ignore[arg-type]


def test_msgpack_shortest_forms_match_the_spec_examples() -> None:
    # Independent of our encoder: the bytes msgpack's spec gives for these values.
    assert codec.decode(bytes.fromhex("93 01 c4 01 ff a1 61".replace(" ", ""))) == [1, b"\xff", "a"]
    assert msgpack.packb(300) == bytes.fromhex("cd012c")
    assert codec.decode(bytes.fromhex("cd012c")) == 300
