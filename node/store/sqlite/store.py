"""The default store: one SQLite file in WAL mode with synchronous=FULL, so a batch
acknowledged by `append` survives a power cut. Reads run on a worker thread of the node
(SqliteWorker); writes run in the store's writer process (node/store/sqlite/writer.py), which keeps
the GIL-bound work of binding a batch's rows off the node's event loop. Every sqlite3 error
leaves as StoreError.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from node.errors import StoreOutcomeUnknownError
from node.store.base import EntryRow, Evidence, FoundEntry, LogHead, Submission
from node.store.schema import (
    BATCH_ROWS,
    MAX_PAIRS,
    chunks,
    leaf_mapping,
    node_mapping,
    nodes_for_append,
    sorted_found,
    split_leaves,
    unpack_peaks,
)
from node.store.sqlite import writes as sqlite_writes
from node.store.sqlite.worker import SqliteWorker
from node.store.sqlite.writer import WriterProcess
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


_CHECKPOINTS_WHERE = "SELECT size, raw FROM checkpoints WHERE origin = ? AND size BETWEEN ? AND ? "
_CHECKPOINTS_UP = _CHECKPOINTS_WHERE + "ORDER BY size LIMIT ?"
_CHECKPOINTS_DOWN = _CHECKPOINTS_WHERE + "ORDER BY size DESC LIMIT ?"


class SqliteStore:
    """A Store in one SQLite file at `path` (created if missing).

    `busy_timeout_s` bounds how long a write waits for another process holding the database
    before failing with StoreError('database is locked'); `batch_rows` sizes iter_values pages.
    """

    ordered_appends = True  # one writer process answers requests in the order sent

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
        self._writer = WriterProcess(self.path, "the SQLite store", busy_timeout_s)
        self._call = self._db.call

    # Lifecycle.

    async def open(self) -> None:
        await self._db.open(sqlite_writes.prepare)
        try:
            await self._writer.open()
        except BaseException:
            await self._db.close()
            raise

    async def close(self) -> None:
        try:
            await self._writer.close()
        finally:
            await self._db.close()

    @property
    def writer_pid(self) -> int | None:
        """The writer process's pid while it runs."""
        return self._writer.pid

    # Rosters.

    async def save_roster(self, version: int, raw: bytes) -> None:
        await self._writer.write("save_roster", version, bytes(raw))

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
        submission: Submission | None = None,
    ) -> None:
        rows = list(map(tuple, entries))  # the writer's messages hold plain tuples only
        raw = None if checkpoint is None else bytes(checkpoint)
        keyed = None
        if submission is not None:
            s = submission
            keyed = (s.key, bytes(s.digest), s.start, s.count, s.created_ms)
        try:
            # Leaves are not kept: only the one new_peaks may need is sent.
            needed = nodes_for_append(nodes, start + len(rows))
            await self._writer.write(
                "append", origin, start, rows, needed, raw, checkpoint_size, keyed
            )
        except StoreOutcomeUnknownError:
            # The writer died answering. The log has one writer (its lock's holder), and the
            # batch continued it or was refused, so the stored size tells whether this batch is
            # in: at least its end (a batch sent behind it may have landed too), or not.
            size = await self._call(sqlite_writes.log_size, origin)
            if size < start + len(rows) or not rows:
                raise

    async def settled_head(self, origin: str) -> LogHead | None:
        # Read by the writer process: it answers requests in the order sent, so after every
        # write sent before this one, even one whose caller stopped waiting for it.
        head = await self._writer.write("log_head", origin)
        if not isinstance(head, tuple):
            return None
        size, peaks, checkpoint = head  # log_head's (size, peaks, checkpoint or None)
        return LogHead(origin, int(size), unpack_peaks(bytes(peaks)), checkpoint)

    async def submission(self, key: str) -> Submission | None:
        row = await self._call(
            lambda c: c.execute(
                "SELECT key, digest, start, count, created_ms FROM submissions WHERE key = ?",
                (key,),
            ).fetchone()
        )
        if row is None:
            return None
        key, digest, start, count, created_ms = row
        return Submission(str(key), bytes(digest), int(start), int(count), int(created_ms))

    async def save_checkpoint(self, origin: str, size: int, raw: bytes) -> None:
        await self._writer.write("save_head", origin, size, bytes(raw))

    async def checkpoints(self, origin: str) -> list[tuple[int, bytes]]:
        rows = await self._call(
            lambda c: c.execute(
                "SELECT size, raw FROM checkpoints WHERE origin = ? ORDER BY size", (origin,)
            ).fetchall()
        )
        return [(int(size), bytes(raw)) for size, raw in rows]

    async def checkpoint_range(
        self, origin: str, low: int, high: int, limit: int, newest_first: bool = False
    ) -> list[tuple[int, bytes]]:
        query = _CHECKPOINTS_DOWN if newest_first else _CHECKPOINTS_UP
        rows = await self._call(lambda c: c.execute(query, (origin, low, high, limit)).fetchall())
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
            sql = f"{_FOUND} WHERE kind IN (1, 2, 3) AND "
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
        await self._writer.write(
            "save_evidence",
            evidence.origin,
            bytes(evidence.first),
            bytes(evidence.second),
            evidence.detail,
            evidence.seen_ms,
            bytes(evidence.encoded),
        )

    async def evidence(self) -> list[Evidence]:
        rows = await self._call(
            lambda c: c.execute(
                "SELECT origin, first, second, detail, seen_ms, encoded FROM evidence ORDER BY id"
            ).fetchall()
        )
        return [Evidence(o, bytes(a), bytes(b), d, int(ms), bytes(e)) for o, a, b, d, ms, e in rows]
