"""The default store: one SQLite file, driven from one dedicated worker thread (SqliteWorker:
WAL, synchronous=FULL, so a batch acknowledged by `append` survives a power cut). Every
sqlite3 error leaves as StoreError.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from node.errors import StoreConflictError, StoreError
from node.sqlite_worker import SqliteWorker, insert_rows
from node.store.base import EntryRow, Evidence, FoundEntry, LogHead
from node.store.schema import (
    BATCH_ROWS,
    MAX_PAIRS,
    SCHEMA_VERSION,
    SQLITE_TABLES,
    check_batch,
    check_checkpoint,
    chunks,
    inner_nodes,
    leaf_mapping,
    new_peaks,
    node_mapping,
    pack_peaks,
    sorted_found,
    split_leaves,
    unpack_peaks,
)
from protocol.merkle import NodeId

_FOUND = "SELECT origin, idx, raw, received_ms FROM entries"


def nodes_query(count: int) -> str:
    """The lookup of `count` Merkle nodes of one log.

    origin sits inside every term: with `origin = ? AND (...)` SQLite planned a scan of all the
    log's nodes and filtered them (0.5 s a page at 1M entries), not one key lookup per node.
    """
    terms = " OR ".join(["(origin = ? AND level = ? AND k = ?)"] * count)
    return "SELECT level, k, hash FROM nodes WHERE " + terms  # noqa: S608  # placeholders only


def _pairs(first: str, second: str, count: int) -> str:
    """`count` alternatives (first = ? AND second = ?), OR-ed.

    Only placeholders and our own column names enter the SQL text. An OR of equalities lets
    SQLite look each pair up in an index, which a row-value IN (VALUES ...) does not.
    """
    return "(" + " OR ".join([f"({first} = ? AND {second} = ?)"] * count) + ")"


def _log_row(conn: sqlite3.Connection, origin: str) -> tuple[int, bytes, bytes | None]:
    """The log's (size, peaks, head checkpoint), creating an empty log if it is new."""
    row = conn.execute(
        "SELECT size, peaks, checkpoint FROM logs WHERE origin = ?", (origin,)
    ).fetchone()
    if row is None:
        conn.execute("INSERT INTO logs (origin, size, peaks) VALUES (?, 0, x'')", (origin,))
        return 0, b"", None
    size, peaks, head = row
    return int(size), bytes(peaks), head


def _save_checkpoint(conn: sqlite3.Connection, origin: str, size: int, raw: bytes) -> None:
    # The newest checkpoint of a size replaces the older one: it may carry more cosignatures.
    conn.execute(
        "INSERT INTO checkpoints (origin, size, raw) VALUES (?, ?, ?)"
        " ON CONFLICT (origin, size) DO UPDATE SET raw = excluded.raw",
        (origin, size, bytes(raw)),
    )


class SqliteStore:
    """A Store in one SQLite file at `path` (created if missing).

    `busy_timeout_s` bounds how long a write waits for another process holding the database
    before failing with StoreError('database is locked'); `batch_rows` sizes iter_values pages.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        busy_timeout_s: float = 5.0,
        batch_rows: int = BATCH_ROWS,
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self.batch_rows = batch_rows
        self._db = SqliteWorker(self.path, "the SQLite store", busy_timeout_s)
        self._call = self._db.call
        self._write = self._db.write

    # Lifecycle.

    async def open(self) -> None:
        await self._db.open(self._prepare)

    @staticmethod
    def _prepare(conn: sqlite3.Connection) -> None:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(f"the database has schema {version}; this node knows 1")
            for statement in SQLITE_TABLES:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.rollback()
            raise

    async def close(self) -> None:
        await self._db.close()

    # Rosters.

    async def save_roster(self, version: int, raw: bytes) -> None:
        await self._write(self._save_roster, version, bytes(raw))

    @staticmethod
    def _save_roster(conn: sqlite3.Connection, version: int, raw: bytes) -> None:
        row = conn.execute("SELECT raw FROM rosters WHERE version = ?", (version,)).fetchone()
        if row is None:
            conn.execute("INSERT INTO rosters (version, raw) VALUES (?, ?)", (version, raw))
        elif bytes(row[0]) != raw:
            raise StoreConflictError(f"a different roster of version {version} is stored")

    async def rosters(self) -> list[bytes]:
        rows = await self._call(
            lambda c: c.execute("SELECT raw FROM rosters ORDER BY version").fetchall()
        )
        return [bytes(raw) for (raw,) in rows]

    # Logs.

    async def log_heads(self) -> dict[str, LogHead]:
        rows = await self._call(
            lambda c: c.execute("SELECT origin, size, peaks, checkpoint FROM logs").fetchall()
        )
        return {
            origin: LogHead(
                origin, int(size), unpack_peaks(bytes(peaks)), bytes(cp) if cp else None
            )
            for origin, size, peaks, cp in rows
        }

    async def append(
        self,
        origin: str,
        start: int,
        entries: Sequence[EntryRow],
        nodes: Sequence[tuple[NodeId, bytes]],
        checkpoint: bytes | None,
        checkpoint_size: int | None = None,
    ) -> None:
        await self._write(
            self._append, origin, start, list(entries), list(nodes), checkpoint, checkpoint_size
        )

    @staticmethod
    def _append(
        conn: sqlite3.Connection,
        origin: str,
        start: int,
        entries: list[EntryRow],
        nodes: list[tuple[NodeId, bytes]],
        checkpoint: bytes | None,
        checkpoint_size: int | None,
    ) -> None:
        size, packed, head = _log_row(conn, origin)
        end = check_batch(origin, size, start, entries, checkpoint, checkpoint_size)
        peaks = new_peaks(origin, start, unpack_peaks(packed), end, nodes)
        insert_rows(
            conn,
            "INSERT INTO entries (origin, idx, raw, kind, signal_type, value_key, target_log,"
            " target_index, timestamp_ms, received_ms)",
            [
                (
                    origin,
                    e.index,
                    bytes(e.raw),
                    e.kind,
                    e.signal_type,
                    None if e.value_key is None else bytes(e.value_key),
                    e.target_log,
                    e.target_index,
                    e.timestamp_ms,
                    e.received_ms,
                )
                for e in entries
            ],
        )
        insert_rows(
            conn,
            "INSERT INTO nodes (origin, level, k, hash)",
            [(origin, level, k, bytes(value)) for (level, k), value in inner_nodes(nodes)],
        )
        if checkpoint is not None and checkpoint_size is not None:
            _save_checkpoint(conn, origin, checkpoint_size, checkpoint)
            if checkpoint_size == end:
                head = checkpoint
        if end not in (size, checkpoint_size):
            head = None  # the old head no longer covers the whole log
        conn.execute(
            "UPDATE logs SET size = ?, peaks = ?, checkpoint = ? WHERE origin = ?",
            (end, pack_peaks(peaks), head, origin),
        )

    async def save_checkpoint(self, origin: str, size: int, raw: bytes) -> None:
        await self._write(self._save_head, origin, size, bytes(raw))

    @staticmethod
    def _save_head(conn: sqlite3.Connection, origin: str, size: int, raw: bytes) -> None:
        stored, _, _ = _log_row(conn, origin)
        check_checkpoint(origin, stored, size)
        _save_checkpoint(conn, origin, size, raw)
        if size == stored:
            conn.execute("UPDATE logs SET checkpoint = ? WHERE origin = ?", (raw, origin))

    async def checkpoints(self, origin: str) -> list[tuple[int, bytes]]:
        rows = await self._call(
            lambda c: c.execute(
                "SELECT size, raw FROM checkpoints WHERE origin = ? ORDER BY size", (origin,)
            ).fetchall()
        )
        return [(int(size), bytes(raw)) for size, raw in rows]

    async def entries(self, origin: str, start: int, end: int) -> list[bytes]:
        rows = await self._call(
            lambda c: c.execute(
                "SELECT raw FROM entries WHERE origin = ? AND idx >= ? AND idx < ? ORDER BY idx",
                (origin, start, end),
            ).fetchall()
        )
        return [bytes(raw) for (raw,) in rows]

    async def arrivals(self, origin: str, start: int, end: int) -> list[tuple[bytes, int]]:
        rows = await self._call(
            lambda c: c.execute(
                "SELECT raw, received_ms FROM entries WHERE origin = ? AND idx >= ? AND idx < ? "
                "ORDER BY idx",
                (origin, start, end),
            ).fetchall()
        )
        return [(bytes(raw), int(ms)) for raw, ms in rows]

    async def nodes(self, origin: str, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        return dict(await self._call(self._nodes, origin, sorted(set(ids))))

    @staticmethod
    def _nodes(conn: sqlite3.Connection, origin: str, ids: list[NodeId]) -> dict[NodeId, bytes]:
        leaves, inner = split_leaves(ids)
        found: dict[NodeId, bytes] = {}
        for indexes in chunks(leaves):
            rows = conn.execute(
                "SELECT idx, raw FROM entries WHERE origin = ? AND idx IN"  # noqa: S608
                f" ({', '.join(['?'] * len(indexes))})",  # placeholders only
                [origin, *indexes],
            ).fetchall()
            found.update(leaf_mapping(rows))
        for part in chunks(inner, MAX_PAIRS):
            rows = conn.execute(
                nodes_query(len(part)), [x for node_id in part for x in (origin, *node_id)]
            ).fetchall()
            found.update(node_mapping(rows))
        return found

    # Finding entries.

    async def find_adds(self, signal_type: str, value_keys: Sequence[bytes]) -> list[FoundEntry]:
        return await self._call(
            self._find_adds, signal_type, sorted({bytes(v) for v in value_keys})
        )

    @staticmethod
    def _find_adds(
        conn: sqlite3.Connection, signal_type: str, keys: list[bytes]
    ) -> list[FoundEntry]:
        rows: list[tuple[str, int, bytes, int]] = []
        for part in chunks(keys):
            sql = f"{_FOUND} WHERE kind = 0 AND signal_type = ? AND value_key IN "
            marks = "(" + ", ".join("?" * len(part)) + ")"
            rows += conn.execute(sql + marks, [signal_type, *part]).fetchall()
        return sorted_found(rows)

    async def find_references(self, targets: Sequence[tuple[str, int]]) -> list[FoundEntry]:
        return await self._call(self._find_references, sorted(set(targets)))

    @staticmethod
    def _find_references(
        conn: sqlite3.Connection, targets: list[tuple[str, int]]
    ) -> list[FoundEntry]:
        rows: list[tuple[str, int, bytes, int]] = []
        for part in chunks(targets, MAX_PAIRS):
            sql = f"{_FOUND} WHERE kind IN (1, 2) AND "
            rows += conn.execute(
                sql + _pairs("target_log", "target_index", len(part)),
                [x for target in part for x in target],
            ).fetchall()
        return sorted_found(rows)

    async def iter_values(self, signal_type: str) -> AsyncIterator[tuple[str, int, bytes]]:
        after: tuple[str, int] = ("", -1)
        while True:
            page = await self._call(self._values_page, signal_type, after, self.batch_rows)
            for origin, index, key in page:
                yield origin, index, key
            if len(page) < self.batch_rows:
                return
            after = page[-1][0], page[-1][1]

    @staticmethod
    def _values_page(
        conn: sqlite3.Connection, signal_type: str, after: tuple[str, int], limit: int
    ) -> list[tuple[str, int, bytes]]:
        # Keyset pagination: each page resumes after the last (origin, idx) seen.
        rows = conn.execute(
            "SELECT origin, idx, value_key FROM entries WHERE kind = 0 AND signal_type = ?"
            " AND (origin, idx) > (?, ?) ORDER BY origin, idx LIMIT ?",
            (signal_type, *after, limit),
        ).fetchall()
        return [(str(o), int(i), bytes(v)) for o, i, v in rows]

    # Evidence.

    async def save_evidence(self, evidence: Evidence) -> None:
        await self._write(
            lambda c: c.execute(
                "INSERT INTO evidence (origin, first, second, detail, seen_ms)"
                " VALUES (?, ?, ?, ?, ?)",
                (
                    evidence.origin,
                    bytes(evidence.first),
                    bytes(evidence.second),
                    evidence.detail,
                    evidence.seen_ms,
                ),
            )
        )

    async def evidence(self) -> list[Evidence]:
        rows = await self._call(
            lambda c: c.execute(
                "SELECT origin, first, second, detail, seen_ms FROM evidence ORDER BY id"
            ).fetchall()
        )
        return [Evidence(o, bytes(a), bytes(b), d, int(ms)) for o, a, b, d, ms in rows]
