"""The node's in-memory similarity indexes: PDQ and vPDQ values of every add entry held.

Exact types (md5, sha256, video_md5, url) are found by the store's own index; this keeps
what a key lookup cannot find: a `PdqIndex` of every pdq add and a `VpdqIndex` of every vpdq
add, each row pointing back to its entry by (log, index). At start `load` builds each from
the store (`Store.iter_values`) in a worker thread, so the event loop keeps serving; entries
stored meanwhile are passed to `add` as usual and are indexed once the load has finished.

An entry is indexed once: logs are append-only and adds of a log arrive in index order, so
`add` ignores an entry whose index is not above the highest already indexed for its log.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
from array import array
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import numpy as np

from node.errors import RequestError
from node.matching.chunk_tables import CHUNKS, PDQ_BYTES, chunk_values
from node.matching.near_cache import NearCache
from node.matching.pdq_index import PdqIndex, merge_step
from node.matching.vpdq import REFERENCE_THRESHOLDS, VpdqIndex, VpdqThresholds
from protocol.errors import ValidationError
from protocol.signals import VpdqFrame, decode_vpdq

DEFAULT_PDQ_THRESHOLD = 31
_MAX_UINT32 = 2**32 - 1
INDEXED_TYPES = ("pdq", "vpdq")


@dataclass(frozen=True, slots=True)
class PdqHit:
    log: str
    index: int
    distance: int


@dataclass(frozen=True, slots=True)
class VpdqHit:
    log: str
    index: int
    query_percent: float
    target_percent: float


class _Refs:
    """Row number -> (log, index), for the rows of one index: 4 bytes a row. Rows come in runs
    of one log (a stored batch), so a row's log is its run's, found by bisection; indexes
    are unsigned 32-bit until one does not fit, and 64-bit from then on."""

    __slots__ = ("_indices", "_logs", "_names", "_run_logs", "_run_starts")

    def __init__(self) -> None:
        self._names: list[str] = []
        self._logs: dict[str, int] = {}
        self._run_starts = array("q")  # the first row of each run of one log
        self._run_logs = array("i")
        self._indices = array("I")

    def append(self, log: str, index: int) -> None:
        log_id = self._logs.get(log)
        if (
            log_id is None
            or self._run_logs[-1] != log_id
            or (index > _MAX_UINT32 and self._indices.typecode == "I")
        ):
            self.extend(log, (index,))
        else:
            self._indices.append(index)

    def extend(self, log: str, indexes: Sequence[int]) -> None:
        """`append` for a run of one log's entries, in one step."""
        if not indexes:
            return
        log_id = self._logs.setdefault(log, len(self._names))
        if log_id == len(self._names):
            self._names.append(log)
        if not self._run_logs or self._run_logs[-1] != log_id:
            self._run_starts.append(len(self._indices))
            self._run_logs.append(log_id)
        if self._indices.typecode == "I" and max(indexes) > _MAX_UINT32:
            self._indices = array("q", self._indices)
        self._indices.extend(indexes)

    def __getitem__(self, row: int) -> tuple[str, int]:
        index = self._indices[row]  # IndexError for a row not held
        run = bisect.bisect_right(self._run_starts, row) - 1
        return self._names[self._run_logs[run]], index


class _Kind:
    """One indexed signal type: its index, row references, and what has been indexed."""

    __slots__ = ("index", "loading", "newest", "pending", "refs")

    def __init__(self, index: PdqIndex | VpdqIndex) -> None:
        self.index = index
        self.refs = _Refs()
        self.newest: dict[str, int] = {}  # log -> highest index indexed
        self.loading = False
        self.pending: list[tuple[str, int, bytes]] = []  # adds seen during a load


class MatchIndex:
    """PDQ and vPDQ indexes of the entries held, kept current by `add`."""

    def __init__(
        self,
        pdq_threshold: int = DEFAULT_PDQ_THRESHOLD,
        vpdq_thresholds: VpdqThresholds = REFERENCE_THRESHOLDS,
    ) -> None:
        self.pdq_threshold = pdq_threshold
        self.vpdq_thresholds = vpdq_thresholds
        self._merging = asyncio.Lock()
        self._kinds: dict[str, _Kind] = {
            "pdq": _Kind(PdqIndex()),
            "vpdq": _Kind(VpdqIndex(vpdq_thresholds.quality)),
        }
        self._near = NearCache()
        self._pdq_loads = 0  # names the PDQ index in use, for the remembered searches

    def size(self, signal_type: str) -> int:
        kind = self._kinds.get(signal_type)
        return 0 if kind is None else len(kind.index)

    def pdq_buffered(self) -> int:
        """PDQ hashes added since the chunk tables were last merged (searches scan them)."""
        index = self._kinds["pdq"].index
        assert isinstance(index, PdqIndex)
        return len(index) - index.tabled

    def add(self, log: str, index: int, signal_type: str, value: bytes) -> None:
        """Index one add entry (other signal types are ignored, as are repeats)."""
        kind = self._kinds.get(signal_type)
        if kind is None:
            return
        if kind.loading:
            kind.pending.append((log, index, value))
        else:
            self._add_to(kind, log, index, value)

    def add_many(
        self, log: str, rows: Sequence[tuple[int, str, bytes]], merge: bool = True
    ) -> None:
        """Index a run of one log's add entries, (index, signal type, value) in index order;
        the PDQ hashes of the run go into the index in one step. With `merge` false the
        caller merges the PDQ buffer (`merge_pdq_in_thread`)."""
        by_kind: dict[str, list[tuple[int, bytes]]] = {}
        for index, signal_type, value in rows:
            if signal_type in self._kinds:
                by_kind.setdefault(signal_type, []).append((index, value))
        for signal_type, items in by_kind.items():
            if signal_type == "pdq":
                self.add_pdq_run(log, [i for i, _ in items], [v for _, v in items], merge)
                continue
            kind = self._kinds[signal_type]
            if kind.loading:
                kind.pending.extend((log, index, value) for index, value in items)
                continue
            for index, value in items:
                self._add_to(kind, log, index, value)

    def add_pdq_run(
        self, log: str, indexes: Sequence[int], values: Sequence[bytes], merge: bool = True
    ) -> None:
        """`add_many` for a run of one log's PDQ adds, as columns: their indexes (ascending)
        and values."""
        kind = self._kinds["pdq"]
        if kind.loading:
            kind.pending.extend(zip(itertools.repeat(log), indexes, values, strict=False))
            return
        # Repeats of what is indexed are ignored; with indexes ascending they are a prefix.
        fresh = bisect.bisect_right(indexes, kind.newest.get(log, -1))
        if fresh == len(indexes):
            return
        if fresh:
            indexes, values = indexes[fresh:], values[fresh:]
        assert isinstance(kind.index, PdqIndex)
        kind.index.add_many(values, merge)  # refuses a value of another size, adding none
        kind.refs.extend(log, indexes)
        kind.newest[log] = indexes[-1]

    async def merge_pdq_in_thread(self, for_search: bool = False) -> None:
        """Merge the PDQ index's recent adds into its tables if due (`for_search`: if worth
        it before a search), each chunk's table made in a worker thread and adopted at once:
        numpy lets go of the GIL for most of it, so a catch-up's event loop goes on verifying
        meanwhile, and only one old table is held beside its new one. Searches stay exact
        throughout (rows some table does not cover yet are scanned). One merge at a time:
        searches arriving together wait for the same one."""
        index = self._kinds["pdq"].index
        if not isinstance(index, PdqIndex) or not _due(index, for_search):
            return
        async with self._merging:
            # Due is checked again: the merge waited for may have taken the buffer.
            if _due(index, for_search):
                new, first = index.merge_keys()
                keys = await asyncio.to_thread(chunk_values, new)
                del new
                for chunk in range(CHUNKS):
                    table = await asyncio.to_thread(
                        merge_step, index.table(chunk), keys, first, chunk
                    )
                    index.adopt_table(chunk, table)
                    del table  # the old table goes as soon as the new one is in use

    @staticmethod
    def _add_to(kind: _Kind, log: str, index: int, value: bytes) -> None:
        if index <= kind.newest.get(log, -1):
            return
        if isinstance(kind.index, PdqIndex):
            if len(value) != PDQ_BYTES:
                raise RequestError("a pdq value is 32 bytes")
            kind.index.add(value)
        else:
            kind.index.add(_frames(value))
        kind.refs.append(log, index)
        kind.newest[log] = index

    async def load(self, signal_type: str, rows: AsyncIterator[tuple[str, int, bytes]]) -> int:
        """Replace the index of `signal_type` by one of `rows` (log, index, value_key), then
        apply the adds that arrived meanwhile; returns the number of entries indexed."""
        kind = self._kinds.get(signal_type)
        if kind is None:
            raise RequestError(f"{signal_type} values are not similarity-indexed")
        if kind.loading:
            raise RequestError(f"the {signal_type} index is already loading")
        kind.loading = True
        try:
            fresh = await self._loaded(signal_type, rows)
        except BaseException:
            # The old index stays, and still gets the adds that came meanwhile.
            fresh = kind
            raise
        finally:
            kind.loading = False
            pending, kind.pending = kind.pending, []
            self._kinds[signal_type] = fresh
            if signal_type == "pdq":
                self._pdq_loads += 1
            for log, index, value in pending:
                self._add_to(fresh, log, index, value)
        return len(fresh.index)

    async def _loaded(self, signal_type: str, rows: AsyncIterator[tuple[str, int, bytes]]) -> _Kind:
        quality = self.vpdq_thresholds.quality
        fresh = _Kind(PdqIndex() if signal_type == "pdq" else VpdqIndex(quality))
        pdq_values = bytearray()
        vpdq_values: list[bytes] = []
        async for log, index, value in rows:
            fresh.refs.append(log, index)
            if index > fresh.newest.get(log, -1):
                fresh.newest[log] = index
            if signal_type == "pdq":
                if len(value) != PDQ_BYTES:
                    raise RequestError(f"stored pdq value {log}/{index} is not 32 bytes")
                pdq_values += value
            else:
                vpdq_values.append(value)
        if signal_type == "pdq":
            fresh.index = await asyncio.to_thread(_build_pdq, bytes(pdq_values))
        else:
            fresh.index = await asyncio.to_thread(_build_vpdq, vpdq_values, quality)
        return fresh

    def match_pdq(self, pdq: bytes, threshold: int | None = None) -> list[PdqHit]:
        """Every pdq entry within `threshold` (default the index's) of `pdq`, nearest first."""
        return self.match_pdq_many([pdq], threshold)[0]

    def match_pdq_many(
        self, hashes: Sequence[bytes], threshold: int | None = None
    ) -> list[list[PdqHit]]:
        kind = self._kinds["pdq"]
        assert isinstance(kind.index, PdqIndex)
        radius = self.pdq_threshold if threshold is None else threshold
        found = kind.index.search_many(list(hashes), radius)
        return [[PdqHit(*kind.refs[row], distance) for row, distance in f] for f in found]

    def near_pdq_many(self, hashes: Sequence[bytes]) -> list[list[PdqHit]]:
        """`match_pdq_many` at the index's threshold, for hashes the index holds and is asked
        about again and again (the corroboration of hits): answers are remembered and kept
        exact (node/matching/near_cache.py)."""
        kind = self._kinds["pdq"]
        assert isinstance(kind.index, PdqIndex)
        found = self._near.search(kind.index, self._pdq_loads, hashes, self.pdq_threshold)
        return [[PdqHit(*kind.refs[row], distance) for row, distance in f] for f in found]

    def near_duplicates(
        self, hashes: Sequence[bytes], limit: int
    ) -> list[list[tuple[PdqHit, bytes]]]:
        """For each of `hashes`, the nearest `limit` of the other hashes `near_pdq_many`
        finds (distance above 0), each with its value, which the index holds: the store is
        then asked for their entries by value, in one read."""
        kind = self._kinds["pdq"]
        index = kind.index
        assert isinstance(index, PdqIndex)
        found = self._near.search(index, self._pdq_loads, hashes, self.pdq_threshold)
        return [
            [
                (PdqHit(*kind.refs[row], distance), index.hash_at(row))
                for row, distance in [(r, d) for r, d in f if d > 0][:limit]
            ]
            for f in found
        ]

    def match_pdq_values(
        self, hashes: Sequence[bytes], threshold: int | None = None
    ) -> list[list[tuple[bytes, int]]]:
        """For each query, every distinct pdq value held within `threshold` (default the
        index's) and its distance, nearest first: the values a match shows, with no need to
        read their entries back from the store."""
        kind = self._kinds["pdq"]
        assert isinstance(kind.index, PdqIndex)
        radius = self.pdq_threshold if threshold is None else threshold
        index = kind.index
        answers = index.search_many(list(hashes), radius)
        if radius == self.pdq_threshold:
            self._near.remember(index, self._pdq_loads, hashes, answers, radius)
        out: list[list[tuple[bytes, int]]] = []
        for found in answers:
            # Several members may hold one value: one hit per value (at the same distance).
            nearest: dict[bytes, int] = {}
            for row, distance in found:  # nearest first
                nearest.setdefault(index.hash_at(row), distance)
            out.append(list(nearest.items()))
        return out

    def match_vpdq(
        self, value: bytes | Sequence[VpdqFrame], thresholds: VpdqThresholds | None = None
    ) -> list[VpdqHit]:
        """Every vpdq entry matching a video (an encoded vpdq value, or its frames)."""
        kind = self._kinds["vpdq"]
        assert isinstance(kind.index, VpdqIndex)
        frames = _frames(value) if isinstance(value, bytes) else value
        hits = kind.index.search(frames, thresholds or self.vpdq_thresholds)
        return [VpdqHit(*kind.refs[h.video], h.query_percent, h.target_percent) for h in hits]


def _due(index: PdqIndex, for_search: bool) -> bool:
    return index.search_merge_due() if for_search else index.merge_due()


def _frames(value: bytes) -> list[VpdqFrame]:
    try:
        return decode_vpdq(value)
    except ValidationError as e:
        raise RequestError(f"bad vpdq value: {e}") from e


def _build_pdq(values: bytes) -> PdqIndex:
    return PdqIndex.build(np.frombuffer(values, dtype=np.uint8).reshape(-1, PDQ_BYTES))


def _build_vpdq(values: list[bytes], quality: int) -> VpdqIndex:
    index = VpdqIndex(quality)
    for value in values:
        index.add(_frames(value))
    return index
