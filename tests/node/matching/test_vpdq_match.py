"""vPDQ matching follows the reference algorithm; the index agrees with pairwise comparison."""

from __future__ import annotations

import random

import pytest

from node.matching.vpdq import (
    REFERENCE_THRESHOLDS,
    VpdqIndex,
    VpdqThresholds,
    compare,
    usable_frames,
)
from protocol.signals import VpdqFrame


def _flip(h: bytes, bits: list[int]) -> bytes:
    v = int.from_bytes(h, "big")
    for b in bits:
        v ^= 1 << b
    return v.to_bytes(32, "big")


def _video(hashes: list[bytes], quality: int = 100) -> list[VpdqFrame]:
    return [VpdqFrame(h, quality, i, i * 1000) for i, h in enumerate(hashes)]


def _reference(
    q: list[VpdqFrame], c: list[VpdqFrame], t: VpdqThresholds
) -> tuple[float, float, bool]:
    """A direct transcription of the pseudocode in ThreatExchange's vpdq/README.md."""

    def unique_filtered(frames: list[VpdqFrame]) -> list[bytes]:
        seen: dict[bytes, int] = {}
        for f in frames:
            seen.setdefault(f.pdq, f.quality)
        return [h for h, quality in seen.items() if quality >= t.quality]

    def dist(a: bytes, b: bytes) -> int:
        return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()

    qu, cu = unique_filtered(q), unique_filtered(c)
    if not qu or not cu:
        return 0.0, 0.0, False
    q_count = sum(any(dist(a, b) <= t.distance for b in cu) for a in qu)
    c_count = sum(any(dist(a, b) <= t.distance for b in qu) for a in cu)
    q_pct, c_pct = q_count * 100 / len(qu), c_count * 100 / len(cu)
    return q_pct, c_pct, c_pct >= t.target_percent and q_pct >= t.query_percent


def test_defaults_are_the_reference_examples() -> None:
    assert VpdqThresholds(31, 50, 0.0, 80.0) == REFERENCE_THRESHOLDS


def test_a_known_video_inside_a_longer_upload_matches() -> None:
    rng = random.Random(1)
    known = [rng.randbytes(32) for _ in range(10)]
    upload = [_flip(h, rng.sample(range(256), 20)) for h in known]
    upload += [rng.randbytes(32) for _ in range(30)]  # unrelated footage around it
    result = compare(_video(upload), _video(known))
    assert (result.query_percent, result.target_percent) == (25.0, 100.0)
    assert result.is_match
    # Requiring most of the upload to match too (P_q = 80) rejects it.
    assert not compare(_video(upload), _video(known), VpdqThresholds(query_percent=80)).is_match


def test_distance_is_inclusive_and_low_quality_frames_are_ignored() -> None:
    rng = random.Random(2)
    h = rng.randbytes(32)
    at_31 = _flip(h, list(range(31)))
    at_32 = _flip(h, list(range(32)))
    assert compare(_video([at_31]), _video([h])).is_match
    assert not compare(_video([at_32]), _video([h])).is_match
    low = _video([h], quality=49)
    assert compare(low, _video([h])) == compare(_video([h]), low)
    assert not compare(low, _video([h])).is_match
    assert compare(low, _video([h])).target_percent == 0.0


def test_duplicates_count_once_and_first_quality_wins() -> None:
    h, g = bytes(32), bytes([255]) * 32
    frames = [VpdqFrame(h, 100, 0, 0), VpdqFrame(h, 10, 1, 1), VpdqFrame(g, 10, 2, 2)]
    frames.append(VpdqFrame(g, 100, 3, 3))
    assert usable_frames(frames, 50) == [h]


def test_compare_equals_the_reference_pseudocode_on_random_videos() -> None:
    rng = random.Random(3)
    base = [rng.randbytes(32) for _ in range(40)]
    for trial in range(60):

        def pick(n: int) -> list[VpdqFrame]:
            frames = []
            for i in range(n):
                h = _flip(rng.choice(base), rng.sample(range(256), rng.randrange(0, 45)))
                frames.append(VpdqFrame(h, rng.choice([30, 60, 100]), i, i))
            return frames

        q, c = pick(rng.randrange(1, 20)), pick(rng.randrange(1, 20))
        thresholds = VpdqThresholds(
            distance=rng.choice([15, 31, 40]),
            query_percent=rng.choice([0.0, 50.0, 80.0]),
            target_percent=rng.choice([0.0, 50.0, 80.0]),
        )
        got = compare(q, c, thresholds)
        want = _reference(q, c, thresholds)
        assert (got.query_percent, got.target_percent) == pytest.approx(want[:2]), trial
        assert got.is_match == (want[2] and (want[0] > 0 or want[1] > 0)), trial


def test_index_finds_the_same_matches_as_comparing_each_target() -> None:
    rng = random.Random(4)
    base = [rng.randbytes(32) for _ in range(60)]
    targets = []
    index = VpdqIndex()
    for _ in range(50):
        frames = [
            VpdqFrame(
                _flip(rng.choice(base), rng.sample(range(256), rng.randrange(0, 40))),
                rng.choice([40, 100, 100]),
                i,
                i * 1000,
            )
            for i in range(rng.randrange(1, 12))
        ]
        assert index.add(frames) == len(targets)
        targets.append(frames)
    assert len(index) == 50
    for thresholds in (REFERENCE_THRESHOLDS, VpdqThresholds(query_percent=30, target_percent=30)):
        for _ in range(20):
            query = [
                VpdqFrame(_flip(rng.choice(base), rng.sample(range(256), 10)), 100, i, i)
                for i in range(rng.randrange(1, 15))
            ]
            hits = {
                h.video: (h.query_percent, h.target_percent)
                for h in index.search(query, thresholds)
            }
            want = {}
            for video, target in enumerate(targets):
                result = compare(query, target, thresholds)
                if result.is_match:
                    want[video] = (result.query_percent, result.target_percent)
            assert hits.keys() == want.keys()
            for video, shares in want.items():
                assert hits[video] == pytest.approx(shares)
