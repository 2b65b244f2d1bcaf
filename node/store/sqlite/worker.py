"""One SQLite database driven from one dedicated worker thread: the pattern the store and the
webhook outbox share.

Every statement runs on the worker's own thread (node/store/sqlite/own_thread.py), so the
event loop never blocks on disk and the connection is only touched by the thread that opened
it. The database is in WAL mode with synchronous=FULL (node/store/sqlite/statements.py).
`write` runs a function in one IMMEDIATE transaction (all of it is stored, or none of it);
every sqlite3 error leaves as StoreError naming `what`.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from node.errors import StoreError
from node.store.sqlite.own_thread import OwnThread
from node.store.sqlite.statements import configure, immediate

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
