"""Exact Hamming-radius search over 256-bit PDQ hashes: multi-index hashing in numpy.

Guarantee: `search(q, r)` returns every stored hash whose Hamming distance to `q` is at most
`r`, and nothing else, for every radius 0..256. It never misses a hash within the radius.

Why it is exact: each hash is cut into 16 chunks of 16 bits. If two hashes differ in d bits,
those d bits fall into 16 chunks, so some chunk differs in at most floor(d / 16) bits
(pigeonhole). For d <= r it suffices to look up, in each chunk's table, the query's chunk
value and every value within floor(r / 16) bit flips of it: for the default PDQ threshold
of 31 that is the value itself and its 16 one-bit neighbours, 17 probes per chunk. Every
candidate found is then verified by an exact popcount over the full 256 bits, so no false
hit is returned either. Radii above 47 (more than two flips a chunk) scan every hash instead,
which is exact too.

Storage: every hash as 4 uint64 words (32 bytes), and per chunk the row numbers sorted by
chunk value, 3 bytes each, with an offset table of 65,537 entries
(node/matching/chunk_tables.py), about 84 bytes a hash in all. Hashes added after the last
build go to a small buffer that is scanned by brute force and merged into the tables once it
holds `merge_at` hashes or an eighth of the tables (so that growing to n hashes costs O(n
log n), not O(n^2)); `add` is cheap and searches stay exact throughout. Rows are numbered in
insertion order and never change. A merge sorts only the buffer's rows and copies the old
ones into place, one chunk's table at a time (`merge_steps`): each step may run in a worker
thread and its table be adopted at once, as the node does while catching up, so a merge
holds one old table beside its new one, not all. The hashes' array grows in place (a
realloc, which the kernel does by moving pages) when nothing else holds it, by a sixteenth:
no second copy of all the hashes either.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations, pairwise

import numpy as np
import numpy.typing as npt

from node.errors import RequestError
from node.matching.chunk_tables import (
    CHUNK_VALUES,
    CHUNKS,
    NO_TABLES,
    PDQ_BYTES,
    ChunkTable,
    ChunkTables,
    Keys,
    Words,
    chunk_values,
    chunk_values_one,
    extend_table,
)

MAX_PROBE_FLIPS = 2  # probing beyond this costs more than a scan
DEFAULT_MERGE_AT = 16384
SEARCH_MERGE_AT = 4096  # a buffer a search finds above this (and 1/64 of the tables) is merged
_SCAN_BLOCK = 1 << 16  # rows per block of a brute-force scan, to bound temporary memory
_PROBE_BATCH = 32  # queries probed together: amortises numpy calls, keeps temporaries in cache
_VERIFY_BLOCK = 4096  # candidates verified together (their hashes: 128 KiB)
# One query's candidates up to this many are verified at once (their hashes and rows: about
# 200 KiB, under a node's 256 kB mmap threshold): a fifth faster than in pieces.
_ONE_QUERY_AT_ONCE = 6144

Rows = npt.NDArray[np.int64]


def _flip_masks(flips: int) -> npt.NDArray[np.int64]:
    """Every 16-bit XOR mask with at most `flips` bits set."""
    masks = [0]
    for k in range(1, flips + 1):
        masks += [sum(1 << b for b in bits) for bits in combinations(range(16), k)]
    return np.array(masks, dtype=np.int64)


_MASKS = [_flip_masks(k) for k in range(MAX_PROBE_FLIPS + 1)]


def hashes_to_words(hashes: Sequence[bytes] | npt.NDArray[np.uint8]) -> Words:
    """Hashes (a sequence of 32-byte values or an (n, 32) uint8 array) as an (n, 4) array."""
    if isinstance(hashes, np.ndarray):
        if hashes.ndim != 2 or hashes.shape[1] != PDQ_BYTES or hashes.dtype != np.uint8:
            raise RequestError("PDQ hashes are an (n, 32) uint8 array")
        return np.ascontiguousarray(hashes).view(np.uint64).reshape(-1, 4)
    if any(len(h) != PDQ_BYTES for h in hashes):
        raise RequestError("a PDQ hash is 32 bytes")
    return np.frombuffer(b"".join(hashes), dtype=np.uint64).reshape(-1, 4).copy()


def distances(words: Words, query: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint16]:
    """Hamming distance of each row of an (n, 4) array to one query, consuming `words`."""
    # In place, and summing columns rather than along axis 1, is 3x faster for small n.
    np.bitwise_xor(words, query, out=words)
    counts = np.bitwise_count(words)
    dist = counts[:, 0].astype(np.uint16)
    dist += counts[:, 1]
    dist += counts[:, 2]
    dist += counts[:, 3]
    return dist


def columns(words: Words) -> Words:
    """An (n, 4) array as 4 contiguous columns, the fastest layout for a full scan."""
    return np.ascontiguousarray(words.T)


def scan_columns(
    cols: Words, query: npt.NDArray[np.uint64], radius: int
) -> tuple[Rows, npt.NDArray[np.uint16]]:
    """Brute force over a (4, n) column array: (rows, distances) within `radius`."""
    # Each half of the hash differs in at most 128 bits, so uint8 sums cannot wrap; and a hash
    # within the radius is within it on each half, which discards most rows cheaply.
    first = np.bitwise_count(cols[0] ^ query[0])
    first += np.bitwise_count(cols[1] ^ query[1])
    second = np.bitwise_count(cols[2] ^ query[2])
    second += np.bitwise_count(cols[3] ^ query[3])
    rows = np.flatnonzero((first <= radius) & (second <= radius))
    dist = first[rows].astype(np.uint16) + second[rows]
    keep = dist <= radius
    return rows[keep], dist[keep]


def scan(words: Words, queries: Words, radius: int, first_row: int = 0) -> list[Rows]:
    """Brute force: for each query, (row, distance) pairs within `radius`, as a (k, 2) array."""
    found: list[list[Rows]] = [[] for _ in range(len(queries))]
    for start in range(0, len(words), _SCAN_BLOCK):
        block = columns(words[start : start + _SCAN_BLOCK])
        for qi, query in enumerate(queries):
            hit, dist = scan_columns(block, query, radius)
            if hit.size:
                found[qi].append(np.stack([hit + start + first_row, dist.astype(np.int64)], axis=1))
    return [np.concatenate(parts) if parts else np.empty((0, 2), dtype=np.int64) for parts in found]


class PdqIndex:
    """Exact range search over PDQ hashes; see the module docstring for the guarantee."""

    __slots__ = ("_merge_at", "_offsets", "_size", "_tabled", "_tables", "_words")

    def __init__(self, merge_at: int = DEFAULT_MERGE_AT) -> None:
        self._merge_at = merge_at
        self._words: Words = np.empty((0, 4), dtype=np.uint64)
        self._size = 0  # rows stored (the first _size rows of _words)
        # Each chunk's table covers its first rows; every one covers the first _tabled, and
        # searches scan the rest. A table is replaced whole, never changed, so a worker
        # thread may read one. _offsets holds every table's offsets, for probing all at once.
        self._tables: list[ChunkTable] = list(NO_TABLES.chunks)
        self._offsets = np.zeros((CHUNKS, CHUNK_VALUES + 1), dtype=np.int32)
        self._tabled = 0

    @classmethod
    def build(
        cls,
        hashes: Sequence[bytes] | npt.NDArray[np.uint8],
        merge_at: int = DEFAULT_MERGE_AT,
    ) -> PdqIndex:
        """An index of `hashes` (rows 0..n-1 in that order), with its tables built at once."""
        index = cls(merge_at)
        words = hashes_to_words(hashes)
        index._words = words.copy()
        index._size = len(words)
        index._rebuild_tables()
        return index

    def __len__(self) -> int:
        return self._size

    @property
    def tabled(self) -> int:
        """The rows every chunk's table covers (the rest are scanned)."""
        return self._tabled

    def hash_at(self, row: int) -> bytes:
        if not 0 <= row < self._size:
            raise IndexError(row)
        return bytes(self._words[row].tobytes())

    def add(self, pdq: bytes) -> int:
        """Store one hash; returns its row number."""
        return self.add_many([pdq])

    def add_many(self, hashes: Sequence[bytes] | npt.NDArray[np.uint8], merge: bool = True) -> int:
        """Store hashes in order; returns the row number of the first. With `merge` false
        the caller merges the buffer when `merge_due` says (`merge_steps`)."""
        words = hashes_to_words(hashes)
        first = self._size
        need = first + len(words)
        if need > len(self._words):
            self._grow(need)
        self._words[first:need] = words
        self._size = need
        # Merge when the buffer reaches merge_at or an eighth of the tables, whichever is more:
        # a rebuild costs O(size), so a fixed step would make growing to n cost O(n^2 / step);
        # the buffer a search scans stays small next to the tables.
        if merge and self.merge_due():
            self._rebuild_tables()
        return first

    def _grow(self, need: int) -> None:
        """Room for `need` rows and a sixteenth more: in place if nothing else holds the array
        (realloc moves its pages, a copy would hold every hash twice for a moment), else in a
        new array (a snapshot, see `snapshot`, keeps the old one valid)."""
        rows = max(need + need // 16, 1024)
        try:
            self._words.resize((rows, 4), refcheck=True)  # fills the new rows with zeros
        except ValueError:  # referenced elsewhere, or a view
            grown = np.empty((rows, 4), dtype=np.uint64)
            grown[: self._size] = self._words[: self._size]
            self._words = grown

    def merge_due(self) -> bool:
        """Whether the buffer of recent adds is due to be merged into the chunk tables."""
        return self._size - self._tabled >= max(self._merge_at, self._tabled // 8)

    def search_merge_due(self) -> bool:
        """Whether the buffer is worth merging before searches: each search scans every row of
        it (at 1M hashes, a buffer of an eighth of the tables cost 3x the table probes), and it
        stays until adds make `merge_due`, which an idle node may never see."""
        return self._size - self._tabled > max(SEARCH_MERGE_AT, self._tabled // 64)

    def compact(self) -> None:
        """Merge the buffer of recent adds into the chunk tables now."""
        if self._tabled < self._size:
            self._rebuild_tables()

    def snapshot(self) -> tuple[ChunkTables, Words, int]:
        """The tables in use, the hashes stored now and their count, for `extend_tables`
        elsewhere: tables are replaced, never changed; rows below the count never change, and
        while the snapshot holds the array, growing copies it to a new one. So the snapshot
        stays valid while more are added."""
        return ChunkTables(tuple(self._tables)), self._words, self._size

    def merge_keys(self) -> tuple[Words, int]:
        """For `merge_steps`: a copy of the rows no table covers yet, and the first of them;
        a copy, so the index's own array is free to grow in place meanwhile."""
        return self._words[self._tabled : self._size].copy(), self._tabled

    def table(self, chunk: int) -> ChunkTable:
        return self._tables[chunk]

    def adopt(self, tables: ChunkTables) -> None:
        """Use tables made of a snapshot, each unless a newer one is in use."""
        for chunk, table in enumerate(tables.chunks):
            self.adopt_table(chunk, table)

    def adopt_table(self, chunk: int, table: ChunkTable) -> None:
        """Use `table` for `chunk` unless a newer one is in use; the old one is let go."""
        if table.rows > self._tables[chunk].rows:
            self._tables[chunk] = table
            self._offsets[chunk] = table.offsets
            self._tabled = min(t.rows for t in self._tables)

    def _rebuild_tables(self) -> None:
        new, first = self.merge_keys()
        keys = chunk_values(new)
        for chunk in range(CHUNKS):
            self.adopt_table(chunk, merge_step(self.table(chunk), keys, first, chunk))

    def search(self, query: bytes, radius: int = 31) -> list[tuple[int, int]]:
        """(row, distance) of every stored hash within `radius` of `query`, nearest first."""
        return self.search_many([query], radius)[0]

    def search_many(
        self, queries: Sequence[bytes] | npt.NDArray[np.uint8], radius: int = 31
    ) -> list[list[tuple[int, int]]]:
        """`search` for each query, vectorised over the whole batch."""
        if not 0 <= radius <= 256:
            raise RequestError("a PDQ search radius is 0..256")
        qwords = hashes_to_words(queries)
        if len(qwords) == 0:
            return []
        flips = radius // 16
        if flips > MAX_PROBE_FLIPS:
            pairs = scan(self._words[: self._size], qwords, radius)
        else:
            pairs = []
            # The verification's buffers, one pair for the whole search (see _probe).
            scratch = np.empty((2, _VERIFY_BLOCK, 4), dtype=np.uint64)
            for start in range(0, len(qwords), _PROBE_BATCH):
                batch = qwords[start : start + _PROBE_BATCH]
                pairs += self._probe(batch, radius, _MASKS[flips], scratch)
            if self._tabled < self._size:
                recent = scan(self._words[self._tabled : self._size], qwords, radius, self._tabled)
                pairs = [np.concatenate([p, r]) for p, r in zip(pairs, recent, strict=True)]
        out: list[list[tuple[int, int]]] = []
        for p in pairs:
            order = np.lexsort((p[:, 0], p[:, 1]))
            out.append([(int(r), int(d)) for r, d in p[order]])
        return out

    def search_from(
        self, queries: Sequence[bytes], radius: int, first_row: int
    ) -> list[list[tuple[int, int]]]:
        """`search_many` over the rows from `first_row` on only (the hashes added since a
        search that covered the rows before it), by brute force; nearest first."""
        if not 0 <= radius <= 256:
            raise RequestError("a PDQ search radius is 0..256")
        first_row = max(0, min(first_row, self._size))
        words = self._words[first_row : self._size]
        found = scan(words, hashes_to_words(queries), radius, first_row) if len(queries) else []
        out: list[list[tuple[int, int]]] = []
        for p in found:
            order = np.lexsort((p[:, 0], p[:, 1]))
            out.append([(int(r), int(d)) for r, d in p[order]])
        return out

    def _verify_one(
        self, starts: Rows, lengths: Rows, per_chunk: Rows, total: int, query: Words, radius: int
    ) -> Rows:
        """One query's candidates verified at once, in the fewest numpy calls: few enough that
        its temporaries stay below a node's mmap threshold (see _probe)."""
        tabled = self._tabled
        # Concatenate the ranges [start, start+length) without a Python loop, then read each
        # chunk's rows from its own table (low 16 bits and high bits apart, put together once).
        ends_before = np.cumsum(lengths) - lengths
        positions = np.repeat(starts - ends_before, lengths) + np.arange(total, dtype=np.int64)
        rows = np.empty(total, dtype=np.int64)
        low_bits = np.empty(total, dtype=np.uint16)
        bounds = np.concatenate([[0], np.cumsum(per_chunk)])
        for chunk, table in enumerate(self._tables):
            first, end = bounds[chunk], bounds[chunk + 1]
            if end > first:
                at = positions[first:end]
                rows[first:end] = table.high[at]
                low_bits[first:end] = table.low[at]
        rows <<= 16
        rows |= low_bits
        rows = rows[rows < tabled]  # rows above _tabled (a merge under way) are scanned instead
        dist = distances(np.take(self._words, rows, axis=0), query)
        hit = dist <= radius
        # A near hash agrees on several chunks, so it can be found more than once.
        hit_rows, first_seen = np.unique(rows[hit], return_index=True)
        hit_dist = dist[hit][first_seen].astype(np.int64)
        return np.stack([hit_rows, hit_dist], axis=1)

    def _probe(
        self, qwords: Words, radius: int, masks: npt.NDArray[np.int64], scratch: Words
    ) -> list[Rows]:
        """Candidates from the chunk tables below _tabled, verified; a (k, 2) array a query.
        `scratch` is a (2, _VERIFY_BLOCK, 4) array for the verification's temporaries."""
        empty = np.empty((0, 2), dtype=np.int64)
        tabled = self._tabled
        if tabled == 0:
            return [empty] * len(qwords)
        nq = len(qwords)
        chunk_base = np.arange(CHUNKS, dtype=np.int64) * (CHUNK_VALUES + 1)
        # probes[c, q, m]: the slot of chunk c's offsets holding (query chunk value ^ mask m)
        qkeys = chunk_values_one(qwords) if nq == 1 else chunk_values(qwords)
        probes = (qkeys.T[:, :, None] ^ masks[None, None, :]) + chunk_base[:, None, None]
        offsets = self._offsets.reshape(-1)
        starts = offsets[probes].reshape(-1).astype(np.int64)
        lengths = offsets[probes + 1].reshape(-1) - starts
        per_chunk = lengths.reshape(CHUNKS, -1).sum(axis=1)
        total = int(per_chunk.sum())
        if total == 0:
            return [empty] * nq
        if nq == 1 and total <= _ONE_QUERY_AT_ONCE:
            return [self._verify_one(starts, lengths, per_chunk, total, qwords[0], radius)]
        # Verified in pieces of about _VERIFY_BLOCK candidates (whole probes), into buffers
        # reused from piece to piece: a node's allocator maps every block of 256 kB or more
        # afresh and gives freed memory back past 128 kB (node/app/allocator.py), and
        # faulting in a batch's temporaries (MBs at a million hashes) took as long as the
        # search itself.
        ends = np.cumsum(lengths)
        befores = ends - lengths
        cuts = np.searchsorted(ends, np.arange(_VERIFY_BLOCK, total, _VERIFY_BLOCK), "right")
        bounds = np.unique(np.concatenate([[0], cuts, [len(lengths)]])).tolist()
        chunk_ends = np.cumsum(per_chunk).tolist()
        per_chunk_probes = nq * len(masks)
        owners = np.tile(np.repeat(np.arange(nq, dtype=np.int64), len(masks)), CHUNKS)
        gathered, asked = scratch
        keys, dists = [], []
        for first, stop in pairwise(bounds):
            low, high = int(befores[first]), int(ends[stop - 1])
            if high == low:
                continue
            length = lengths[first:stop]
            # Concatenate the ranges [start, start+length) without a Python loop, then read
            # each chunk's rows from its own table. A table holds a row's low 16 bits and its
            # high bits apart (chunk_tables.ChunkTable): both are gathered chunk by chunk, and
            # put together once for the piece.
            positions = np.repeat(starts[first:stop] - (befores[first:stop] - low), length)
            positions += np.arange(high - low, dtype=np.int64)
            rows = np.empty(high - low, dtype=np.int64)
            low_bits = np.empty(high - low, dtype=np.uint16)
            stale = False
            for chunk in range(first // per_chunk_probes, (stop - 1) // per_chunk_probes + 1):
                table = self._tables[chunk]
                since = max(chunk_ends[chunk] - int(per_chunk[chunk]), low) - low
                until = min(chunk_ends[chunk], high) - low
                at = positions[since:until]
                rows[since:until] = table.high[at]
                low_bits[since:until] = table.low[at]
                stale |= table.rows > tabled
            rows <<= 16
            rows |= low_bits
            # A single query has no owners to keep apart: fewer arrays of every candidate's size.
            owner = np.repeat(owners[first:stop], length) if nq > 1 else None
            if stale:
                # Rows above _tabled (in some tables while a merge is under way) are
                # scanned instead.
                below = rows < tabled
                rows = rows[below]
                owner = None if owner is None else owner[below]
            n = len(rows)
            if n > len(gathered):  # one probe of more than _VERIFY_BLOCK candidates
                gathered = np.empty((n, 4), dtype=np.uint64)
                asked = np.empty((n, 4), dtype=np.uint64)
            words = np.take(self._words, rows, axis=0, out=gathered[:n])
            query = qwords[0] if owner is None else np.take(qwords, owner, axis=0, out=asked[:n])
            dist = distances(words, query)
            hit = dist <= radius
            keys.append(rows[hit] if owner is None else owner[hit] * tabled + rows[hit])
            dists.append(dist[hit])
        # A near hash agrees on several chunks, so it can be found more than once.
        key, once = np.unique(np.concatenate(keys), return_index=True)
        hit_dist = np.concatenate(dists)[once].astype(np.int64)
        if nq == 1:
            return [np.stack([key, hit_dist], axis=1)]
        hit_owner, hit_rows = np.divmod(key, tabled)
        bounds = np.searchsorted(hit_owner, np.arange(nq + 1))
        both = np.stack([hit_rows, hit_dist], axis=1)
        return [both[bounds[i] : bounds[i + 1]] for i in range(nq)]

    def memory_bytes(self) -> int:
        """Bytes held by the arrays of this index."""
        tables = sum(t.nbytes for t in self._tables)
        return int(self._words.nbytes + tables + self._offsets.nbytes)


def merge_step(table: ChunkTable, keys: Keys, first: int, chunk: int) -> ChunkTable:
    """`table` extended by the rows whose chunk values `keys` (`chunk_values` of `merge_keys`)
    are, from row `first` on. Only numpy work: it may run in a worker thread."""
    return extend_table(table, keys[table.rows - first :, chunk], first + len(keys))
