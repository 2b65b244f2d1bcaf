"""The source's log for the catch-up benchmark: N adds in pages as the joiner stores them
(rows and completed Merkle nodes), re-cut into other page sizes, and stored into fresh
databases of the store's schema, one or several pages a transaction. Used by
bench_catchup.py; no logic of the node's own lives here.
"""

from __future__ import annotations

import random
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from benchlib import timed

from node.store.base import EntryRow
from node.store.rows import entry_row
from node.store.sqlite.writes import configure_writer, prepare, run_write
from protocol.entries import Add, encode_entry
from protocol.merkle import NodeId
from protocol.signing import SigningKey
from protocol.writer import LogWriter

SIGNAL_BYTES = {"pdq": 32, "md5": 16, "sha256": 32}
LABELS = ("terrorist-attack",)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the source's log as the joiner stores it: rows and completed nodes."""

    start: int
    rows: tuple[EntryRow, ...]
    nodes: tuple[tuple[NodeId, bytes], ...]


def make_pages(
    origin: str, key: SigningKey, n: int, page_size: int, signal: str, seed: int
) -> tuple[list[Page], bytes, int]:
    """The source's log in pages, its signed checkpoint of size n, and the entries' bytes."""
    rng = random.Random(seed)
    writer = LogWriter(origin, key)
    now = time.time_ns() // 1_000_000
    first_ms = now - n  # one entry a millisecond, ending now
    pages: list[Page] = []
    total = 0
    for start in range(0, n, page_size):
        adds = [
            Add(first_ms + i, signal, rng.randbytes(SIGNAL_BYTES[signal]), LABELS)
            for i in range(start, min(n, start + page_size))
        ]
        raws = [encode_entry(a) for a in adds]
        total += sum(map(len, raws))
        plan = writer.plan(raws)
        writer.commit(plan)
        rows = tuple(
            entry_row(start + i, r, a, now) for i, (r, a) in enumerate(zip(raws, adds, strict=True))
        )
        pages.append(Page(start, rows, plan.nodes))
    return pages, writer.sign().raw, total


def rechunk(pages: list[Page], size: int) -> list[Page]:
    """The same log in pages of `size` entries; each Merkle node goes with its last leaf."""
    rows = [r for p in pages for r in p.rows]
    chunks: dict[int, list[tuple[NodeId, bytes]]] = {}
    for p in pages:
        for (level, k), digest in p.nodes:
            last_leaf = ((k + 1) << level) - 1
            chunks.setdefault(last_leaf // size, []).append(((level, k), digest))
    return [
        Page(start, tuple(rows[start : start + size]), tuple(chunks.get(start // size, ())))
        for start in range(0, len(rows), size)
    ]


def store_pages(path: Path, origin: str, pages: list[Page], per_batch: int) -> float:
    """Append the pages to a fresh database of the store's schema, `per_batch` pages a
    transaction; seconds. The raw SQLite baseline: the store's own write statements
    (node/store/sqlite/writes.py) on one sqlite3 connection in this process, without the
    node's writer process, marshalling or event loop. Rows are made into tuples before timing."""
    groups = []
    for i in range(0, len(pages), per_batch):
        group = pages[i : i + per_batch]
        rows = [tuple(r) for p in group for r in p.rows]
        groups.append((group[0].start, rows, [x for p in group for x in p.nodes]))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        configure_writer(conn)
        prepare(conn)
        with timed() as t:
            for start, rows, nodes in groups:
                run_write(conn, "append", (origin, start, rows, nodes, None, None))
    finally:
        conn.close()
    return t[0]


def save_checkpoint(path: Path, origin: str, size: int, raw: bytes) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        run_write(conn, "save_head", (origin, size, raw))
    finally:
        conn.close()


def fresh_store_seconds(
    directory: Path, origin: str, pages: list[Page], per_batch: int = 1
) -> float:
    """Seconds to append `pages` to a fresh store in `directory`, `per_batch` pages a
    transaction."""
    directory.mkdir()
    try:
        return store_pages(directory / "hashmesh.db", origin, pages, per_batch)
    finally:
        shutil.rmtree(directory)
