"""The PDQ index's chunk tables (node/matching/pdq_index.py): for each of the 16 chunks of
16 bits of a hash, the index's row numbers sorted by that chunk's value, and where each
value's rows start.

Each chunk has a table of its own, so that a merge of new rows replaces the tables one at a
time: while a chunk's new table is made, only its old one is held beside it, a sixteenth of
the whole (at two million hashes, 6 MiB instead of the 96 MiB one array of all sixteen
needed twice over). The index searches tables that cover different numbers of rows (a merge
under way) exactly: it scans the rows above the fewest any table covers.

Only numpy work here: a table may be made in a worker thread (numpy lets go of the GIL for
most of it); tables are never changed once made.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from node.errors import RequestError

PDQ_BYTES = 32
CHUNKS = 16
CHUNK_VALUES = 1 << 16
_BLOCK = 1 << 16  # hashes chunked at a time, to bound temporary memory

Words = npt.NDArray[np.uint64]
Keys = npt.NDArray[np.uint16]

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


def chunk_values(words: Words) -> Keys:
    """The 16 chunks of 16 bits of each hash, as an (n, 16) array. A PDQ hash is a 16x16 grid
    of DCT signs, and real hashes' bits are uneven and correlated along rows and columns: a
    chunk of one row (the bytes as they come) can hold a few values that most hashes share,
    and a search then verifies the whole of their buckets. Each chunk takes one bit of every
    row and every column instead, which evens its values out: chunk c is the diagonal of bits
    (row i, column (i + c) mod 16), row i's bit first. Any split of the 256 bits into 16
    chunks keeps the search exact (see pdq_index's docstring).

    Computed as word arithmetic (rotate each row, then transpose the grid by masked swaps)
    rather than by unpacking every bit into a byte: an eighth of the time, and the
    temporaries are 64 bytes a hash instead of 512."""
    as_bytes = np.ascontiguousarray(words).view(np.uint8).reshape(-1, PDQ_BYTES)
    out = np.empty((len(as_bytes), CHUNKS), dtype=np.uint16)
    for start in range(0, len(as_bytes), _BLOCK):
        grid = as_bytes[start : start + _BLOCK].view(">u2").astype(np.uint32)
        rows = ((grid << _ROTATIONS) | (grid >> (16 - _ROTATIONS))).astype(np.uint16)
        for s, mask in _TRANSPOSE_STEPS:
            pairs = rows.reshape(len(rows), CHUNKS // (2 * s), 2, s)
            upper, lower = pairs[:, :, 0, :], pairs[:, :, 1, :]
            swap = (upper ^ (lower >> s)) & mask
            upper ^= swap
            lower ^= swap << np.uint16(s)
        out[start : start + len(rows)] = rows
    return out


@functools.cache
def _chunks_of_bytes() -> tuple[tuple[int, ...], ...]:
    """For each byte position and value, the chunks of a hash holding only that byte, as one
    int (their 32 bytes, little-endian). Chunking permutes bits, so a hash's chunks are the
    XOR of its bytes' (`chunk_values_one`)."""
    alone = np.zeros((PDQ_BYTES * 256, PDQ_BYTES), dtype=np.uint8)
    at = np.arange(PDQ_BYTES * 256)
    alone[at, at // 256] = at % 256
    keys = chunk_values(alone.view(np.uint64))
    return tuple(
        tuple(int.from_bytes(keys[p * 256 + v].tobytes(), "little") for v in range(256))
        for p in range(PDQ_BYTES)
    )


def chunk_values_one(words: Words) -> Keys:
    """`chunk_values` of one hash (a (1, 4) array), by table: a single query's chunks in a
    few microseconds, where the numpy path costs tens in call overhead."""
    table = _chunks_of_bytes()
    acc = 0
    for position, value in enumerate(np.ascontiguousarray(words).tobytes()):
        acc ^= table[position][value]
    return np.frombuffer(acc.to_bytes(PDQ_BYTES, "little"), dtype=np.uint16).reshape(1, CHUNKS)


class ChunkTable(NamedTuple):
    """One chunk's table of rows 0..rows-1: the rows sorted by the chunk's value (in row order
    within a value), and for each value v its rows' place, [offsets[v], offsets[v+1]).

    A row number is held in two arrays, its low 16 bits in `low` and the rest in `high`
    (one byte while the table has at most 2**24 rows, two beyond): 3 bytes a row instead of
    4, a quarter less for the largest part of the index (16 tables, 48 bytes a hash)."""

    low: npt.NDArray[np.uint16]
    high: npt.NDArray[np.uint8] | npt.NDArray[np.uint16]
    offsets: npt.NDArray[np.int32]
    rows: int

    def rows_at(self, positions: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
        """The row numbers at `positions` of the sorted order."""
        found = self.high[positions].astype(np.int64)
        found <<= 16
        found |= self.low[positions]
        return found

    @property
    def sorted_rows(self) -> npt.NDArray[np.int64]:
        """Every row number, in the table's order."""
        return self.rows_at(np.arange(len(self.low), dtype=np.int64))

    @property
    def nbytes(self) -> int:
        """Bytes held by the table's arrays."""
        return int(self.low.nbytes + self.high.nbytes + self.offsets.nbytes)


class ChunkTables(NamedTuple):
    """The 16 chunks' tables."""

    chunks: tuple[ChunkTable, ...]

    @property
    def rows(self) -> int:
        """The rows every table covers."""
        return min(table.rows for table in self.chunks)


EMPTY_TABLE = ChunkTable(
    np.empty(0, np.uint16), np.empty(0, np.uint8), np.zeros(CHUNK_VALUES + 1, np.int32), 0
)
#: Rows a table holds with one byte of `high` a row.
BYTE_HIGH_ROWS = 1 << 24
NO_TABLES = ChunkTables((EMPTY_TABLE,) * CHUNKS)


def check_rows(n: int) -> None:
    if n >= 2**31:
        raise RequestError("a PDQ index holds fewer than 2**31 hashes")


def extend_table(table: ChunkTable, keys: Keys, n: int) -> ChunkTable:
    """The table of rows 0..n-1, given `table` of the first `table.rows` of them and `keys`,
    this chunk's values of the rows from table.rows to n. Equal to a table built at once, but
    only the new rows are sorted, and the old ones copied into place: a catch-up merges its
    buffer a few dozen times on the way to a million hashes; sorting every row each time was
    most of the cost."""
    check_rows(n)
    old = table.rows
    added = n - old
    if added <= 0:
        return table
    if len(keys) != added:
        raise ValueError(f"{len(keys)} chunk values for {added} new rows")
    # A stable sort of 16-bit keys is numpy's radix sort: linear time. It orders the new rows:
    # `order` becomes their row numbers in place (arrays of the new rows' size are what a merge
    # holds beside the tables, so there are few of them, each made once).
    order = np.argsort(keys, kind="stable")
    # Each bucket keeps its old rows, then its new ones (all larger), each in row order, as a
    # stable sort of all n rows would: a new row's place is the end of its bucket's old rows
    # plus the new rows sorted before it.
    places = table.offsets[1:][keys[order]]
    places += np.arange(added, dtype=np.int32)
    order += old
    low = np.empty(n, dtype=np.uint16)
    high: npt.NDArray[np.uint8] | npt.NDArray[np.uint16] = (
        np.empty(n, dtype=np.uint8) if n <= BYTE_HIGH_ROWS else np.empty(n, dtype=np.uint16)
    )
    low[places] = order.astype(np.uint16)  # the low 16 bits
    order >>= 16
    high[places] = order.astype(high.dtype)
    del order
    if old:
        is_old = np.ones(n, dtype=bool)
        is_old[places] = False
        low[is_old] = table.low
        high[is_old] = table.high
    offsets = np.empty(CHUNK_VALUES + 1, dtype=np.int32)
    offsets[0] = 0
    np.cumsum(np.bincount(keys, minlength=CHUNK_VALUES), out=offsets[1:])
    offsets += table.offsets  # each bucket moves by the new rows before it
    return ChunkTable(low, high, offsets, n)


def extend_tables(tables: ChunkTables, words: Words, n: int) -> ChunkTables:
    """Every chunk's table of the first `n` hashes of `words`, given `tables` (`extend_table`
    of each)."""
    first = tables.rows
    keys = chunk_values(words[first:n])
    return ChunkTables(
        tuple(
            extend_table(table, keys[table.rows - first :, c], n)
            for c, table in enumerate(tables.chunks)
        )
    )


def build_tables(words: Words, n: int) -> ChunkTables:
    """The chunk tables of the first `n` hashes of `words`."""
    return extend_tables(NO_TABLES, words, n)
