"""The event log and the webhook outbox: one SQLite file (data/outbox.db) of their own.

Three tables:
- `events`: append-only, one row per new add, retract or dispute of any log, numbered by an
  ever-increasing id (the cursor of the pull stream); only the newest `retain_events` are kept.
- `deliveries`: the webhook queue, the ids not yet acknowledged by the platform's endpoint
  (2xx). A row leaves only on acknowledgement, so delivery is at least once across restarts.
- `cursors`: per log, how many of its entries have become events; an entry is recorded once,
  whichever path (listener, catch-up at start) reports it.

Like node/store/sqlite.py, every statement runs on one dedicated worker thread, in WAL mode
with synchronous=FULL; sqlite3 errors leave as StoreError. Waiters (long polls, streams, the
webhook sender) are woken in the event loop whenever events are recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from node.sqlite_worker import SqliteWorker, insert_rows

_R = TypeVar("_R")

_TABLES = (
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " log TEXT NOT NULL, idx INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL,"
    " UNIQUE (log, idx))",
    "CREATE TABLE IF NOT EXISTS deliveries (event_id INTEGER PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS cursors (log TEXT PRIMARY KEY, size INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_EVENT = "SELECT e.id, e.kind, e.payload FROM events e"


@dataclass(frozen=True, slots=True)
class Event:
    """One recorded event: its id (the cursor), kind and JSON payload (without the id)."""

    id: int
    kind: str
    payload: str

    def body(self) -> dict[str, Any]:
        """The event as consumers see it: {"id": ..., "event": kind, ...}."""
        data: dict[str, Any] = json.loads(self.payload)
        return {"id": self.id, "event": self.kind, **data}

    def to_json(self) -> str:
        return json.dumps(self.body(), separators=(",", ":"), ensure_ascii=False)


class NewEvent(NamedTuple):
    """An event to record: which entry it comes from, its kind and JSON payload.

    A NamedTuple (as immutable as a frozen dataclass, and cheaper to make): a catch-up makes
    one an entry. `idx` is named as its column, since `index` is a tuple method.
    """

    idx: int
    kind: str
    payload: str


def _create_tables(conn: sqlite3.Connection) -> None:
    for statement in _TABLES:
        conn.execute(statement)


class Outbox:
    """The event log and webhook queue in one SQLite file at `path`.

    `deliver` says whether recorded events also enter the webhook queue (a webhook URL is
    configured); `retain_events` bounds the event log (undelivered events are always kept).
    """

    def __init__(
        self, path: str | os.PathLike[str], deliver: bool, retain_events: int = 100_000
    ) -> None:
        self.path = Path(path)
        self.deliver = deliver
        self.retain_events = retain_events
        self._db = SqliteWorker(self.path, "the outbox")
        self._changed = asyncio.Event()
        self._stopping = False

    async def _call(self, fn: Callable[[sqlite3.Connection], _R], write: bool = False) -> _R:
        """Run `fn` on the outbox's worker thread; in one transaction if it writes."""
        return await (self._db.write(fn) if write else self._db.call(fn))

    # Lifecycle.

    async def open(self) -> None:
        if self._db.is_open:
            return
        await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
        self._stopping = False
        await self._db.open(_create_tables)

    async def close(self) -> None:
        self.stop_waiters()
        await self._db.close()

    # Waking waiters.

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def stop_waiters(self) -> None:
        """Wake every waiter for good: the server is shutting down."""
        self._stopping = True
        self._notify()

    @property
    def stopping(self) -> bool:
        return self._stopping

    # Cursors.

    async def cursors(self) -> dict[str, int] | None:
        """Entries of each log already recorded; None before the first `start_cursors`."""

        def read(conn: sqlite3.Connection) -> dict[str, int] | None:
            if conn.execute("SELECT 1 FROM meta WHERE key = 'started'").fetchone() is None:
                return None
            rows = conn.execute("SELECT log, size FROM cursors").fetchall()
            return {str(log): int(size) for log, size in rows}

        return await self._call(read)

    async def start_cursors(self, sizes: dict[str, int]) -> None:
        """First start: begin every log at `sizes` (its history is not turned into events)."""

        def write(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO cursors (log, size) VALUES (?, ?) ON CONFLICT (log) DO NOTHING",
                sorted(sizes.items()),
            )
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('started', '1')")

        await self._call(write, write=True)

    # Recording.

    async def record(self, log: str, end: int, events: Sequence[NewEvent]) -> int:
        """Record the events of `log`'s entries below `end` not recorded yet; returns how many.

        Entries below the stored cursor are skipped, so a range reported twice (by the
        listener and by catch-up) becomes events once. The cursor moves to `end`.
        """

        def write(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT size FROM cursors WHERE log = ?", (log,)).fetchone()
            cursor = int(row[0]) if row else 0
            fresh = [e for e in events if cursor <= e.idx < end]
            if fresh:
                # AUTOINCREMENT ids only grow, so the new events are exactly those above this.
                (before,) = conn.execute("SELECT coalesce(max(id), 0) FROM events").fetchone()
                insert_rows(
                    conn,
                    "INSERT INTO events (log, idx, kind, payload)",
                    [(log, *e) for e in fresh],
                )
                if self.deliver:
                    conn.execute(
                        "INSERT INTO deliveries (event_id) SELECT id FROM events WHERE id > ?",
                        (before,),
                    )
            conn.execute(
                "INSERT INTO cursors (log, size) VALUES (?, ?)"
                " ON CONFLICT (log) DO UPDATE SET size = max(size, excluded.size)",
                (log, end),
            )
            if fresh:
                conn.execute(
                    "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?"
                    " AND id NOT IN (SELECT event_id FROM deliveries)",
                    (self.retain_events,),
                )
            return len(fresh)

        count = await self._call(write, write=True)
        if count:
            self._notify()
        return count

    # Reading the event log.

    async def after(self, cursor: int, limit: int) -> list[Event]:
        """Events with an id above `cursor`, oldest first, at most `limit`."""
        rows = await self._call(
            lambda c: c.execute(
                f"{_EVENT} WHERE e.id > ? ORDER BY e.id LIMIT ?", (cursor, limit)
            ).fetchall()
        )
        return [Event(int(i), str(k), str(p)) for i, k, p in rows]

    async def latest_id(self) -> int:
        row = await self._call(lambda c: c.execute("SELECT max(id) FROM events").fetchone())
        return int(row[0] or 0)

    async def wait_after(self, cursor: int, limit: int, timeout_s: float) -> list[Event]:
        """Events after `cursor`, waiting up to `timeout_s` for the first one (long poll)."""
        return await self._wait(lambda: self.after(cursor, limit), timeout_s, stop_early=True)

    async def _wait(
        self, read: Callable[[], Awaitable[list[Event]]], timeout_s: float, stop_early: bool
    ) -> list[Event]:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            changed = self._changed  # taken before reading, so no recording is missed
            found = await read()
            left = deadline - asyncio.get_running_loop().time()
            if found or left <= 0 or (stop_early and self._stopping):
                return found
            try:
                await asyncio.wait_for(changed.wait(), left)
            except TimeoutError:
                return []

    # The webhook queue.

    async def pending(self, limit: int) -> list[Event]:
        """Events not yet acknowledged by the webhook endpoint, oldest first."""
        rows = await self._call(
            lambda c: c.execute(
                f"{_EVENT} JOIN deliveries d ON d.event_id = e.id ORDER BY e.id LIMIT ?", (limit,)
            ).fetchall()
        )
        return [Event(int(i), str(k), str(p)) for i, k, p in rows]

    async def wait_pending(self, limit: int, timeout_s: float) -> list[Event]:
        """Queued events, waiting up to `timeout_s` for one if the queue is empty."""
        # The sender is cancelled by its TaskGroup; stop_waiters is for HTTP waiters only.
        return await self._wait(lambda: self.pending(limit), timeout_s, stop_early=False)

    async def pending_count(self) -> int:
        row = await self._call(lambda c: c.execute("SELECT count(*) FROM deliveries").fetchone())
        return int(row[0])

    async def acknowledge(self, event_ids: Sequence[int]) -> None:
        """The endpoint took these events (2xx): they leave the queue for good."""
        ids = [(i,) for i in event_ids]
        await self._call(
            lambda c: c.executemany("DELETE FROM deliveries WHERE event_id = ?", ids), write=True
        )
