"""The SQLite store's writes, as plain functions of a sqlite3 connection.

They run in the store's writer process (node/store/sqlite/writer.py), each inside one IMMEDIATE
transaction (`run_write`), and take only plain values (str, int, bytes, tuples), which is all
that crosses the process boundary. The catch-up benchmark runs `append` in-process as its
baseline: the same statements on the same schema, without the node around them.

An entry row is a plain tuple in EntryRow's field order: (index, raw, kind, signal_type,
value_key, target_log, target_index, timestamp_ms, received_ms).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Sequence

from node.errors import StoreConflictError, StoreError
from node.store.schema import (
    MAX_SUBMISSIONS,
    SCHEMA_VERSION,
    SQLITE_ADDED_COLUMNS,
    SQLITE_TABLES,
    SUBMISSION_RETENTION_MS,
    check_checkpoint,
    check_rows,
    inner_nodes,
    new_peaks,
    pack_peaks,
    unpack_peaks,
)
from node.store.sqlite.statements import configure, immediate, insert_rows
from protocol.merkle import NodeId

EntryTuple = tuple[
    int, bytes, int | None, str | None, bytes | None, str | None, int | None, int, int
]
#: A Submission as a plain tuple: (key, digest, start, count, created_ms).
SubmissionTuple = tuple[str, bytes, int, int, int]


#: The write connection's page cache. SQLite's default (2 MiB) holds a small part of the
#: index of hash values, so at a million entries most inserts read their B-tree pages back
#: from the OS cache. 32 MiB holds the hot part of it: at 2.1M entries SQLite alone stored
#: 39,500 rows a second with it against 42,500 with 64 MiB, for 38 MiB less resident in the
#: writer process (docs/performance.md, catch-up: the memory aim counts the writer too).
WRITER_CACHE_MIB = 32
#: WAL pages before the writer copies them into the database (SQLite's default is 1000): a
#: catch-up batch of 10,000 entries touches more pages than that, so each one paid for a
#: checkpoint. The WAL then grows to about 40 MiB, and is cut back to 64 MiB at most.
WRITER_WAL_PAGES = 10_000
WRITER_WAL_LIMIT = 64 << 20
#: The WAL may grow to this share of the disk's free space; past it the writer checkpoints it
#: into the database and truncates it. Copying the WAL in takes up to its size again, so on a
#: small disk a WAL left to grow to WRITER_WAL_PAGES filled the disk and could never be copied.
WAL_SHARE_OF_FREE = 0.25


def configure_writer(conn: sqlite3.Connection) -> None:
    """The store's write connection: `configure`'s settings, a larger page cache and WAL."""
    configure(conn)
    conn.execute(f"PRAGMA cache_size = {-WRITER_CACHE_MIB * 1024}")
    conn.execute(f"PRAGMA wal_autocheckpoint = {WRITER_WAL_PAGES}")
    conn.execute(f"PRAGMA journal_size_limit = {WRITER_WAL_LIMIT}")


def bound_wal(conn: sqlite3.Connection, path: str) -> bool:
    """Checkpoint and truncate the WAL if it outgrew WAL_SHARE_OF_FREE of the free space.

    Returns whether it checkpointed. A checkpoint that fails (no room even for that, or a
    reader in the way past the busy timeout) leaves the WAL as it was; the next write tries
    again, and the data in the WAL is as safe as before.
    """
    try:
        wal_bytes = os.path.getsize(f"{path}-wal")
        stats = os.statvfs(os.path.dirname(os.path.abspath(path)))
    except OSError:  # no WAL yet, or a file system that cannot say
        return False
    if wal_bytes <= stats.f_bavail * stats.f_frsize * WAL_SHARE_OF_FREE:
        return False
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error:
        return False
    return True


def prepare(conn: sqlite3.Connection) -> None:
    """Create the tables (once) and check the schema version."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(f"the database has schema {version}; this node knows 1")
        for statement in SQLITE_TABLES:
            conn.execute(statement)
        for table, column, definition in SQLITE_ADDED_COLUMNS:
            columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if column not in columns:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.rollback()
        raise


def run_write(conn: sqlite3.Connection, name: str, args: Sequence[object]) -> object:
    """Run the write called `name` in one IMMEDIATE transaction: all of it, or none of it
    (or the read called `name`, as it is)."""
    read = READS.get(name)
    if read is not None:
        return read(conn, *args)  # no write lock: a locked database must not delay it
    write = WRITES.get(name)
    if write is None:
        raise StoreError(f"the SQLite writer knows no write called {name!r}")
    return immediate(conn, write, *args)


def log_head(conn: sqlite3.Connection, origin: str) -> tuple[int, bytes, bytes | None] | None:
    """The log's stored (size, peaks, head checkpoint), None if it has none. Run by the
    writer process, it answers after every write sent before it (Store.settled_head)."""
    row = conn.execute(
        "SELECT size, peaks, checkpoint FROM logs WHERE origin = ?", (origin,)
    ).fetchone()
    if row is None:
        return None
    size, peaks, head = row
    return int(size), bytes(peaks), None if head is None else bytes(head)


def log_size(conn: sqlite3.Connection, origin: str) -> int:
    row = conn.execute("SELECT size FROM logs WHERE origin = ?", (origin,)).fetchone()
    return 0 if row is None else int(row[0])


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
        (origin, size, raw),
    )


def append(
    conn: sqlite3.Connection,
    origin: str,
    start: int,
    rows: Sequence[EntryTuple],
    nodes: Sequence[tuple[NodeId, bytes]],
    checkpoint: bytes | None,
    checkpoint_size: int | None,
    submission: SubmissionTuple | None = None,
) -> None:
    """Store.append's write: entries [start, start+len(rows)), their inner Merkle nodes, and
    the checkpoint and the submission's idempotency key if given; the log's size, peaks and
    head follow."""
    size, packed, head = _log_row(conn, origin)
    end = check_rows(origin, size, start, [row[0] for row in rows], checkpoint, checkpoint_size)
    peaks = new_peaks(origin, start, unpack_peaks(packed), end, nodes)
    insert_rows(
        conn,
        "INSERT INTO entries (origin, idx, raw, kind, signal_type, value_key, target_log,"
        " target_index, timestamp_ms, received_ms)",
        [(origin, *row) for row in rows],
    )
    insert_rows(
        conn,
        "INSERT INTO nodes (origin, level, k, hash)",
        [(origin, level, k, value) for (level, k), value in inner_nodes(nodes)],
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
    if submission is not None:
        _keep_submission(conn, submission)


def _keep_submission(conn: sqlite3.Connection, submission: SubmissionTuple) -> None:
    """Keep an idempotency key; drop those past their retention, then all but the newest."""
    created_ms = submission[4]
    conn.execute(
        "DELETE FROM submissions WHERE created_ms < ?", (created_ms - SUBMISSION_RETENTION_MS,)
    )
    kept = conn.execute(
        "INSERT INTO submissions (key, digest, start, count, created_ms) VALUES (?, ?, ?, ?, ?)",
        submission,
    ).lastrowid
    # Rowids grow by one an insert (the newest row is never deleted): the oldest are a range.
    conn.execute("DELETE FROM submissions WHERE rowid <= ?", ((kept or 0) - MAX_SUBMISSIONS,))


def save_head(conn: sqlite3.Connection, origin: str, size: int, raw: bytes) -> None:
    """Store.save_checkpoint's write."""
    stored, _, _ = _log_row(conn, origin)
    check_checkpoint(origin, stored, size)
    _save_checkpoint(conn, origin, size, raw)
    if size == stored:
        conn.execute("UPDATE logs SET checkpoint = ? WHERE origin = ?", (raw, origin))


def save_roster(conn: sqlite3.Connection, version: int, raw: bytes) -> None:
    """Store.save_roster's write: idempotent for the same bytes, a conflict for others."""
    row = conn.execute("SELECT raw FROM rosters WHERE version = ?", (version,)).fetchone()
    if row is None:
        conn.execute("INSERT INTO rosters (version, raw) VALUES (?, ?)", (version, raw))
    elif bytes(row[0]) != raw:
        raise StoreConflictError(f"a different roster of version {version} is stored")


def save_evidence(
    conn: sqlite3.Connection,
    origin: str,
    first: bytes,
    second: bytes,
    detail: str,
    seen_ms: int,
    encoded: bytes = b"",
) -> None:
    """Store.save_evidence's write."""
    conn.execute(
        "INSERT INTO evidence (origin, first, second, detail, seen_ms, encoded)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (origin, first, second, detail, seen_ms, encoded),
    )


#: The writes the writer process runs, by the name a request gives.
WRITES: dict[str, Callable[..., object]] = {
    "append": append,
    "save_head": save_head,
    "save_roster": save_roster,
    "save_evidence": save_evidence,
}
#: The reads it runs in the same queue, after every write sent before them, without a
#: transaction of their own.
READS: dict[str, Callable[..., object]] = {"log_head": log_head}
