"""The outbox's event log as ranges: ids across ranges, the webhook cursor, the first layout,
retention."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from node.events import outbox as outbox_module
from node.events.outbox import Outbox
from node.events.outbox_schema import create_tables
from node.events.recorder import EntryEvents
from node.store.sqlite.store import SqliteStore
from protocol.entries import Add, encode_entry
from tests.node.event_fakes import fake_outbox, record_adds
from tests.node.store.test_store import Log


def range_rows(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute("SELECT count(*) FROM event_ranges").fetchone()
    return int(count)


async def test_a_long_range_is_one_row_and_reads_in_pages_across_logs(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    outbox = fake_outbox(path, deliver=False)
    await outbox.open()
    try:
        await record_adds(outbox, "log-a", 2500)  # a catch-up: ids 1..2500
        await record_adds(outbox, "log-b", 10)  # ids 2501..2510
        await record_adds(outbox, "log-a", 3000)  # ids 2511..3010
        assert range_rows(path) == 3
        assert [e.id for e in await outbox.after(0, 1000)] == list(range(1, 1001))
        middle = [(e.id, e.body()["log"], e.body()["index"]) for e in await outbox.after(2498, 4)]
        assert middle == [
            (2499, "log-a", 2498),
            (2500, "log-a", 2499),
            (2501, "log-b", 0),
            (2502, "log-b", 1),
        ]
        tail = [(e.id, e.body()["log"], e.body()["index"]) for e in await outbox.after(2509, 1000)]
        assert tail == [(2510, "log-b", 9)] + [(2511 + i, "log-a", 2500 + i) for i in range(500)]
        assert await outbox.after(3010, 10) == []
        assert await outbox.latest_id() == 3010
        assert await record_adds(outbox, "log-b", 10) == 0  # reported again: nothing new
        assert range_rows(path) == 3
    finally:
        await outbox.close()


async def test_the_webhook_queue_starts_at_the_newest_event_and_is_dropped_when_turned_off(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.db"
    outbox = fake_outbox(path, deliver=False)
    await outbox.open()
    await record_adds(outbox, "log-a", 3)
    await outbox.close()

    outbox = fake_outbox(path, deliver=True)
    await outbox.open()
    assert await outbox.pending_count() == 0  # events before the webhook are not queued
    await record_adds(outbox, "log-a", 5)
    assert [e.id for e in await outbox.pending(10)] == [4, 5]
    await outbox.acknowledge(4)
    assert [e.id for e in await outbox.pending(10)] == [5]
    await outbox.acknowledge(3)  # an older acknowledgement never moves the cursor back
    assert await outbox.pending_count() == 1
    await outbox.close()

    outbox = fake_outbox(path, deliver=False)
    await outbox.open()
    await record_adds(outbox, "log-a", 6)
    assert await outbox.pending(10) == [] and await outbox.pending_count() == 0
    await outbox.close()

    outbox = fake_outbox(path, deliver=True)
    await outbox.open()
    try:
        await record_adds(outbox, "log-a", 7)
        assert [e.id for e in await outbox.pending(10)] == [7]
    finally:
        await outbox.close()


async def test_queued_entries_that_make_no_event_leave_the_queue(tmp_path: Path) -> None:
    log = "test.hashmesh/a"
    store = SqliteStore(tmp_path / "data.db")
    await store.open()
    outbox = Outbox(tmp_path / "outbox.db", True, EntryEvents(store, lambda origin: None))
    await outbox.open()
    try:
        await Log(log).append(store, [encode_entry(Add(1, "md5", bytes(16))), b"\xc1", b"\xc1"])
        await outbox.record(log, 3, None, 5)
        [event] = await outbox.pending(10)
        assert event.id == 1
        await outbox.acknowledge(1)
        assert await outbox.pending_count() == 2
        assert await outbox.pending(10) == []  # the two ids hold no event: passed
        assert await outbox.pending_count() == 0
    finally:
        await outbox.close()
        await store.close()


FIRST_LAYOUT = (
    "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, log TEXT NOT NULL,"
    " idx INTEGER NOT NULL, kind TEXT NOT NULL, payload TEXT NOT NULL, UNIQUE (log, idx))",
    "CREATE TABLE deliveries (event_id INTEGER PRIMARY KEY)",
    "CREATE TABLE cursors (log TEXT PRIMARY KEY, size INTEGER NOT NULL)",
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


async def test_an_outbox_of_the_first_layout_keeps_its_events_ids_and_queue(
    tmp_path: Path,
) -> None:
    log = "test.hashmesh/a"
    adds = [Add(100 + i, "md5", bytes([i]) * 16) for i in range(4)]
    store = SqliteStore(tmp_path / "data.db")
    await store.open()
    await Log(log).append(store, [encode_entry(a) for a in adds])
    path = tmp_path / "outbox.db"
    with sqlite3.connect(path) as conn:
        for statement in FIRST_LAYOUT:
            conn.execute(statement)
        # Entries 0..3 became events 1..4 (then 5, now gone); the webhook took 1 and 2.
        for i in range(4):
            payload = f'{{"log": "{log}", "member": "member1", "received_ms": {900 + i}}}'
            conn.execute(
                "INSERT INTO events (id, log, idx, kind, payload) VALUES (?, ?, ?, 'add', ?)",
                (i + 1, log, i, payload),
            )
        conn.execute("UPDATE sqlite_sequence SET seq = 5 WHERE name = 'events'")
        conn.executemany("INSERT INTO deliveries (event_id) VALUES (?)", [(3,), (4,)])
        conn.executemany("INSERT INTO meta (key, value) VALUES (?, '1')", [("started",)])
        conn.execute("INSERT INTO cursors (log, size) VALUES (?, 4)", (log,))
    outbox = Outbox(path, True, EntryEvents(store, lambda origin: "member1"))
    await outbox.open()
    try:
        events = [e.body() for e in await outbox.after(0, 10)]
        assert [(e["id"], e["index"], e["received_ms"]) for e in events] == [
            (1, 0, 900),
            (2, 1, 901),
            (3, 2, 902),
            (4, 3, 903),
        ]
        assert events[2]["value"] == "02" * 16 and events[2]["member"] == "member1"
        assert [e.id for e in await outbox.pending(10)] == [3, 4]
        assert await outbox.latest_id() == 5  # ids go on after the last one ever given
    finally:
        await outbox.close()
        await store.close()
    with sqlite3.connect(path) as conn:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master")}
    assert "events" not in tables and "deliveries" not in tables


def test_retiring_old_ranges_walks_the_primary_key_not_every_range(tmp_path: Path) -> None:
    # Regression: retention scanned every range at every recording; a node taking pushes
    # one entry at a time keeps about retain_events ranges, so each recording read them all.
    with sqlite3.connect(tmp_path / "plan.db") as conn:
        create_tables(conn, deliver=False)
        plan = conn.execute(f"EXPLAIN QUERY PLAN {outbox_module._RETIRE}", (1, 1)).fetchall()
    assert [row[3] for row in plan] == ["SEARCH event_ranges USING INTEGER PRIMARY KEY (rowid<?)"]


async def test_retention_keeps_a_range_that_still_holds_a_kept_id(tmp_path: Path) -> None:
    outbox = fake_outbox(tmp_path / "outbox.db", deliver=False, retain_events=5)
    await outbox.open()
    try:
        await record_adds(outbox, "log-a", 4)  # ids 1..4
        await record_adds(outbox, "log-a", 8)  # ids 5..8: keep 4..8, so 1..4 stay with 4
        assert [e.id for e in await outbox.after(0, 100)] == list(range(1, 9))
        await record_adds(outbox, "log-a", 9)  # id 9: keep 5..9, the first range goes
        assert [e.id for e in await outbox.after(0, 100)] == list(range(5, 10))
    finally:
        await outbox.close()


async def test_retention_keeps_the_newest_events_and_the_undelivered(tmp_path: Path) -> None:
    outbox = fake_outbox(tmp_path / "outbox.db", deliver=False, retain_events=3)
    await outbox.open()
    try:
        for i in range(6):
            await record_adds(outbox, "log-a", i + 1)
        assert [e.id for e in await outbox.after(0, 100)] == [4, 5, 6]
        assert await outbox.latest_id() == 6
    finally:
        await outbox.close()
