"""Near-duplicate matching for the node: keeps the PDQ and vPDQ indexes
(node.matching.indexes) current
as entries are stored, loads them from the store at start in the background, and answers match
queries with the consortium's view of every hit.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from node.matching.indexes import INDEXED_TYPES, MatchIndex
from node.store.base import Store
from protocol.entries import Add, Entry, decode_entry
from protocol.view import HashView

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class MatchHit:
    view: HashView
    distance: int | None = None  # PDQ: Hamming distance
    query_percent: float | None = None  # vPDQ: share of the query's frames matched
    target_percent: float | None = None  # vPDQ: share of the stored video's frames matched
    #: PDQ searched with both of an image's hashes: which found it nearest, RGB_HASH or
    #: THREATEXCHANGE_HASH (node/matching/lookups.py, `nearest_of_both`).
    pdq_convention: str | None = None


class Matcher:
    """Owns the match indexes of one node."""

    def __init__(self, store: Store, pdq_threshold: int) -> None:
        self._store = store
        self.index = MatchIndex(pdq_threshold)
        self.loaded = False

    async def load(self) -> None:
        """Build the indexes from the store; entries stored meanwhile are indexed too."""
        for signal_type in INDEXED_TYPES:
            count = await self.index.load(signal_type, self._store.iter_values(signal_type))
            log.info("match index: %d %s hashes loaded", count, signal_type)
        self.loaded = True

    async def add_entries(self, origin: str, start: int, decoded: Sequence[Entry | None]) -> None:
        """Index the adds among the decodings of a log's entries from `start` (a range just
        made durable: the service's listener hands them over, node/core/listeners.py)."""
        pdq_indexes: list[int] = []
        pdq_values: list[bytes] = []
        others: list[tuple[int, str, bytes]] = []
        for index, entry in enumerate(decoded, start):
            if not isinstance(entry, Add):
                continue
            if entry.signal_type == "pdq":
                assert isinstance(entry.value, bytes)  # validate_value: pdq values are bytes
                pdq_indexes.append(index)
                pdq_values.append(entry.value)
            elif entry.signal_type in INDEXED_TYPES:
                assert isinstance(entry.value, bytes)
                others.append((index, entry.signal_type, entry.value))
        self.index.add_pdq_run(origin, pdq_indexes, pdq_values, merge=False)
        self.index.add_many(origin, others)
        await self.index.merge_pdq_in_thread()

    async def stored_values(self, refs: Sequence[tuple[str, int]]) -> dict[tuple[str, int], Add]:
        out = {}
        for log_origin, index in refs:
            raws = await self._store.entries(log_origin, index, index + 1)
            if raws:
                entry = decode_entry(raws[0])
                if isinstance(entry, Add):
                    out[(log_origin, index)] = entry
        return out
