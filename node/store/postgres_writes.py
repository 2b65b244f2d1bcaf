"""The statements of PostgreSQL's write transactions (node/store/postgres.py opens them): lock
a log's row, append rows and Merkle nodes, save a checkpoint, keep an idempotency key.

A write to a log locks its row (SELECT ... FOR UPDATE) before checking the size, so
concurrent appends from several processes are serialised and never duplicate or skip an
entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

import asyncpg

from node.errors import StoreError
from node.store.base import EntryRow, Submission
from node.store.schema import (
    MAX_SUBMISSIONS,
    SUBMISSION_RETENTION_MS,
    check_rows,
    inner_nodes,
    new_peaks,
    pack_peaks,
    unpack_peaks,
)
from protocol.merkle import NodeId

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    Connection: TypeAlias = PoolConnectionProxy[asyncpg.Record]


async def lock_log(conn: Connection, origin: str) -> tuple[int, bytes, bytes | None]:
    """Lock the log's row (creating an empty log if new); its (size, peaks, head checkpoint)."""
    await conn.execute(
        "INSERT INTO logs (origin, size, peaks) VALUES ($1, 0, '') ON CONFLICT DO NOTHING", origin
    )
    row = await conn.fetchrow(
        "SELECT size, peaks, checkpoint FROM logs WHERE origin = $1 FOR UPDATE", origin
    )
    if row is None:
        raise StoreError(f"the row of log {origin} vanished while locking it")
    return int(row["size"]), bytes(row["peaks"]), row["checkpoint"]


async def upsert_checkpoint(conn: Connection, origin: str, size: int, raw: bytes) -> None:
    # The newest checkpoint of a size replaces the older one: it may carry more cosignatures.
    await conn.execute(
        "INSERT INTO checkpoints (origin, size, raw) VALUES ($1, $2, $3)"
        " ON CONFLICT (origin, size) DO UPDATE SET raw = excluded.raw",
        origin,
        size,
        raw,
    )


async def keep_submission(conn: Connection, submission: Submission) -> None:
    """Keep an idempotency key; drop those past their retention, then all but the newest."""
    await conn.execute(
        "DELETE FROM submissions WHERE created_ms < $1",
        submission.created_ms - SUBMISSION_RETENTION_MS,
    )
    kept = await conn.fetchval(
        "INSERT INTO submissions (key, digest, start, count, created_ms)"
        " VALUES ($1, $2, $3, $4, $5) RETURNING seq",
        submission.key,
        bytes(submission.digest),
        submission.start,
        submission.count,
        submission.created_ms,
    )
    await conn.execute("DELETE FROM submissions WHERE seq <= $1", kept - MAX_SUBMISSIONS)


async def append_rows(
    conn: Connection,
    origin: str,
    start: int,
    entries: Sequence[EntryRow],
    nodes: Sequence[tuple[NodeId, bytes]],
    checkpoint: bytes | None,
    checkpoint_size: int | None,
) -> None:
    """Append verified rows and Merkle nodes to a log in the caller's transaction, its row
    locked first; checks that they continue the log (StoreConflictError if not)."""
    size, packed, head = await lock_log(conn, origin)
    indexes = [e.idx for e in entries]
    end = check_rows(origin, size, start, indexes, checkpoint, checkpoint_size)
    peaks = new_peaks(origin, start, unpack_peaks(packed), end, nodes)
    if entries:
        # One statement per batch: the columns travel as arrays, unnest makes the rows.
        await conn.execute(
            "INSERT INTO entries (origin, idx, raw, kind, signal_type, value_key,"
            " target_log, target_index, timestamp_ms, received_ms)"
            " SELECT $1, * FROM unnest($2::bigint[], $3::bytea[], $4::smallint[],"
            " $5::text[], $6::bytea[], $7::text[], $8::bigint[], $9::bigint[], $10::bigint[])",
            origin,
            indexes,
            [bytes(e.raw) for e in entries],
            [e.kind for e in entries],
            [e.signal_type for e in entries],
            [None if e.value_key is None else bytes(e.value_key) for e in entries],
            [e.target_log for e in entries],
            [e.target_index for e in entries],
            [e.timestamp_ms for e in entries],
            [e.received_ms for e in entries],
        )
    kept = inner_nodes(nodes)
    if kept:
        await conn.execute(
            "INSERT INTO nodes (origin, level, k, hash)"
            " SELECT $1, * FROM unnest($2::integer[], $3::bigint[], $4::bytea[])",
            origin,
            [level for (level, _), _ in kept],
            [k for (_, k), _ in kept],
            [bytes(value) for _, value in kept],
        )
    if checkpoint is not None and checkpoint_size is not None:
        await upsert_checkpoint(conn, origin, checkpoint_size, bytes(checkpoint))
        if checkpoint_size == end:
            head = bytes(checkpoint)
    if end not in (size, checkpoint_size):
        head = None  # the old head no longer covers the whole log
    await conn.execute(
        "UPDATE logs SET size = $2, peaks = $3, checkpoint = $4 WHERE origin = $1",
        origin,
        end,
        pack_peaks(peaks),
        head,
    )
