"""Plain functions of a sqlite3 connection that every connection to our databases uses: its
settings (`configure`), one IMMEDIATE transaction (`immediate`) and multi-row inserts
(`insert_rows`).

Apart from node/store/sqlite/worker.py's thread so that the store's writer process
(node/store/sqlite/writer_child.py) imports them without asyncio: it holds nothing it does not
use (asyncio, ssl and the store's reading side: about 5 MiB resident of the writer's 24 at
its start).
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from typing import Concatenate, ParamSpec, TypeVar

from node.errors import StoreError

_P = ParamSpec("_P")
_R = TypeVar("_R")


def immediate(
    conn: sqlite3.Connection,
    fn: Callable[Concatenate[sqlite3.Connection, _P], _R],
    *args: _P.args,
    **kwargs: _P.kwargs,
) -> _R:
    """`fn(conn, ...)` in one IMMEDIATE transaction: committed whole, or rolled back."""
    # IMMEDIATE takes the write lock up front, so a busy database fails here, cleanly.
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args, **kwargs)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    return result


#: Rows of one multi-row INSERT at most; a batch's remainder goes in power-of-two chunks, so
#: a table needs only a few statement shapes (the connection caches each compiled one). The
#: compiled statements grow with their rows: with 4096 (2048 for entries, by the variable
#: limit) the writer process held about 11 MiB more than with 512 (200,000 entries stored in
#: 12,000-row transactions).
MAX_ROWS_PER_STATEMENT = 512


def insert_rows(conn: sqlite3.Connection, insert: str, rows: Sequence[Sequence[object]]) -> int:
    """Insert `rows` with a few multi-row statements; returns how many statements ran.

    `insert` is "INSERT INTO t (c1, ..., cN)", our own constant text, with a column for each
    value of a row.
    Why not executemany: sqlite3 releases the GIL around each statement step and must take it
    back after, so executemany waits for the GIL once a row; while the event loop runs Python
    code that wait is a whole switch interval, and writing fell from ~500,000 to under 1,000
    rows a second. A multi-row statement waits once.
    """
    if not rows:
        return 0
    width = len(rows[0])
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // width
    chunk = 1 << (min(MAX_ROWS_PER_STATEMENT, limit).bit_length() - 1)
    statements = 0
    start = 0
    while start < len(rows):
        count = chunk
        while count > len(rows) - start:
            count >>= 1
        part = rows[start : start + count]
        conn.execute(_multi_row(insert, width, count), [v for row in part for v in row])
        statements += 1
        start += count
    return statements


@functools.lru_cache(maxsize=64)
def _multi_row(insert: str, width: int, count: int) -> str:
    row = "(" + ", ".join(["?"] * width) + ")"
    return f"{insert} VALUES " + ", ".join([row] * count)


def configure(conn: sqlite3.Connection) -> None:
    """WAL, synchronous=FULL and foreign keys: every connection to our databases has them."""
    conn.execute("PRAGMA foreign_keys = ON")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise StoreError(f"SQLite refused WAL mode (journal mode is {mode})")
    conn.execute("PRAGMA synchronous = FULL")
