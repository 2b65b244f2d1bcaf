"""The event log and the webhook outbox: one SQLite file (data/outbox.db) of their own.

The event log numbers every entry of every log that became an event with an ever-increasing
id (the cursor of the pull stream and of webhooks). It is recorded as ranges, one row per
recorded range of one log: ids `first_id ..` stand for that log's entries `start_idx ..
end_idx - 1`, with the member and the time of recording. A catch-up of a million entries is a
few hundred rows, not a million; an event's JSON is built when it is read, from the entry in
the store, by the `EventBuilder` the outbox is given (node/events/recorder.py). An entry that
does not
decode holds its id but makes no event.

Tables:
- `event_ranges`: the ranges, oldest first; only those holding the newest `retain_events`
  ids are kept, and those the webhook has not acknowledged.
- `cursors`: per log, how many of its entries have become events; an entry is recorded once,
  whichever path (listener, catch-up at start) reports it.
- `meta`: `started`, `next_id` (the id the next recorded entry gets), `delivered` (ids up
  to it are acknowledged by the webhook endpoint; only while a webhook is configured), and
  `feed_id` (random, made with the file: the ids of another file mean other events).
Delivery is in id order, so the webhook queue is every id above `delivered`; acknowledging an
event moves that cursor, and it survives restarts (at least once, in order).

Like node/store/sqlite/store.py, every statement runs on one dedicated worker thread, in WAL mode
with synchronous=FULL; sqlite3 errors leave as StoreError. Waiters (long polls, streams, the
webhook sender) are woken in the event loop whenever events are recorded.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from node.events.outbox_schema import create_tables
from node.store.sqlite.worker import SqliteWorker

_R = TypeVar("_R")
#: Ranges whose every id is below ? (given twice). `first_id < ?` lets SQLite walk the primary
#: key over the old ranges only, not scan every range at every recording.
_RETIRE = "DELETE FROM event_ranges WHERE first_id < ? AND first_id + end_idx - start_idx <= ?"
#: Up to ? ranges holding ids above ? (given twice), oldest first.
_RANGES_AFTER = (
    "SELECT first_id, log, start_idx, end_idx, member, received_ms FROM event_ranges"
    " WHERE first_id >= coalesce((SELECT max(first_id) FROM event_ranges WHERE first_id <= ?),"
    " 0) AND first_id + end_idx - start_idx > ? + 1 ORDER BY first_id LIMIT ?"
)


@dataclass(frozen=True, slots=True)
class Event:
    """One event as read: its id (the cursor), kind and JSON payload (without the id)."""

    id: int
    kind: str
    payload: str

    def body(self) -> dict[str, Any]:
        """The event as consumers see it: {"id": ..., "event": kind, ...}."""
        data: dict[str, Any] = json.loads(self.payload)
        return {"id": self.id, "event": self.kind, **data}

    def to_json(self) -> str:
        return json.dumps(self.body(), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class EventRange:
    """Entries [start, end) of `log`, recorded as events with ids from `first_id`."""

    first_id: int
    log: str
    start: int
    end: int
    member: str | None
    received_ms: int

    @property
    def last_id(self) -> int:
        return self.first_id + self.end - self.start - 1

    def id_of(self, index: int) -> int:
        return self.first_id + index - self.start


#: Builds the events of entries [start, stop) of a range, in order (fewer if some entries do
#: not decode or are not in the store).
EventBuilder = Callable[[EventRange, int, int], Awaitable[list[Event]]]


class Outbox:
    """The event log and webhook queue in one SQLite file at `path`.

    `deliver` says whether events are queued for the webhook (a webhook URL is configured):
    the queue starts at the newest event when it is turned on and is dropped when it is
    turned off. `retain_events` bounds the event log (undelivered events are always kept);
    `build` turns recorded ranges into events when they are read.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        deliver: bool,
        build: EventBuilder,
        retain_events: int = 100_000,
    ) -> None:
        self.path = Path(path)
        self.deliver = deliver
        self.retain_events = retain_events
        self._build = build
        self._db = SqliteWorker(self.path, "the outbox")
        self._changed = asyncio.Event()
        self._stopping = False
        self.feed_id = ""  # read at open

    async def _call(self, fn: Callable[[sqlite3.Connection], _R], write: bool = False) -> _R:
        """Run `fn` on the outbox's worker thread; in one transaction if it writes."""
        return await (self._db.write(fn) if write else self._db.call(fn))

    # Lifecycle.

    async def open(self) -> None:
        if self._db.is_open:
            return
        await asyncio.to_thread(self.path.parent.mkdir, parents=True, exist_ok=True)
        self._stopping = False
        await self._db.open(lambda conn: create_tables(conn, self.deliver))
        self.feed_id = await self._call(
            lambda c: str(c.execute("SELECT value FROM meta WHERE key = 'feed_id'").fetchone()[0])
        )

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

    async def record(self, log: str, end: int, member: str | None, received_ms: int) -> int:
        """Record `log`'s entries below `end` not recorded yet as events; returns how many.

        Entries below the stored cursor are skipped, so a range reported twice (by the
        listener and by catch-up) becomes events once. The cursor moves to `end`.
        """

        def write(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT size FROM cursors WHERE log = ?", (log,)).fetchone()
            start = int(row[0]) if row else 0
            if start >= end:
                return 0
            first_id = _meta_int(conn, "next_id", 1)
            conn.execute(
                "INSERT INTO event_ranges (first_id, log, start_idx, end_idx, member,"
                " received_ms) VALUES (?, ?, ?, ?, ?, ?)",
                (first_id, log, start, end, member, received_ms),
            )
            _set_meta(conn, "next_id", first_id + end - start)
            conn.execute(
                "INSERT INTO cursors (log, size) VALUES (?, ?)"
                " ON CONFLICT (log) DO UPDATE SET size = max(size, excluded.size)",
                (log, end),
            )
            # Whole ranges go once their last id is older than the newest retain_events
            # and acknowledged (or nothing is queued).
            keep_from = first_id + end - start - self.retain_events
            delivered = _meta_int(conn, "delivered", None)
            if delivered is not None:
                keep_from = min(keep_from, delivered + 1)
            conn.execute(_RETIRE, (keep_from, keep_from))
            return end - start

        count = await self._call(write, write=True)
        if count:
            self._notify()
        return count

    # Reading the event log.

    async def after(self, cursor: int, limit: int) -> list[Event]:
        """Events with an id above `cursor`, oldest first, at most `limit`."""
        events, _ = await self._read(cursor, limit)
        return events

    async def _read(self, cursor: int, limit: int) -> tuple[list[Event], int]:
        """Events above `cursor` (at most `limit`), and the last id looked at."""
        events: list[Event] = []
        seen = cursor
        while len(events) < limit:
            ranges = await self._ranges_after(seen, limit - len(events))
            if not ranges:
                break
            for r in ranges:
                index = max(r.start, r.start + seen + 1 - r.first_id)
                while index < r.end and len(events) < limit:
                    stop = min(r.end, index + limit - len(events))
                    events += await self._build(r, index, stop)
                    seen, index = r.id_of(stop - 1), stop
                if len(events) >= limit:
                    break
        return events, seen

    async def _ranges_after(self, cursor: int, limit: int) -> list[EventRange]:
        """Up to `limit` ranges holding ids above `cursor`, oldest first."""
        rows = await self._call(
            lambda c: c.execute(_RANGES_AFTER, (cursor, cursor, limit)).fetchall()
        )
        return [EventRange(int(f), str(g), int(s), int(e), m, int(t)) for f, g, s, e, m, t in rows]

    async def latest_id(self) -> int:
        return await self._call(lambda c: _meta_int(c, "next_id", 1)) - 1

    async def oldest_id(self) -> int:
        """The smallest event id still held (retention drops older ranges); the next id to be
        recorded when none is held. A consumer whose cursor is below it - 1 missed events."""

        def read(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT min(first_id) FROM event_ranges").fetchone()
            return int(row[0]) if row[0] is not None else _meta_int(conn, "next_id", 1)

        return await self._call(read)

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
        delivered = await self._call(lambda c: _meta_int(c, "delivered", None))
        if delivered is None:
            return []
        events, seen = await self._read(delivered, limit)
        if not events and seen > delivered:
            await self.acknowledge(seen)  # only entries that make no event: nothing to send
        return events

    async def wait_pending(self, limit: int, timeout_s: float) -> list[Event]:
        """Queued events, waiting up to `timeout_s` for one if the queue is empty."""
        # The sender is cancelled by its TaskGroup; stop_waiters is for HTTP waiters only.
        return await self._wait(lambda: self.pending(limit), timeout_s, stop_early=False)

    async def pending_count(self) -> int:
        """Ids not yet acknowledged (an entry that does not decode counts until passed)."""

        def read(conn: sqlite3.Connection) -> int:
            delivered = _meta_int(conn, "delivered", None)
            return 0 if delivered is None else _meta_int(conn, "next_id", 1) - 1 - delivered

        return await self._call(read)

    async def acknowledge(self, event_id: int) -> None:
        """The endpoint took every event up to `event_id` (2xx): they leave the queue."""

        def write(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE meta SET value = max(CAST(value AS INTEGER), ?) WHERE key = 'delivered'",
                (event_id,),
            )

        await self._call(write, write=True)


def _meta_int(conn: sqlite3.Connection, key: str, default: _R) -> int | _R:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return default if row is None else int(row[0])


def _set_meta(conn: sqlite3.Connection, key: str, value: int) -> None:
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (key, str(value)),
    )
