"""The outbox's tables (node/events/outbox.py), and the move from its first layout.

The first layout kept one row an event with its JSON (`events`) and one row a queued webhook
delivery (`deliveries`). Opening such a file turns every event row into a range of one entry
(its member and received time read from its JSON; the JSON itself is built from the store
when read, as for every event now) and the queue into the `delivered` cursor: delivery was
in id order, so the queue was every id from the oldest queued one. Nothing recorded is lost,
and ids keep counting from where they were.
"""

from __future__ import annotations

import json
import secrets
import sqlite3

_TABLES = (
    "CREATE TABLE IF NOT EXISTS event_ranges (first_id INTEGER PRIMARY KEY, log TEXT NOT NULL,"
    " start_idx INTEGER NOT NULL, end_idx INTEGER NOT NULL, member TEXT,"
    " received_ms INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS cursors (log TEXT PRIMARY KEY, size INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def create_tables(conn: sqlite3.Connection, deliver: bool) -> None:
    """Create (or move to) the current tables, and start or drop the webhook queue."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for statement in _TABLES:
            conn.execute(statement)
        if _has_table(conn, "events"):
            _move_first_layout(conn, deliver)
        # The event log's identity: a new file numbers events from 1 again, and a consumer
        # whose cursor came from another file must be able to tell.
        conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('feed_id', ?)", (secrets.token_hex(8),)
        )
        if deliver:
            # A queue begins at the newest event: earlier ones were never queued.
            conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) SELECT 'delivered',"
                " coalesce((SELECT CAST(value AS INTEGER) - 1 FROM meta WHERE key = 'next_id'),"
                " 0)"
            )
        else:
            conn.execute("DELETE FROM meta WHERE key = 'delivered'")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()
    return found is not None


def _move_first_layout(conn: sqlite3.Connection, deliver: bool) -> None:
    rows = conn.execute("SELECT id, log, idx, payload FROM events ORDER BY id").fetchall()
    ranges = []
    for event_id, log, idx, payload in rows:
        body = json.loads(payload)
        ranges.append((event_id, log, idx, idx + 1, body.get("member"), body["received_ms"]))
    conn.executemany(
        "INSERT INTO event_ranges (first_id, log, start_idx, end_idx, member, received_ms)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        ranges,
    )
    # AUTOINCREMENT never reused an id, even of a deleted event: carry its counter on.
    (last,) = conn.execute(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
        " coalesce((SELECT max(id) FROM events), 0))"
    ).fetchone()
    conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_id', ?)", (str(last + 1),))
    if deliver and _has_table(conn, "deliveries"):
        (oldest,) = conn.execute("SELECT min(event_id) FROM deliveries").fetchone()
        delivered = last if oldest is None else oldest - 1
        conn.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('delivered', ?)", (str(delivered),)
        )
    conn.execute("DROP TABLE events")
    conn.execute("DROP TABLE IF EXISTS deliveries")
