"""Canonical msgpack encoding: the only module that touches msgpack.

Values are built from int, bytes, str, list (msgpack array) and None only: no maps, floats,
booleans or extension types. `decode` is strict: exactly one value, no trailing bytes, every
length within the caller's bounds, and re-encoding must reproduce the input byte for byte
(msgpack-python always writes the shortest form, so any non-shortest input is refused).
"""

from __future__ import annotations

from typing import TypeAlias

import msgpack

from protocol.errors import DecodeError

Value: TypeAlias = "int | bytes | str | list[Value] | None"

#: Default bounds; callers pass tighter ones for their record type.
MAX_BYTES = 1 << 20
MAX_ITEMS = 1 << 16
MAX_INT = (1 << 64) - 1
MIN_INT = -(1 << 63)


def encode(value: Value) -> bytes:
    """Encode a value canonically; raises DecodeError on a type outside the model."""
    check_types(value)
    return msgpack.Packer(use_bin_type=True).pack(value)


def decode(data: bytes, *, max_bytes: int = MAX_BYTES, max_items: int = MAX_ITEMS) -> Value:
    """Decode exactly one canonical value from `data`, or raise DecodeError."""
    value, data = unpack(data, max_bytes=max_bytes, max_items=max_items)
    check_types(value)
    check_canonical(value, data)
    return value  # type: ignore[return-value]  # check_types passed


def unpack(data: bytes, *, max_bytes: int, max_items: int) -> tuple[object, bytes]:
    """The first step of `decode`: exactly one msgpack value within the bounds, and the input
    as bytes. Neither its types nor its canonical form are checked yet: a caller either
    finishes with `check_types` and `check_canonical` (what `decode` does), or checks the
    exact type of every item itself, which a record decoder does anyway, and then calls
    `check_canonical`."""
    if type(data) is not bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError("input is not bytes")
        data = bytes(data)
    if len(data) > max_bytes:
        raise DecodeError(f"input of {len(data)} bytes exceeds {max_bytes}")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            max_bin_len=max_bytes,
            max_str_len=max_bytes,
            max_array_len=max_items,
            max_map_len=0,
            max_ext_len=0,
        )
    except msgpack.ExtraData as e:
        raise DecodeError("trailing bytes after the value") from e
    except (ValueError, TypeError, UnicodeDecodeError, msgpack.UnpackException) as e:
        raise DecodeError(f"malformed msgpack: {e}") from e
    except RecursionError as e:
        raise DecodeError("nesting too deep") from e
    return value, data


def check_canonical(value: object, data: bytes) -> None:
    """`data` is the canonical encoding of `value`, which holds only the model's types."""
    # A packer made here, not msgpack.packb: packb's keyword plumbing costs as much again.
    if msgpack.Packer(use_bin_type=True).pack(value) != data:
        raise DecodeError("not the canonical encoding")


def check_types(value: object, depth: int = 0) -> None:
    """`value` holds only the model's types (int in range, bytes, str, None, lists)."""
    # Exact type() tests: this walk runs on every decoded record, and bool (a subclass of
    # int) must not pass as an int.
    kind = type(value)
    if kind is list:
        if depth >= 16:
            raise DecodeError("nesting too deep")
        for item in value:  # type: ignore[attr-defined]
            item_kind = type(item)
            if item_kind is bytes or item_kind is str or item is None:
                continue
            if item_kind is int:
                if not MIN_INT <= item <= MAX_INT:
                    raise DecodeError("integer out of range")
                continue
            check_types(item, depth + 1)
        return
    if kind is int:
        if not MIN_INT <= value <= MAX_INT:  # type: ignore[operator]
            raise DecodeError("integer out of range")
        return
    if kind is bytes or kind is str or value is None:
        return
    if isinstance(value, bool):
        raise DecodeError("booleans are not part of the encoding")
    raise DecodeError(f"type {kind.__name__} is not part of the encoding")


# Typed accessors used by record decoders: each raises DecodeError with the field's name.


def as_list(value: Value, name: str, length: int | None = None) -> list[Value]:
    if not isinstance(value, list):
        raise DecodeError(f"{name}: expected an array")
    if length is not None and len(value) != length:
        raise DecodeError(f"{name}: expected {length} items, got {len(value)}")
    return value


def as_int(value: Value, name: str, lo: int = 0, hi: int = MAX_INT) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise DecodeError(f"{name}: expected an integer")
    if not lo <= value <= hi:
        raise DecodeError(f"{name}: {value} outside [{lo}, {hi}]")
    return value


def as_bytes(value: Value, name: str, max_len: int, exact: int | None = None) -> bytes:
    if not isinstance(value, bytes):
        raise DecodeError(f"{name}: expected bytes")
    if exact is not None and len(value) != exact:
        raise DecodeError(f"{name}: expected {exact} bytes, got {len(value)}")
    if len(value) > max_len:
        raise DecodeError(f"{name}: {len(value)} bytes exceeds {max_len}")
    return value


def as_str(value: Value, name: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise DecodeError(f"{name}: expected a string")
    # UTF-8 takes 1 to 4 bytes a character: most strings are decided without encoding them.
    if len(value) * 4 > max_len and (len(value) > max_len or len(value.encode()) > max_len):
        raise DecodeError(f"{name}: longer than {max_len} bytes")
    return value


def as_opt_str(value: Value, name: str, max_len: int) -> str | None:
    return None if value is None else as_str(value, name, max_len)


def as_opt_bytes(value: Value, name: str, max_len: int) -> bytes | None:
    return None if value is None else as_bytes(value, name, max_len)


def as_str_list(value: Value, name: str, max_items: int, max_len: int) -> tuple[str, ...]:
    items = as_list(value, name)
    if len(items) > max_items:
        raise DecodeError(f"{name}: more than {max_items} items")
    for i, item in enumerate(items):
        if type(item) is not str or len(item) * 4 > max_len:
            as_str(item, f"{name}[{i}]", max_len)  # the exact check, naming the item
    return tuple(items)  # type: ignore[arg-type]  # every item is a str, checked above
