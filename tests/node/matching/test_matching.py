"""MatchIndex: built from the store's rows, kept current by live adds, hits point to entries."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest

from node.errors import RequestError
from node.matching.indexes import MatchIndex, PdqHit
from node.matching.pdq_index import PdqIndex
from node.matching.vpdq import VpdqThresholds
from protocol.signals import VpdqFrame, encode_vpdq


def _flip(h: bytes, bits: list[int]) -> bytes:
    v = int.from_bytes(h, "big")
    for b in bits:
        v ^= 1 << b
    return v.to_bytes(32, "big")


async def _rows(
    items: list[tuple[str, int, bytes]], gate: asyncio.Event | None = None
) -> AsyncIterator[tuple[str, int, bytes]]:
    for i, item in enumerate(items):
        if gate is not None and i == len(items) // 2:
            await gate.wait()
        yield item


async def test_load_then_live_adds_with_repeats_ignored() -> None:
    rng = random.Random(1)
    hashes = [rng.randbytes(32) for _ in range(3000)]
    rows = [("alpha" if i % 2 else "beta", i // 2, h) for i, h in enumerate(hashes)]
    index = MatchIndex()
    assert await index.load("pdq", _rows(rows)) == 3000
    near = _flip(hashes[10], list(range(0, 250, 10)))  # 25 bits away
    assert index.match_pdq(near) == [PdqHit("beta", 5, 25)]
    assert index.match_pdq(near, threshold=24) == []
    index.add("beta", 5, "pdq", hashes[10])  # already indexed: ignored
    index.add("gamma", 0, "pdq", _flip(near, [255]))
    index.add("gamma", 0, "pdq", near)  # a repeat of gamma/0: ignored
    index.add("gamma", 1, "md5", bytes(16))  # not similarity-indexed: ignored
    assert index.size("pdq") == 3001
    assert index.match_pdq(near) == [PdqHit("gamma", 0, 1), PdqHit("beta", 5, 25)]


async def test_adds_during_a_load_are_indexed_once_it_finishes() -> None:
    rng = random.Random(2)
    rows = [("alpha", i, rng.randbytes(32)) for i in range(100)]
    gate = asyncio.Event()
    index = MatchIndex()
    loading = asyncio.create_task(index.load("pdq", _rows(rows, gate)))
    await asyncio.sleep(0)
    index.add("alpha", 99, "pdq", rows[99][2])  # also in the store rows: once only
    index.add("alpha", 100, "pdq", bytes(32))  # stored after the rows were read
    gate.set()
    assert await loading == 101
    assert index.size("pdq") == 101
    assert index.match_pdq(rows[99][2], threshold=0) == [PdqHit("alpha", 99, 0)]
    assert index.match_pdq(bytes(32), threshold=0) == [PdqHit("alpha", 100, 0)]


async def test_vpdq_entries_match_by_frame_shares() -> None:
    rng = random.Random(3)
    clip = [rng.randbytes(32) for _ in range(8)]

    def video(hashes: list[bytes]) -> bytes:
        return encode_vpdq([VpdqFrame(h, 100, i, i * 1000) for i, h in enumerate(hashes)])

    index = MatchIndex(vpdq_thresholds=VpdqThresholds(target_percent=75))
    rows = [("alpha", 0, video(clip)), ("alpha", 1, video([rng.randbytes(32) for _ in range(5)]))]
    await index.load("vpdq", _rows(rows))
    index.add("beta", 0, "vpdq", video(clip[:4]))
    upload = [_flip(h, rng.sample(range(256), 12)) for h in clip[:6]] + [rng.randbytes(32)]
    hits = index.match_vpdq(video(upload))
    # Best share of the upload first: alpha/0 covers 6 of its 7 frames, beta/0 4.
    assert [(h.log, h.index) for h in hits] == [("alpha", 0), ("beta", 0)]
    assert hits[0].target_percent == 75.0 and hits[1].target_percent == 100.0
    assert hits[0].query_percent == pytest.approx(600 / 7)
    with pytest.raises(RequestError):
        index.match_vpdq(b"\x00" * 5)


async def test_a_bad_stored_value_fails_the_load_and_keeps_the_old_index() -> None:
    index = MatchIndex()
    index.add("alpha", 0, "pdq", bytes(32))
    with pytest.raises(RequestError):
        await index.load("pdq", _rows([("alpha", 0, bytes(32)), ("alpha", 1, b"short")]))
    assert index.match_pdq(bytes(32), threshold=0) == [PdqHit("alpha", 0, 0)]
    with pytest.raises(RequestError):
        await index.load("md5", _rows([]))


def test_a_run_added_at_once_matches_as_when_added_one_by_one() -> None:
    rng = random.Random(5)
    values = [rng.randbytes(32) for _ in range(40)]
    one_by_one, at_once = MatchIndex(), MatchIndex()
    for i, v in enumerate(values):
        one_by_one.add("log", i, "pdq", v)
    at_once.add_many("log", [(i, "pdq", v) for i, v in enumerate(values)])
    at_once.add_many("log", [(3, "pdq", values[3])])  # a repeat is ignored
    others = [rng.randbytes(32) for _ in range(10)]  # a second log's run after the first's
    for i, v in enumerate(others):
        one_by_one.add("other", 100 + i, "pdq", v)
    at_once.add_many("other", [(100 + i, "pdq", v) for i, v in enumerate(others)])
    assert at_once.size("pdq") == one_by_one.size("pdq") == 50
    for v in values[::7] + others[::3]:
        assert at_once.match_pdq(v) == one_by_one.match_pdq(v)
    for i, v in enumerate(others):  # each finds itself, under its own log and index
        assert ("other", 100 + i, 0) in [(h.log, h.index, h.distance) for h in at_once.match_pdq(v)]


def test_a_pdq_run_indexes_only_what_is_new_and_nothing_of_a_bad_run() -> None:
    rng = random.Random(6)
    values = [rng.randbytes(32) for _ in range(30)]
    index = MatchIndex()
    index.add_pdq_run("log", range(10), values[:10])
    index.add_pdq_run("log", range(5, 30), values[5:30])  # 5..9 are repeats: skipped
    assert index.size("pdq") == 30
    assert index.match_pdq(values[7])[0] == PdqHit("log", 7, 0)
    assert index.match_pdq(values[29])[0] == PdqHit("log", 29, 0)
    with pytest.raises(RequestError):
        index.add_pdq_run("log", [30, 31], [rng.randbytes(32), b"short"])
    assert index.size("pdq") == 30  # neither value of the refused run went in
    index.add_pdq_run("log", [30], [values[0]])  # and the log goes on where it was
    assert {(h.index, h.distance) for h in index.match_pdq(values[0])} == {(0, 0), (30, 0)}


async def test_pdq_tables_merged_in_a_thread_match_as_when_merged_at_once() -> None:
    rng = random.Random(9)
    values = [rng.randbytes(32) for _ in range(20_000)]  # past the merge point (16,384)
    at_once, in_thread = MatchIndex(), MatchIndex()
    at_once.add_many("log", [(i, "pdq", v) for i, v in enumerate(values)])
    in_thread.add_many("log", [(i, "pdq", v) for i, v in enumerate(values)], merge=False)
    pdq = in_thread._kinds["pdq"].index
    assert isinstance(pdq, PdqIndex) and pdq.merge_due()
    queries = [_flip(values[i], [0, 100, 255]) for i in (0, 16_383, 19_999)]
    before = [in_thread.match_pdq(q) for q in queries]  # unmerged: the buffer is scanned
    await in_thread.merge_pdq_in_thread()
    assert not pdq.merge_due()
    assert [in_thread.match_pdq(q) for q in queries] == before
    assert before == [at_once.match_pdq(q) for q in queries]
    assert all(hit for hit in before)


async def test_hits_name_their_log_and_index_across_runs_of_logs_and_indexes_past_32_bits() -> None:
    """Rows keep their (log, index) compactly, as runs of one log and 32-bit indexes until
    one does not fit: every hit still names its own entry."""
    rng = random.Random(21)
    hashes = [rng.randbytes(32) for _ in range(60)]
    # Interleaved runs (alpha, beta, alpha) and single rows, then an index past 2**32.
    rows = [("alpha", i, hashes[i]) for i in range(20)]
    rows += [("beta", i, hashes[20 + i]) for i in range(10)]
    rows += [("alpha", 20 + i, hashes[30 + i]) for i in range(10)]
    index = MatchIndex()
    await index.load("pdq", _rows(rows))
    index.add("gamma", 5, "pdq", hashes[40])
    index.add("alpha", 30, "pdq", hashes[41])
    index.add_pdq_run("beta", [2**32 + 7, 2**40], hashes[42:44])
    index.add("gamma", 6, "pdq", hashes[44])
    expected = [(log, i) for log, i, _ in rows]
    expected += [("gamma", 5), ("alpha", 30), ("beta", 2**32 + 7), ("beta", 2**40), ("gamma", 6)]
    for row, (log, i) in enumerate(expected):
        assert index.match_pdq(hashes[row], 0) == [PdqHit(log, i, 0)]
