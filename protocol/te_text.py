"""python-threatexchange's names for our signal types, and its text form of a vPDQ hash.

Names (protocol/signal_names.py): its signal types with an exact equivalent here.

threatexchange writes a vPDQ signal as a JSON list of strings `"<pdq hex>,<quality>,<seconds>"`,
one per sampled frame, in order (its `vpdq_to_json`). It has no frame numbers, and its own
writer keeps three significant digits of the timestamp. Ours (protocol/signals.py) keeps the
frame number and the timestamp in milliseconds. So:

- reading theirs, a frame's number is its position in the list and its timestamp is rounded to
  the millisecond;
- writing ours, timestamps are written to the millisecond (`12.345`), which threatexchange
  reads as they are; frame numbers are not written.

Matching uses the PDQ hashes and qualities only, which both forms keep exactly.
"""

from __future__ import annotations

import json
import math
import re

from protocol.errors import ValidationError
from protocol.signals import MAX_VPDQ_FRAMES, VpdqFrame, decode_vpdq, encode_vpdq

_PDQ_HEX = re.compile(r"[0-9a-fA-F]{64}")
_MAX_TIMESTAMP_MS = 2**32 - 1


def vpdq_from_te_text(text: str) -> bytes:
    """Our vPDQ value from threatexchange's text; ValidationError if it is not one."""
    try:
        items = json.loads(text)
    except ValueError as e:
        raise ValidationError(f"a threatexchange vpdq is a JSON list: {e}") from e
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_VPDQ_FRAMES:
        raise ValidationError(f"a threatexchange vpdq lists 1..{MAX_VPDQ_FRAMES} frames")
    frames = [_frame(number, item) for number, item in enumerate(items)]
    return encode_vpdq(frames)


def _frame(number: int, item: object) -> VpdqFrame:
    parts = item.split(",") if isinstance(item, str) else []
    if len(parts) != 3 or not _PDQ_HEX.fullmatch(parts[0]):
        raise ValidationError(f"vpdq frame {number}: not '<64 hex digits>,<quality>,<seconds>'")
    try:
        quality, seconds = int(parts[1]), float(parts[2])
    except ValueError as e:
        raise ValidationError(f"vpdq frame {number}: {e}") from e
    if not math.isfinite(seconds) or not 0 <= round(seconds * 1000) <= _MAX_TIMESTAMP_MS:
        raise ValidationError(f"vpdq frame {number}: timestamp {parts[2]} out of range")
    if not 0 <= quality <= 100:
        raise ValidationError(f"vpdq frame {number}: quality {quality} is not 0..100")
    return VpdqFrame(bytes.fromhex(parts[0]), quality, number, round(seconds * 1000))


def vpdq_to_te_text(value: bytes) -> str:
    """threatexchange's text of our vPDQ value (frame numbers are not kept)."""
    return json.dumps(
        [
            f"{f.pdq.hex()},{f.quality},{f.timestamp_ms // 1000}.{f.timestamp_ms % 1000:03d}"
            for f in decode_vpdq(value)
        ]
    )
