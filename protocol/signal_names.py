"""The names of signal types: ours, and python-threatexchange's with an exact equivalent here.
Constants only (protocol.signals holds their sizes, checks and text forms; protocol.te_text
threatexchange's vPDQ text), so that the CLI can offer them as choices cheaply.

Names follow python-threatexchange where one exists (pdq, vpdq, video_md5, url); md5 and sha256
cover exact files. Its names are its SignalType.get_name(): a video's file SHA-256 is a file
SHA-256, so its video_sha256 is our sha256; the reverse would call an image's SHA-256 a
video's, so our sha256 and md5 have no name there.
"""

from __future__ import annotations

SIGNAL_TYPES: tuple[str, ...] = ("pdq", "vpdq", "md5", "sha256", "video_md5", "url")
#: Types looked up by equality only (no near-duplicate search).
EXACT_TYPES: tuple[str, ...] = ("md5", "sha256", "video_md5", "url")

TE_TO_OURS: dict[str, str] = {
    "pdq": "pdq",
    "vpdq": "vpdq",
    "video_md5": "video_md5",
    "video_sha256": "sha256",
    "url": "url",
}
OURS_TO_TE: dict[str, str] = {"pdq": "pdq", "vpdq": "vpdq", "video_md5": "video_md5", "url": "url"}
#: Its signal types (its own and its bundled extensions') with no equivalent here.
TE_WITHOUT_EQUIVALENT: frozenset[str] = frozenset(
    {"raw_text", "trend_query", "url_md5", "tlsh", "pdq_ocr"}
)
