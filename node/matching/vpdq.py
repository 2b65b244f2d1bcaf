"""vPDQ video matching as facebook/ThreatExchange's reference does it, one pair or a whole index.

The reference algorithm (vpdq/README.md, "Comparison (Matching) Algorithm"; the same in
python-threatexchange's vpdq_brute_matcher.py): each video is a bag of frame PDQ hashes.
Duplicate hashes are dropped (the first occurrence is kept), then frames of quality below
`quality` (50). A query frame is matched if some target frame is within `distance` (31,
inclusive) of it, and the other way round. The query's share of matched frames and the
target's share, in percent, must reach `query_percent` and `target_percent`. Frame numbers
and timestamps play no part. If no frame of either side survives the filters the shares are
0 and nothing matches, as in the reference's C++ matcher.

`VpdqIndex` gives the same answer for many targets at once: it keeps every usable target
frame in a `PdqIndex` (which never misses a frame within the distance), so one search per
unique query frame finds every (query frame, target frame) pair, and both shares follow
from those pairs exactly. A target with no frame near any query frame has both shares 0 and
is not reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from node.matching.pdq_index import PdqIndex, columns, hashes_to_words, scan_columns
from protocol.signals import VpdqFrame

DEFAULT_DISTANCE = 31
DEFAULT_QUALITY = 50
#: The reference README's example thresholds: 80% of the target (comparison) video must be
#: matched; 0% of the query, so that a known video inside a longer upload still matches.
DEFAULT_TARGET_PERCENT = 80.0
DEFAULT_QUERY_PERCENT = 0.0


@dataclass(frozen=True, slots=True)
class VpdqThresholds:
    """When two videos match: frame distance, frame quality floor, shares each way."""

    distance: int = DEFAULT_DISTANCE
    quality: int = DEFAULT_QUALITY
    query_percent: float = DEFAULT_QUERY_PERCENT
    target_percent: float = DEFAULT_TARGET_PERCENT

    def matches(self, query_percent: float, target_percent: float) -> bool:
        # Both shares are 0 when nothing was comparable; that is never a match.
        if query_percent == 0.0 and target_percent == 0.0:
            return False
        return query_percent >= self.query_percent and target_percent >= self.target_percent


REFERENCE_THRESHOLDS = VpdqThresholds()


@dataclass(frozen=True, slots=True)
class VpdqComparison:
    """Shares of each video's usable unique frames that matched the other, in percent."""

    query_percent: float
    target_percent: float
    is_match: bool


def usable_frames(frames: Sequence[VpdqFrame], quality: int) -> list[bytes]:
    """Unique frame hashes (first occurrence kept) of at least `quality`, in order."""
    seen: set[bytes] = set()
    out: list[bytes] = []
    for frame in frames:
        if frame.pdq in seen:
            continue
        seen.add(frame.pdq)
        if frame.quality >= quality:
            out.append(frame.pdq)
    return out


def compare(
    query: Sequence[VpdqFrame],
    target: Sequence[VpdqFrame],
    thresholds: VpdqThresholds = REFERENCE_THRESHOLDS,
) -> VpdqComparison:
    """Compare two videos by brute force, as the reference does."""
    q = usable_frames(query, thresholds.quality)
    t = usable_frames(target, thresholds.quality)
    if not q or not t:
        return VpdqComparison(0.0, 0.0, False)
    q_matched = np.zeros(len(q), dtype=bool)
    t_matched = np.zeros(len(t), dtype=bool)
    t_cols = columns(hashes_to_words(t))
    for i, query_word in enumerate(hashes_to_words(q)):
        rows, _ = scan_columns(t_cols, query_word, thresholds.distance)
        if rows.size:
            q_matched[i] = True
            t_matched[rows] = True
    q_pct = float(q_matched.sum()) * 100.0 / len(q)
    t_pct = float(t_matched.sum()) * 100.0 / len(t)
    return VpdqComparison(q_pct, t_pct, thresholds.matches(q_pct, t_pct))


@dataclass(frozen=True, slots=True)
class VpdqIndexHit:
    """A target video that matched a query, by the number it was added under."""

    video: int
    query_percent: float
    target_percent: float


class VpdqIndex:
    """Many target videos, searched together; frame quality is filtered when added."""

    __slots__ = ("_frame_video", "_frames", "_quality", "_usable_counts")

    def __init__(self, quality: int = DEFAULT_QUALITY) -> None:
        self._quality = quality
        self._frames = PdqIndex()
        self._frame_video: list[int] = []  # frame row -> video number
        self._usable_counts: list[int] = []  # video number -> usable unique frames

    def __len__(self) -> int:
        return len(self._usable_counts)

    @property
    def quality(self) -> int:
        return self._quality

    def add(self, frames: Sequence[VpdqFrame]) -> int:
        """Store a target video; returns its number (0, 1, ... in order of adding)."""
        video = len(self._usable_counts)
        usable = usable_frames(frames, self._quality)
        self._usable_counts.append(len(usable))
        if usable:
            self._frames.add_many(usable)
            self._frame_video.extend([video] * len(usable))
        return video

    def search(
        self, query: Sequence[VpdqFrame], thresholds: VpdqThresholds = REFERENCE_THRESHOLDS
    ) -> list[VpdqIndexHit]:
        """Every stored video matching `query` under `thresholds` (its quality is fixed at
        construction), best query share first."""
        q = usable_frames(query, self._quality)
        if not q or not self._frame_video:
            return []
        q_hits: dict[int, set[int]] = {}
        t_hits: dict[int, set[int]] = {}
        for qi, found in enumerate(self._frames.search_many(q, thresholds.distance)):
            for row, _ in found:
                video = self._frame_video[row]
                q_hits.setdefault(video, set()).add(qi)
                t_hits.setdefault(video, set()).add(row)
        hits = []
        for video, matched_q in q_hits.items():
            q_pct = len(matched_q) * 100.0 / len(q)
            t_pct = len(t_hits[video]) * 100.0 / self._usable_counts[video]
            if thresholds.matches(q_pct, t_pct):
                hits.append(VpdqIndexHit(video, q_pct, t_pct))
        hits.sort(key=lambda h: (-h.query_percent, -h.target_percent, h.video))
        return hits
