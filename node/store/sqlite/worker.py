"""One SQLite database driven from one dedicated worker thread: the pattern the store and the
webhook outbox share.

Every statement runs on the worker's own thread (node/store/sqlite/own_thread.py), so the
event loop never
blocks on disk and the connection is only touched by the thread that opened it. The database
is in WAL mode with synchronous=FULL. `write` runs a function in one IMMEDIATE transaction
(all of it is stored, or none of it); every sqlite3 error leaves as StoreError naming `what`.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from node.errors import StoreError
from node.store.sqlite.own_thread import OwnThread

_P = ParamSpec("_P")
_R = TypeVar("_R")


class SqliteWorker:
    def __init__(self, path: Path, what: str, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self.what = what
        self.busy_timeout_s = busy_timeout_s
        self._thread = OwnThread("sqlite")
        self._conn: sqlite3.Connection | None = None

    @property
    def is_open(self) -> bool:
        return self._thread.is_open

    async def open(self, prepare: Callable[[sqlite3.Connection], None]) -> None:
        """Connect (WAL, synchronous=FULL), then run `prepare` (e.g. create the tables)."""
        await self._thread.open(functools.partial(self._connect, prepare))

    def _connect(self, prepare: Callable[[sqlite3.Connection], None]) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        except sqlite3.Error as e:
            raise StoreError(f"cannot open {self.what} {self.path}: {e}") from e
        self._conn = conn
        try:
            self.guarded(configure)
            self.guarded(prepare)
        except BaseException:
            conn.close()
            self._conn = None
            raise

    async def close(self) -> None:
        await self._thread.close(self._disconnect)

    def _disconnect(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as e:
                raise StoreError(f"closing {self.what} {self.path}: {e}") from e

    def guarded(self, job: Callable[[sqlite3.Connection], _R]) -> _R:
        """Run `job` on the connection here and now (on the worker thread)."""
        if self._conn is None:
            raise StoreError(f"{self.what} {self.path} is not open")
        try:
            return job(self._conn)
        except sqlite3.Error as e:
            raise StoreError(f"{self.what} {self.path}: {e}") from e

    async def call(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, _P], _R],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _R:
        """Run `fn(conn, ...)` on the worker thread."""
        if not self._thread.is_open:
            raise StoreError(f"{self.what} {self.path} is not open")
        return await self._thread.run(self.guarded, lambda conn: fn(conn, *args, **kwargs))

    async def write(
        self,
        fn: Callable[Concatenate[sqlite3.Connection, _P], _R],
        *args: _P.args,
        **kwargs: _P.kwargs,
    ) -> _R:
        """Run `fn` in one IMMEDIATE transaction: all of it is stored, or none of it."""
        return await self.call(lambda conn: immediate(conn, fn, *args, **kwargs))


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
