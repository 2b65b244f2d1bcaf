"""The Store contract, run against SQLite and PostgreSQL alike (see conftest.py)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from node.errors import StoreConflictError, StoreError
from node.store import PostgresStore, SqliteStore, open_store
from node.store.base import EntryRow, Evidence, LogHead, Store
from node.store.sqlite.store import nodes_query
from protocol.merkle import CompactRange, NodeId, leaf_hash, peak_ids
from tests.node.conftest import StoreFactory

A = "test.hashmesh/a"
B = "test.hashmesh/b"


class Log:
    """A log being written in a test: the rows and Merkle nodes of each next batch."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.tree = CompactRange()
        self.all_nodes: dict[NodeId, bytes] = {}

    def batch(
        self, raws: list[bytes], rows: list[EntryRow] | None = None
    ) -> tuple[int, list[EntryRow], list[tuple[NodeId, bytes]]]:
        start = self.tree.size
        nodes: list[tuple[NodeId, bytes]] = []
        for raw in raws:
            nodes.extend(self.tree.append(leaf_hash(raw)))
        self.all_nodes.update(nodes)
        if rows is None:
            rows = [EntryRow(start + i, raw, received_ms=7) for i, raw in enumerate(raws)]
        return start, rows, nodes

    async def append(
        self, store: Store, raws: list[bytes], checkpoint: bytes | None = None
    ) -> None:
        start, rows, nodes = self.batch(raws)
        size = self.tree.size if checkpoint is not None else None
        await store.append(self.origin, start, rows, nodes, checkpoint, size)


def add(index: int, key: bytes, signal_type: str = "sha256") -> EntryRow:
    return EntryRow(index, b"add-" + key, 0, signal_type, key, None, None, 1000 + index, 2000)


def reference(index: int, kind: int, log: str, target: int) -> EntryRow:
    return EntryRow(index, b"ref-%d" % index, kind, None, None, log, target, 1000, 2000)


async def snapshot(store: Store) -> tuple[object, ...]:
    """Everything a store holds of logs A and B, to compare before and after a failure."""
    heads = await store.log_heads()
    return (
        heads,
        await store.entries(A, 0, 100),
        await store.checkpoints(A),
        await store.nodes(A, [(level, k) for level in range(5) for k in range(20)]),
    )


async def test_append_keeps_exact_bytes_and_peaks(store: Store) -> None:
    log = Log(A)
    raws = [b"", b"\x00\xff\xfe not utf-8 \x80", b"x" * 70_000, b"third"]
    await log.append(store, raws[:1])
    await log.append(store, raws[1:])
    assert await store.entries(A, 0, 10) == raws
    assert await store.entries(A, 1, 3) == raws[1:3]
    assert await store.entries(B, 0, 10) == []
    heads = await store.log_heads()
    assert heads == {A: LogHead(A, 4, log.tree.peaks, None)}


async def test_gap_and_replay_are_refused_with_nothing_stored(store: Store) -> None:
    log = Log(A)
    await log.append(store, [b"e0", b"e1", b"e2"])
    before = await snapshot(store)
    gap_rows = [EntryRow(5, b"e5"), EntryRow(6, b"e6")]
    with pytest.raises(StoreConflictError, match="holds 3 entries"):
        await store.append(A, 5, gap_rows, [], None)
    replay = Log(A)
    start, rows, nodes = replay.batch([b"e0", b"e1", b"e2", b"e3"])
    with pytest.raises(StoreConflictError):
        await store.append(A, start, rows, nodes, None)  # starts at 0: a replay
    with pytest.raises(StoreConflictError):
        await store.append(A, 1, rows[1:], [], None)  # overlaps entries 1 and 2
    assert await snapshot(store) == before


async def test_batch_failing_midway_leaves_the_store_unchanged(store: Store) -> None:
    log = Log(A)
    await log.append(store, [b"e0", b"e1"])
    before = await snapshot(store)
    start, rows, nodes = log.batch([b"e2", b"e3"])
    stale = (1, 0), log.all_nodes[(1, 0)]  # already stored: fails after the entries went in
    with pytest.raises(StoreError):
        await store.append(A, start, rows, [*nodes, stale], None)
    with pytest.raises(StoreConflictError, match="beyond"):
        await store.append(A, start, rows, nodes, b"too-far", 9)
    with pytest.raises(StoreError, match="lacks the Merkle node"):
        await store.append(A, start, rows, nodes[:1], None)
    assert await snapshot(store) == before
    await store.append(A, start, rows, nodes, None)  # the same batch, whole, still fits
    assert (await store.log_heads())[A].size == 4


async def test_checkpoints_history_and_head(store: Store) -> None:
    log = Log(A)
    await log.append(store, [b"e0", b"e1"], checkpoint=b"cp2")
    assert (await store.log_heads())[A].checkpoint == b"cp2"
    start, rows, nodes = log.batch([b"e2", b"e3", b"e4"])
    await store.append(A, start, rows, nodes, b"cp4", 4)  # reached 4 of the new 5
    head = (await store.log_heads())[A]
    assert (head.size, head.checkpoint) == (5, None)
    await store.save_checkpoint(A, 5, b"cp5")
    await store.save_checkpoint(A, 1, b"cp1")
    assert (await store.log_heads())[A].checkpoint == b"cp5"
    with pytest.raises(StoreConflictError):
        await store.save_checkpoint(A, 6, b"cp6")
    await store.save_checkpoint(A, 5, b"cp5-cosigned")  # a newer checkpoint of the same size
    assert await store.checkpoints(A) == [
        (1, b"cp1"),
        (2, b"cp2"),
        (4, b"cp4"),
        (5, b"cp5-cosigned"),
    ]
    assert (await store.log_heads())[A].checkpoint == b"cp5-cosigned"
    assert await store.checkpoints(B) == []
    # A bounded slice of the history, either way, for proofs and auditors.
    assert await store.checkpoint_range(A, 2, 5, 2) == [(2, b"cp2"), (4, b"cp4")]
    assert await store.checkpoint_range(A, 0, 4, 2, newest_first=True) == [
        (4, b"cp4"),
        (2, b"cp2"),
    ]
    assert await store.checkpoint_range(A, 3, 3, 1) == []


async def test_nodes_returns_only_stored_ones(store: Store) -> None:
    log = Log(A)
    await log.append(store, [b"e%d" % i for i in range(7)])
    wanted = [*peak_ids(7), (0, 3), (2, 1), (3, 0), (0, 99)]
    found = await store.nodes(A, wanted)
    assert found == {i: log.all_nodes[i] for i in wanted if i in log.all_nodes}
    assert (2, 1) not in found and (0, 3) in found
    assert await store.nodes(B, wanted) == {}
    assert await store.nodes(A, []) == {}


async def test_find_adds_and_references(store: Store) -> None:
    log_a, log_b = Log(A), Log(B)
    rows_a = [add(0, b"k1"), add(1, b"k2"), add(2, b"k1", "pdq"), reference(3, 1, A, 0)]
    start, _, nodes = log_a.batch([r.raw for r in rows_a])
    await store.append(A, start, rows_a, nodes, None)
    rows_b = [add(0, b"k1"), reference(1, 2, A, 0), reference(2, 2, A, 1), EntryRow(3, b"junk")]
    start, _, nodes = log_b.batch([r.raw for r in rows_b])
    await store.append(B, start, rows_b, nodes, None)

    found = await store.find_adds("sha256", [b"k1", b"k3"])
    assert [(f.log, f.index, f.raw, f.received_ms) for f in found] == [
        (A, 0, b"add-k1", 2000),
        (B, 0, b"add-k1", 2000),
    ]
    assert [(f.log, f.index) for f in await store.find_adds("pdq", [b"k1"])] == [(A, 2)]
    assert await store.find_adds("sha256", []) == []
    refs = await store.find_references([(A, 0), (A, 1), (B, 7)])
    assert [(f.log, f.index) for f in refs] == [(A, 3), (B, 1), (B, 2)]
    assert await store.find_references([(A, 2)]) == []


async def test_iter_values_pages_through_every_add(store: Store) -> None:
    assert isinstance(store, SqliteStore | PostgresStore)
    store.batch_rows = 3
    expected: list[tuple[str, int, bytes]] = []
    for origin, count in ((B, 7), (A, 5)):
        rows = [add(i, b"%s-%d" % (origin.encode(), i)) for i in range(count)]
        rows.append(add(count, b"other", "pdq"))
        log = Log(origin)
        start, _, nodes = log.batch([r.raw for r in rows])
        await store.append(origin, start, rows, nodes, None)
        expected += [(origin, r.idx, r.value_key or b"") for r in rows[:count]]
    got = [value async for value in store.iter_values("sha256")]
    assert got == sorted(expected)
    assert [v async for v in store.iter_values("md5")] == []


async def test_rosters_are_idempotent_and_ordered(store: Store) -> None:
    await store.save_roster(2, b"roster-2")
    await store.save_roster(1, b"roster-1")
    await store.save_roster(2, b"roster-2")
    with pytest.raises(StoreConflictError):
        await store.save_roster(2, b"another roster-2")
    assert await store.rosters() == [b"roster-1", b"roster-2"]


async def test_evidence_is_kept_in_arrival_order(store: Store) -> None:
    first = Evidence(B, b"cp-x", b"cp-y", "two roots at 5", 10)
    second = Evidence(A, b"\x00cp", b"\xffcp", "roll-back", 11)
    await store.save_evidence(first)
    await store.save_evidence(second)
    assert await store.evidence() == [first, second]


async def test_everything_survives_reopening(store_factory: StoreFactory) -> None:
    store = store_factory()
    await store.open()
    log = Log(A)
    await log.append(store, [b"e0", b"e1", b"e2"], checkpoint=b"cp3")
    await store.save_roster(1, b"roster")
    await store.save_evidence(Evidence(B, b"1", b"2", "fork", 5))
    rows = [add(0, b"k")]
    await store.append(B, 0, rows, Log(B).batch([rows[0].raw])[2], None)
    before = await snapshot(store)
    await store.close()
    await store.close()  # closing twice is harmless

    again = store_factory()
    await again.open()
    assert await snapshot(again) == before
    assert await again.rosters() == [b"roster"]
    assert await again.evidence() == [Evidence(B, b"1", b"2", "fork", 5)]
    assert [f.index for f in await again.find_adds("sha256", [b"k"])] == [0]
    await log.append(again, [b"e3"])  # the reopened log goes on where it stopped
    assert (await again.log_heads())[A] == LogHead(A, 4, log.tree.peaks, None)


async def test_concurrent_appends_of_one_position_store_one(store_factory: StoreFactory) -> None:
    first, second = store_factory(), store_factory()
    await first.open()
    await second.open()
    log_1, log_2 = Log(A), Log(A)
    batch_1, batch_2 = log_1.batch([b"one"]), log_2.batch([b"two"])
    results = await asyncio.gather(
        first.append(A, *batch_1, None), second.append(A, *batch_2, None), return_exceptions=True
    )
    assert sum(r is None for r in results) == 1
    assert sum(isinstance(r, StoreConflictError) for r in results) == 1
    assert len(await first.entries(A, 0, 5)) == 1


async def test_a_closed_store_refuses_calls(store_factory: StoreFactory) -> None:
    store = store_factory()
    with pytest.raises(StoreError, match="not open"):
        await store.log_heads()


async def test_locked_sqlite_database_fails_instead_of_hanging(tmp_path: Path) -> None:
    path = tmp_path / "locked.db"
    store = SqliteStore(path, busy_timeout_s=0.2)
    await store.open()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        began = time.monotonic()
        with pytest.raises(StoreError, match="database is locked"):
            await Log(A).append(store, [b"e0"])
        assert time.monotonic() - began < 3
        holder.execute("ROLLBACK")
        await Log(A).append(store, [b"e0"])  # the store still works once the lock is gone
        assert await store.entries(A, 0, 1) == [b"e0"]
    finally:
        holder.close()
        await store.close()


async def test_unopenable_sqlite_path_is_a_store_error(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "missing-dir" / "x.db")
    with pytest.raises(StoreError, match="unable to open"):
        await store.open()
    await store.close()


def test_open_store_picks_the_store_by_location(tmp_path: Path) -> None:
    by_path = open_store(tmp_path / "a.db")
    assert isinstance(by_path, SqliteStore) and by_path.path == tmp_path / "a.db"
    by_url = open_store(f"sqlite://{tmp_path}/b.db")
    assert isinstance(by_url, SqliteStore) and by_url.path == tmp_path / "b.db"
    pg = open_store("postgresql://u@db.example:5432/x?schema=node_a&sslmode=disable")
    assert isinstance(pg, PostgresStore)
    assert (pg.dsn, pg.schema) == ("postgresql://u@db.example:5432/x?sslmode=disable", "node_a")
    with pytest.raises(StoreError):
        open_store("mysql://db/x")
    with pytest.raises(StoreError):
        PostgresStore("postgresql://db/x", schema="bad; drop")


async def test_arrivals_give_each_entry_with_when_it_was_stored(store: Store) -> None:
    log = Log(A)
    raws = [bytes([i]) * 8 for i in range(3)]
    rows = [EntryRow(i, raw, received_ms=1000 + i) for i, raw in enumerate(raws)]
    start, rows, nodes = log.batch(raws, rows)
    await store.append(A, start, rows, nodes, None)
    assert await store.arrivals(A, 1, 5) == [(raws[1], 1001), (raws[2], 1002)]


async def test_merkle_nodes_are_looked_up_by_key_not_by_scanning_the_log(tmp_path: Path) -> None:
    # Regression: with origin outside the OR-ed terms SQLite scanned every node of the log for
    # each page served (0.5 s at 1M entries); each node must be one primary-key lookup.
    store = SqliteStore(tmp_path / "plan.db")
    await store.open()
    await store.close()
    conn = sqlite3.connect(tmp_path / "plan.db")
    try:
        # About the number of nodes one page's proof needs; from 3 terms on the old form scanned.
        query = "EXPLAIN QUERY PLAN " + nodes_query(20)
        plan = conn.execute(query, ["o", 0, 1] * 20).fetchall()
    finally:
        conn.close()
    details = " ".join(str(row[-1]) for row in plan)
    assert "MULTI-INDEX OR" in details, details
    assert "PRIMARY KEY (origin=?)" not in details


async def test_leaf_hashes_are_not_stored_but_answered_from_the_entries(tmp_path: Path) -> None:
    # Level-0 nodes are SHA-256(0x00 || entry): a third of all rows, kept once in `entries`.
    # A database written before keeps them in `nodes` too; those rows are never read.
    path = tmp_path / "leaves.db"
    store = SqliteStore(path)
    await store.open()
    log = Log(A)
    raws = [b"e%d" % i for i in range(6)]
    try:
        await log.append(store, raws)
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    try:
        levels = conn.execute("SELECT DISTINCT level FROM nodes ORDER BY level").fetchall()
        assert levels == [(1,), (2,)]
        conn.execute("INSERT INTO nodes VALUES (?, 0, 2, ?)", (A, bytes(32)))  # a stale copy
        conn.commit()
    finally:
        conn.close()
    store = SqliteStore(path)
    await store.open()
    try:
        found = await store.nodes(A, [(0, 2), (0, 5), (1, 2), (0, 6)])
    finally:
        await store.close()
    assert found == {
        (0, 2): leaf_hash(raws[2]),
        (0, 5): leaf_hash(raws[5]),
        (1, 2): log.all_nodes[(1, 2)],
    }


async def test_confirmations_are_found_by_their_target_like_disputes(store: Store) -> None:
    log_b = Log(B)
    rows = [reference(0, 3, A, 5), reference(1, 2, A, 5), add(2, b"k9")]
    start, _, nodes = log_b.batch([r.raw for r in rows])
    await store.append(B, start, rows, nodes, None)
    refs = await store.find_references([(A, 5)])
    assert [(f.log, f.index) for f in refs] == [(B, 0), (B, 1)]


PG_PROBE = """
import json, sys
import node.app.runner, node.store.sqlite.writer_child
from node.store import open_store
open_store("hashmesh.db")
print(json.dumps(sorted(sys.modules)))
"""


def test_a_node_on_sqlite_and_its_writer_process_never_import_the_postgresql_driver() -> None:
    """asyncpg (about 3 MiB resident a process) is imported when PostgresStore is named."""
    done = subprocess.run(
        [sys.executable, "-c", PG_PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(done.stdout))
    assert [m for m in loaded if m.split(".")[0] == "asyncpg" or m == "node.store.postgres"] == []
