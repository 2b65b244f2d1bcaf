"""The dashboard templates' filters: `visible` (also the environment's finalize, so every value
a template shows passes it), `when` and `duration`."""

from __future__ import annotations

import re
import time

# C0 and C1 controls, the bidi embeddings, overrides, isolates and marks, zero-width and other
# invisible format characters, line and paragraph separators, and the Unicode tag characters;
# feed.js shows the same set the same way.
_INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u2064"
    "\u2066-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f]"
)


def visible(value: object) -> object:
    """Text with every invisible or reordering character shown as ⟨U+XXXX⟩; other values as
    they are (markup we made stays markup)."""
    if not isinstance(value, str) or not _INVISIBLE.search(value):
        return value
    # type(value): markup (a str subclass) stays markup; the escapes hold nothing to escape.
    return type(value)(_INVISIBLE.sub(lambda m: f"⟨U+{ord(m.group()):04X}⟩", value))


def when(ms: int | None) -> str:
    """A time in ms since the epoch as UTC text, to the second."""
    if not ms:
        return "never"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


def duration(ms: int | float | None) -> str:
    """A span in ms as a short human text: 350 ms, 4.2 s, 3 min, 5 h, 2.5 days."""
    if ms is None:
        return "-"
    ms = max(0.0, float(ms))
    if ms < 1_000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.0f} min"
    if ms < 86_400_000:
        return f"{ms / 3_600_000:.1f} h"
    return f"{ms / 86_400_000:.1f} days"
