"""Signal types' hash values: sizes, validation and text forms (their names:
protocol/signal_names.py).

Binary hashes travel as raw bytes; text forms (hex, or the URL itself) are for people and for
the CLI.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

from protocol.errors import ValidationError
from protocol.signal_names import SIGNAL_TYPES

PDQ_BYTES = 32
#: vPDQ frame: PDQ hash (32), quality 0-100 (1), frame number (u32 BE), timestamp in ms (u32 BE).
VPDQ_FRAME = struct.Struct(">32sBII")
MAX_VPDQ_FRAMES = 16384
MAX_URL_BYTES = 2048

#: Fixed-size binary signal types and their byte lengths.
FIXED_SIZES: dict[str, int] = {"pdq": PDQ_BYTES, "md5": 16, "sha256": 32, "video_md5": 16}

_URL = re.compile(r"^https?://[^\s]+$")
_HEX = re.compile(r"^[0-9a-fA-F]*$")


@dataclass(frozen=True, slots=True)
class VpdqFrame:
    """One sampled frame of a video: its PDQ hash and quality, where it occurs."""

    pdq: bytes
    quality: int
    frame_number: int
    timestamp_ms: int


def validate_value(signal_type: str, value: bytes | str) -> None:
    """Raise ValidationError unless `value` is a well-formed hash of `signal_type`."""
    if signal_type not in SIGNAL_TYPES:
        raise ValidationError(f"unknown signal type {signal_type!r}")
    if signal_type == "url":
        if not isinstance(value, str):
            raise ValidationError("a url value is text")
        if len(value.encode()) > MAX_URL_BYTES or not _URL.fullmatch(value):
            raise ValidationError(
                "a url value is an http(s) URL without spaces, at most 2048 bytes"
            )
        return
    if not isinstance(value, bytes):
        raise ValidationError(f"a {signal_type} value is raw bytes")
    if signal_type == "vpdq":
        decode_vpdq(value)
        return
    want = FIXED_SIZES[signal_type]
    if len(value) != want:
        raise ValidationError(f"a {signal_type} hash is {want} bytes, not {len(value)}")


def encode_vpdq(frames: list[VpdqFrame]) -> bytes:
    if not 1 <= len(frames) <= MAX_VPDQ_FRAMES:
        raise ValidationError(f"a vpdq hash has 1..{MAX_VPDQ_FRAMES} frames")
    out = bytearray()
    for f in frames:
        if len(f.pdq) != PDQ_BYTES or not 0 <= f.quality <= 100:
            raise ValidationError("a vpdq frame has a 32-byte PDQ and a quality of 0..100")
        if not (0 <= f.frame_number < 2**32 and 0 <= f.timestamp_ms < 2**32):
            raise ValidationError("vpdq frame number or timestamp out of range")
        out += VPDQ_FRAME.pack(f.pdq, f.quality, f.frame_number, f.timestamp_ms)
    return bytes(out)


def decode_vpdq(value: bytes) -> list[VpdqFrame]:
    size = VPDQ_FRAME.size
    if not value or len(value) % size or len(value) // size > MAX_VPDQ_FRAMES:
        raise ValidationError(f"a vpdq hash is 1..{MAX_VPDQ_FRAMES} frames of {size} bytes")
    frames = [VpdqFrame(*VPDQ_FRAME.unpack_from(value, i)) for i in range(0, len(value), size)]
    if any(f.quality > 100 for f in frames):
        raise ValidationError("a vpdq frame quality is 0..100")
    return frames


def value_text(signal_type: str, value: bytes | str) -> str:
    """The text form of a hash: the URL itself, or lowercase hex."""
    return value if isinstance(value, str) else value.hex()


def parse_value(signal_type: str, text: str) -> bytes | str:
    """Parse a text form back into a validated value (hex for binary types)."""
    value: bytes | str
    if signal_type == "url":
        value = text
    else:
        if not _HEX.fullmatch(text) or len(text) % 2:
            raise ValidationError(f"a {signal_type} hash is written in hex")
        value = bytes.fromhex(text)
    validate_value(signal_type, value)
    return value


def value_key(value: bytes | str) -> bytes:
    """The bytes under which a value is indexed (URLs as UTF-8)."""
    return value.encode() if isinstance(value, str) else value
