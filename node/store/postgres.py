"""A Store in PostgreSQL (asyncpg), for members who run their node on a database server.

Everything lives in one schema per store (default "hashmesh"), so tests and several nodes can
share a server. The statements of its write transactions are node/store/postgres_writes.py
(a write to a log locks its row first, so appends from several processes are serialised).
Every driver or connection error leaves as StoreError.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from node.errors import StoreConflictError, StoreError
from node.store.base import EntryRow, Evidence, FoundEntry, LogHead, Submission
from node.store.postgres_writes import append_rows, keep_submission, lock_log, upsert_checkpoint
from node.store.schema import (
    BATCH_ROWS,
    POSTGRES_TABLES,
    check_checkpoint,
    leaf_mapping,
    node_mapping,
    sorted_found,
    split_leaves,
    unpack_peaks,
)
from protocol.merkle import NodeId

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_FOUND = "SELECT e.origin, e.idx, e.raw, e.received_ms FROM entries e"

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]


@contextmanager
def _translated(what: str) -> Iterator[None]:
    try:
        yield
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError) as e:
        raise StoreError(f"PostgreSQL store, {what}: {e}") from e


_CHECKPOINTS_WHERE = (
    "SELECT size, raw FROM checkpoints WHERE origin = $1 AND size BETWEEN $2 AND $3 "
)
_CHECKPOINTS_UP = _CHECKPOINTS_WHERE + "ORDER BY size LIMIT $4"
_CHECKPOINTS_DOWN = _CHECKPOINTS_WHERE + "ORDER BY size DESC LIMIT $4"


def _head(row: asyncpg.Record) -> LogHead:
    """A LogHead from a row of (origin, size, peaks, checkpoint)."""
    checkpoint = None if row["checkpoint"] is None else bytes(row["checkpoint"])
    return LogHead(row["origin"], int(row["size"]), unpack_peaks(bytes(row["peaks"])), checkpoint)


class PostgresStore:
    """A Store in the schema `schema` of the PostgreSQL database at `dsn` (created if missing)."""

    ordered_appends = False  # each append takes a pooled connection: no order between them

    def __init__(
        self,
        dsn: str,
        schema: str = "hashmesh",
        batch_rows: int = BATCH_ROWS,
        pool_size: int = 4,
        timeout_s: float = 30.0,
    ) -> None:
        if not _SCHEMA_NAME.fullmatch(schema):
            raise StoreError(f"{schema!r} is not a plain lower-case PostgreSQL schema name")
        self.dsn = dsn
        self.schema = schema
        self.batch_rows = batch_rows
        self.pool_size = pool_size
        self.timeout_s = timeout_s
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None

    @property
    def pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise StoreError(f"the PostgreSQL store (schema {self.schema}) is not open")
        return self._pool

    async def open(self) -> None:
        if self._pool is not None:
            return
        with _translated("connecting"):
            pool = await asyncpg.create_pool(
                self.dsn,
                min_size=1,
                max_size=self.pool_size,
                timeout=self.timeout_s,
                command_timeout=self.timeout_s,
                server_settings={"search_path": self.schema},
            )
        try:
            with _translated("creating the schema"):
                async with pool.acquire() as conn, conn.transaction():
                    # Two stores opening at once would race on CREATE ... IF NOT EXISTS.
                    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", self.schema)
                    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
                    for statement in POSTGRES_TABLES:
                        await conn.execute(statement.format(schema=self.schema))
        except BaseException:
            await pool.close()
            raise
        self._pool = pool

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            with _translated("closing"):
                await pool.close()

    # Rosters.

    async def save_roster(self, version: int, raw: bytes) -> None:
        with _translated("saving a roster"):
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(
                    "INSERT INTO rosters (version, raw) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    version,
                    bytes(raw),
                )
                stored = await conn.fetchval("SELECT raw FROM rosters WHERE version = $1", version)
        if bytes(stored) != bytes(raw):
            raise StoreConflictError(f"a different roster of version {version} is stored")

    async def rosters(self) -> list[bytes]:
        with _translated("reading rosters"):
            rows = await self.pool.fetch("SELECT raw FROM rosters ORDER BY version")
        return [bytes(row["raw"]) for row in rows]

    # Logs.

    async def log_heads(self) -> dict[str, LogHead]:
        with _translated("reading log heads"):
            rows = await self.pool.fetch("SELECT origin, size, peaks, checkpoint FROM logs")
        return {row["origin"]: _head(row) for row in rows}

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
        with _translated(f"appending to {origin}"):
            async with self.pool.acquire() as conn, conn.transaction():
                await append_rows(conn, origin, start, entries, nodes, checkpoint, checkpoint_size)
                if submission is not None:
                    await keep_submission(conn, submission)

    async def settled_head(self, origin: str) -> LogHead | None:
        # Locking the log's row waits for a transaction still holding it: one whose COMMIT
        # was sent on a connection since lost ends (committed or not) before this reads.
        with _translated(f"settling {origin}"):
            async with self.pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(
                    "SELECT origin, size, peaks, checkpoint FROM logs WHERE origin = $1 FOR UPDATE",
                    origin,
                )
        return None if row is None else _head(row)

    async def submission(self, key: str) -> Submission | None:
        with _translated("reading an idempotency key"):
            row = await self.pool.fetchrow(
                "SELECT key, digest, start, count, created_ms FROM submissions WHERE key = $1",
                key,
            )
        return None if row is None else Submission(*row)  # str, bytes and three ints

    async def save_checkpoint(self, origin: str, size: int, raw: bytes) -> None:
        with _translated(f"saving a checkpoint of {origin}"):
            async with self.pool.acquire() as conn, conn.transaction():
                stored, _, _ = await lock_log(conn, origin)
                check_checkpoint(origin, stored, size)
                await upsert_checkpoint(conn, origin, size, bytes(raw))
                if size == stored:
                    await conn.execute(
                        "UPDATE logs SET checkpoint = $2 WHERE origin = $1", origin, bytes(raw)
                    )

    async def checkpoints(self, origin: str) -> list[tuple[int, bytes]]:
        with _translated(f"reading checkpoints of {origin}"):
            rows = await self.pool.fetch(
                "SELECT size, raw FROM checkpoints WHERE origin = $1 ORDER BY size", origin
            )
        return [(int(row["size"]), bytes(row["raw"])) for row in rows]

    async def checkpoint_range(
        self, origin: str, low: int, high: int, limit: int, newest_first: bool = False
    ) -> list[tuple[int, bytes]]:
        query = _CHECKPOINTS_DOWN if newest_first else _CHECKPOINTS_UP
        with _translated(f"reading checkpoints of {origin}"):
            rows = await self.pool.fetch(query, origin, low, high, limit)
        return [(int(row["size"]), bytes(row["raw"])) for row in rows]

    async def entries(self, origin: str, start: int, end: int) -> list[bytes]:
        with _translated(f"reading entries of {origin}"):
            rows = await self.pool.fetch(
                "SELECT raw FROM entries WHERE origin = $1 AND idx >= $2 AND idx < $3 ORDER BY idx",
                origin,
                start,
                end,
            )
        return [bytes(row["raw"]) for row in rows]

    async def arrivals(self, origin: str, start: int, end: int) -> list[tuple[bytes, int]]:
        with _translated(f"reading entries of {origin}"):
            rows = await self.pool.fetch(
                "SELECT raw, received_ms FROM entries WHERE origin = $1 AND idx >= $2 "
                "AND idx < $3 ORDER BY idx",
                origin,
                start,
                end,
            )
        return [(bytes(row["raw"]), int(row["received_ms"])) for row in rows]

    async def nodes(self, origin: str, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        leaves, wanted = split_leaves(sorted(set(ids)))
        found: dict[NodeId, bytes] = {}
        with _translated(f"reading Merkle nodes of {origin}"):
            if leaves:
                rows = await self.pool.fetch(
                    "SELECT idx, raw FROM entries WHERE origin = $1 AND idx = ANY($2::bigint[])",
                    origin,
                    leaves,
                )
                found.update(leaf_mapping([(row["idx"], row["raw"]) for row in rows]))
            if wanted:
                rows = await self.pool.fetch(
                    "SELECT n.level, n.k, n.hash FROM nodes n"
                    " JOIN unnest($2::integer[], $3::bigint[]) AS w (level, k) USING (level, k)"
                    " WHERE n.origin = $1",
                    origin,
                    [level for level, _ in wanted],
                    [k for _, k in wanted],
                )
                found.update(node_mapping([(row["level"], row["k"], row["hash"]) for row in rows]))
        return found

    # Finding entries.

    async def find_adds(self, signal_type: str, value_keys: Sequence[bytes]) -> list[FoundEntry]:
        keys = sorted({bytes(v) for v in value_keys})
        if not keys:
            return []
        with _translated("finding adds"):
            rows = await self.pool.fetch(
                f"{_FOUND} WHERE e.kind = 0 AND e.signal_type = $1"
                " AND e.value_key = ANY($2::bytea[])",
                signal_type,
                keys,
            )
        return sorted_found([tuple(row) for row in rows])

    async def find_references(self, targets: Sequence[tuple[str, int]]) -> list[FoundEntry]:
        wanted = sorted(set(targets))
        if not wanted:
            return []
        with _translated("finding references"):
            rows = await self.pool.fetch(
                f"{_FOUND} JOIN unnest($1::text[], $2::bigint[]) AS t (target_log, target_index)"
                " USING (target_log, target_index) WHERE e.kind IN (1, 2, 3)",
                [log for log, _ in wanted],
                [index for _, index in wanted],
            )
        return sorted_found([tuple(row) for row in rows])

    async def iter_values(self, signal_type: str) -> AsyncIterator[tuple[str, int, bytes]]:
        after: tuple[str, int] = ("", -1)
        while True:
            # Keyset pagination: each page resumes after the last (origin, idx) seen.
            with _translated(f"listing {signal_type} values"):
                rows = await self.pool.fetch(
                    "SELECT origin, idx, value_key FROM entries"
                    " WHERE kind = 0 AND signal_type = $1 AND (origin, idx) > ($2, $3)"
                    " ORDER BY origin, idx LIMIT $4",
                    signal_type,
                    *after,
                    self.batch_rows,
                )
            for row in rows:
                yield str(row["origin"]), int(row["idx"]), bytes(row["value_key"])
            if len(rows) < self.batch_rows:
                return
            after = str(rows[-1]["origin"]), int(rows[-1]["idx"])

    # Evidence.

    async def save_evidence(self, evidence: Evidence) -> None:
        with _translated("saving evidence"):
            await self.pool.execute(
                "INSERT INTO evidence (origin, first, second, detail, seen_ms, encoded)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                evidence.origin,
                bytes(evidence.first),
                bytes(evidence.second),
                evidence.detail,
                evidence.seen_ms,
                bytes(evidence.encoded),
            )

    async def evidence(self) -> list[Evidence]:
        with _translated("reading evidence"):
            rows = await self.pool.fetch(
                "SELECT origin, first, second, detail, seen_ms, encoded FROM evidence ORDER BY id"
            )
        return [
            Evidence(
                r["origin"],
                bytes(r["first"]),
                bytes(r["second"]),
                r["detail"],
                r["seen_ms"],
                bytes(r["encoded"]),
            )
            for r in rows
        ]
