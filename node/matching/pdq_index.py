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
chunk value with an offset table of 65,537 entries, about 100 bytes a hash in all. Hashes
added after the last build go to a small buffer that is scanned by brute force and merged
into the tables once it holds `merge_at` hashes or an eighth of the tables (so that growing
to n hashes costs O(n log n), not O(n^2)); `add` is cheap and searches stay exact
throughout. Rows are numbered in insertion order and never change. A merge sorts only the
buffer's rows and copies the old ones into place (`extend_tables`); it can run on a snapshot
in a worker thread, its tables adopted later, as the node does while catching up.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from node.errors import RequestError

PDQ_BYTES = 32
CHUNKS = 16
CHUNK_VALUES = 1 << 16
MAX_PROBE_FLIPS = 2  # probing beyond this costs more than a scan
DEFAULT_MERGE_AT = 16384
SEARCH_MERGE_AT = 4096  # a buffer a search finds above this (and 1/64 of the tables) is merged
_SCAN_BLOCK = 1 << 16  # rows per block of a brute-force scan, to bound temporary memory
_PROBE_BATCH = 32  # queries probed together: amortises numpy calls, keeps temporaries in cache

Words = npt.NDArray[np.uint64]
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


#: Rotating row i of the 16x16 bit grid left by i puts its bit of chunk c in column c.
_ROTATIONS = np.arange(16, dtype=np.uint32)
#: The masked swaps that transpose a 16x16 bit matrix held as 16 uint16 rows (MSB first):
#: for each block size s, the right halves of the 2s-bit groups of the upper rows trade
#: places with the left halves of the lower rows.
_TRANSPOSE_STEPS = (
    (8, np.uint16(0x00FF)),
    (4, np.uint16(0x0F0F)),
    (2, np.uint16(0x3333)),
    (1, np.uint16(0x5555)),
)


def _chunks(words: Words) -> npt.NDArray[np.uint16]:
    """The 16 chunks of 16 bits of each hash, as an (n, 16) array. A PDQ hash is a 16x16 grid
    of DCT signs, and real hashes' bits are uneven and correlated along rows and columns: a
    chunk of one row (the bytes as they come) can hold a few values that most hashes share,
    and a search then verifies the whole of their buckets. Each chunk takes one bit of every
    row and every column instead, which evens its values out: chunk c is the diagonal of bits
    (row i, column (i + c) mod 16), row i's bit first. Any split of the 256 bits into 16
    chunks keeps the search exact (see the module docstring).

    Computed as word arithmetic (rotate each row, then transpose the grid by masked swaps)
    rather than by unpacking every bit into a byte: an eighth of the time, and the
    temporaries are 64 bytes a hash instead of 512."""
    as_bytes = np.ascontiguousarray(words).view(np.uint8).reshape(-1, PDQ_BYTES)
    out = np.empty((len(as_bytes), CHUNKS), dtype=np.uint16)
    for start in range(0, len(as_bytes), _SCAN_BLOCK):
        grid = as_bytes[start : start + _SCAN_BLOCK].view(">u2").astype(np.uint32)
        rows = ((grid << _ROTATIONS) | (grid >> (16 - _ROTATIONS))).astype(np.uint16)
        for s, mask in _TRANSPOSE_STEPS:
            pairs = rows.reshape(len(rows), CHUNKS // (2 * s), 2, s)
            upper, lower = pairs[:, :, 0, :], pairs[:, :, 1, :]
            swap = (upper ^ (lower >> s)) & mask
            upper ^= swap
            lower ^= swap << np.uint16(s)
        out[start : start + len(rows)] = rows
    return out


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


class ChunkTables(NamedTuple):
    """Per chunk, row numbers sorted by chunk value, and the offset table into them."""

    sorted_rows: npt.NDArray[np.int32]
    offsets: npt.NDArray[np.int64]
    rows: int  # the tables cover rows 0..rows-1


NO_TABLES = ChunkTables(
    np.empty(0, dtype=np.int32), np.zeros(CHUNKS * (CHUNK_VALUES + 1), dtype=np.int64), 0
)


def build_tables(words: Words, n: int) -> ChunkTables:
    """The chunk tables of the first `n` hashes of `words`. Only numpy work: it may run in a
    worker thread (numpy lets go of the GIL for most of it)."""
    _check_rows(n)
    chunks = _chunks(words[:n])
    sorted_rows = np.empty(CHUNKS * n, dtype=np.int32)
    offsets = np.empty((CHUNKS, CHUNK_VALUES + 1), dtype=np.int64)
    for c in range(CHUNKS):
        keys = chunks[:, c].astype(np.uint16)
        # A stable sort of 16-bit keys is numpy's radix sort: linear time.
        sorted_rows[c * n : (c + 1) * n] = np.argsort(keys, kind="stable")
        offsets[c, 0] = c * n
        np.cumsum(np.bincount(keys, minlength=CHUNK_VALUES), out=offsets[c, 1:])
        offsets[c, 1:] += c * n
    return ChunkTables(sorted_rows, offsets.reshape(-1), n)


def extend_tables(tables: ChunkTables, words: Words, n: int) -> ChunkTables:
    """The chunk tables of the first `n` hashes of `words`, given `tables` of the first
    `tables.rows` of them: equal to `build_tables(words, n)`, but only the new rows are
    sorted, and the old ones are copied into place. A catch-up merges its buffer a few dozen
    times on the way to a million hashes; sorting every row each time was most of the cost.
    Like `build_tables`, it may run in a worker thread: `tables` is only read."""
    old = tables.rows
    if old == 0:
        return build_tables(words, n)
    _check_rows(n)
    added = n - old
    if added <= 0:
        return tables
    chunks = _chunks(words[old:n])
    sorted_rows = np.empty(CHUNKS * n, dtype=np.int32)
    offsets = np.empty((CHUNKS, CHUNK_VALUES + 1), dtype=np.int64)
    old_offsets = tables.offsets.reshape(CHUNKS, CHUNK_VALUES + 1)
    new_rows = np.arange(old, n, dtype=np.int32)
    ranks = np.arange(added, dtype=np.int64)
    is_old = np.empty(n, dtype=bool)
    for c in range(CHUNKS):
        keys = chunks[:, c]
        order = np.argsort(keys.astype(np.uint16), kind="stable")
        old_starts = old_offsets[c] - c * old  # bucket starts within this chunk's old table
        # Each bucket keeps its old rows, then its new ones (all larger), each in row order,
        # as a stable sort of all n rows would: a new row's place is the end of its bucket's
        # old rows plus the new rows sorted before it.
        places = old_starts[1:][keys[order]] + ranks
        merged = sorted_rows[c * n : (c + 1) * n]
        merged[places] = new_rows[order]
        is_old.fill(True)
        is_old[places] = False
        merged[is_old] = tables.sorted_rows[c * old : (c + 1) * old]
        offsets[c, 0] = 0
        np.cumsum(np.bincount(keys, minlength=CHUNK_VALUES), out=offsets[c, 1:])
        offsets[c] += old_starts + c * n  # each bucket moves by the new rows before it
    return ChunkTables(sorted_rows, offsets.reshape(-1), n)


def _check_rows(n: int) -> None:
    if n >= 2**31:
        raise RequestError("a PDQ index holds fewer than 2**31 hashes")


class PdqIndex:
    """Exact range search over PDQ hashes; see the module docstring for the guarantee."""

    __slots__ = ("_merge_at", "_offsets", "_size", "_sorted_rows", "_tabled", "_words")

    def __init__(self, merge_at: int = DEFAULT_MERGE_AT) -> None:
        self._merge_at = merge_at
        self._words: Words = np.empty((0, 4), dtype=np.uint64)
        self._size = 0  # rows stored (the first _size rows of _words)
        # The chunk tables cover the first _tabled rows; the rest are scanned. Tables are
        # replaced whole, never changed, so a worker thread may read them.
        self._sorted_rows, self._offsets, self._tabled = NO_TABLES

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

    def hash_at(self, row: int) -> bytes:
        if not 0 <= row < self._size:
            raise IndexError(row)
        return bytes(self._words[row].tobytes())

    def add(self, pdq: bytes) -> int:
        """Store one hash; returns its row number."""
        return self.add_many([pdq])

    def add_many(self, hashes: Sequence[bytes] | npt.NDArray[np.uint8], merge: bool = True) -> int:
        """Store hashes in order; returns the row number of the first. With `merge` false
        the caller merges the buffer when `merge_due` says (see `snapshot`)."""
        words = hashes_to_words(hashes)
        first = self._size
        need = first + len(words)
        if need > len(self._words):
            grown = np.empty((max(need, 2 * len(self._words), 1024), 4), dtype=np.uint64)
            grown[:first] = self._words[:first]
            self._words = grown
        self._words[first:need] = words
        self._size = need
        # Merge when the buffer reaches merge_at or an eighth of the tables, whichever is more:
        # a rebuild costs O(size), so a fixed step would make growing to n cost O(n^2 / step);
        # the buffer a search scans stays small next to the tables.
        if merge and self.merge_due():
            self._rebuild_tables()
        return first

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
        elsewhere (a worker thread): tables are replaced, never changed; rows below the count
        never change, and a grown index copies them to a new array. So the snapshot stays
        valid while more are added."""
        return ChunkTables(self._sorted_rows, self._offsets, self._tabled), self._words, self._size

    def adopt(self, tables: ChunkTables) -> None:
        """Use tables made of a snapshot, unless newer ones are in use."""
        if tables.rows > self._tabled:
            self._sorted_rows, self._offsets, self._tabled = tables

    def _rebuild_tables(self) -> None:
        self.adopt(extend_tables(*self.snapshot()))

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
            for start in range(0, len(qwords), _PROBE_BATCH):
                pairs += self._probe(qwords[start : start + _PROBE_BATCH], radius, _MASKS[flips])
            if self._tabled < self._size:
                recent = scan(self._words[self._tabled : self._size], qwords, radius, self._tabled)
                pairs = [np.concatenate([p, r]) for p, r in zip(pairs, recent, strict=True)]
        out: list[list[tuple[int, int]]] = []
        for p in pairs:
            order = np.lexsort((p[:, 0], p[:, 1]))
            out.append([(int(r), int(d)) for r, d in p[order]])
        return out

    def _probe(self, qwords: Words, radius: int, masks: npt.NDArray[np.int64]) -> list[Rows]:
        """Candidates from the chunk tables, verified; one (k, 2) array per query."""
        empty = np.empty((0, 2), dtype=np.int64)
        if self._tabled == 0:
            return [empty] * len(qwords)
        nq = len(qwords)
        chunk_base = np.arange(CHUNKS, dtype=np.int64) * (CHUNK_VALUES + 1)
        # probes[q, c, m]: the slot of chunk c's table holding (query chunk value ^ mask m)
        probes = (_chunks(qwords)[:, :, None] ^ masks[None, None, :]) + chunk_base[None, :, None]
        starts = self._offsets[probes].reshape(-1)
        lengths = self._offsets[probes + 1].reshape(-1) - starts
        total = int(lengths.sum())
        if total == 0:
            return [empty] * nq
        # Concatenate the ranges [start, start+length) without a Python loop.
        ends_before = np.cumsum(lengths) - lengths
        positions = np.repeat(starts - ends_before, lengths) + np.arange(total, dtype=np.int64)
        rows = self._sorted_rows[positions].astype(np.int64)
        candidates = np.take(self._words, rows, axis=0)
        if nq == 1:
            owner = np.zeros(total, dtype=np.int64)
            dist = distances(candidates, qwords[0])
        else:
            per_query = lengths.reshape(nq, -1).sum(axis=1)
            owner = np.repeat(np.arange(nq, dtype=np.int64), per_query)
            dist = distances(candidates, qwords[owner])
        hit = dist <= radius
        # A near hash agrees on several chunks, so it can be found more than once.
        key = np.unique(owner[hit] * self._tabled + rows[hit])
        hit_owner, hit_rows = np.divmod(key, self._tabled)
        hit_dist = distances(self._words[hit_rows], qwords[hit_owner]).astype(np.int64)
        bounds = np.searchsorted(hit_owner, np.arange(nq + 1))
        both = np.stack([hit_rows, hit_dist], axis=1)
        return [both[bounds[i] : bounds[i + 1]] for i in range(nq)]

    def memory_bytes(self) -> int:
        """Bytes held by the arrays of this index."""
        return int(self._words.nbytes + self._sorted_rows.nbytes + self._offsets.nbytes)
