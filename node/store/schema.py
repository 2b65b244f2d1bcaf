"""Rules shared by every store: batch checks, Merkle peaks of a new size, peak packing.

Both the SQLite and the PostgreSQL store call these inside their write transaction, so the
two enforce exactly the same conditions and fail with the same errors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

from node.errors import StoreConflictError, StoreError
from node.store.base import FoundEntry
from protocol.merkle import HASH_SIZE, NodeId, leaf_hash, peak_ids

SCHEMA_VERSION = 1
BATCH_ROWS = 1000  # rows per iter_values page
MAX_PARAMS = 500  # values per IN (...) list; SQLite limits bound parameters
MAX_PAIRS = 200  # (a = ? AND b = ?) terms per OR list; SQLite limits expression depth
#: How long an idempotency key of a submission is kept (24 hours), and how many at most: a
#: retry after longer, or behind more keyed submissions, is a new submission.
SUBMISSION_RETENTION_MS = 24 * 3600 * 1000
MAX_SUBMISSIONS = 100_000

_T = TypeVar("_T")


def pack_peaks(peaks: Sequence[bytes]) -> bytes:
    """Peaks as one blob of concatenated 32-byte hashes."""
    return b"".join(peaks)


def unpack_peaks(blob: bytes) -> tuple[bytes, ...]:
    if len(blob) % HASH_SIZE:
        raise StoreError(f"stored peaks are {len(blob)} bytes, not a multiple of {HASH_SIZE}")
    return tuple(bytes(blob[i : i + HASH_SIZE]) for i in range(0, len(blob), HASH_SIZE))


def check_rows(
    origin: str,
    stored_size: int,
    start: int,
    indexes: Sequence[int],
    checkpoint: bytes | None,
    checkpoint_size: int | None,
) -> int:
    """Check that a batch whose entries claim `indexes` continues the stored log; returns the
    new size."""
    if stored_size != start:
        raise StoreConflictError(
            f"log {origin} holds {stored_size} entries; a batch starting at {start} "
            "would duplicate or skip entries"
        )
    for offset, index in enumerate(indexes):
        if index != start + offset:
            raise StoreError(f"entry {offset} of a batch at {start} claims index {index}")
    end = start + len(indexes)
    if (checkpoint is None) != (checkpoint_size is None):
        raise StoreError("a checkpoint and its size come together")
    if checkpoint_size is not None and not 0 <= checkpoint_size <= end:
        raise StoreConflictError(
            f"a checkpoint of size {checkpoint_size} is beyond log {origin}'s {end} entries"
        )
    return end


def check_checkpoint(origin: str, stored_size: int, size: int) -> None:
    if not 0 <= size <= stored_size:
        raise StoreConflictError(
            f"a checkpoint of size {size} is beyond log {origin}'s {stored_size} entries"
        )


def new_peaks(
    origin: str,
    start: int,
    old_peaks: Sequence[bytes],
    end: int,
    nodes: Sequence[tuple[NodeId, bytes]],
) -> tuple[bytes, ...]:
    """The peaks of size `end`: each is an old peak (a shared prefix) or a node of the batch.

    The binary decompositions of `start` and `end` share their high bits, so the peaks they
    share are unchanged; every other peak of `end` ends past `start`, so this batch completed it.
    """
    if len(old_peaks) != start.bit_count():
        raise StoreError(f"log {origin} has {len(old_peaks)} stored peaks for size {start}")
    known: dict[NodeId, bytes] = dict(zip(peak_ids(start), old_peaks, strict=True))
    known.update(nodes)
    peaks: list[bytes] = []
    for node_id in peak_ids(end):
        peak = known.get(node_id)
        if peak is None:
            raise StoreError(
                f"a batch growing log {origin} to {end} lacks the Merkle node {node_id}"
            )
        peaks.append(peak)
    return tuple(peaks)


def node_mapping(rows: Sequence[tuple[int, int, bytes]]) -> Mapping[NodeId, bytes]:
    return {(level, k): bytes(value) for level, k, value in rows}


# Level-0 Merkle nodes are the leaf hashes SHA-256(0x00 || entry): a store does not keep them
# (a third of all its rows) but hashes the stored entry when one is asked for. Stores written
# before this keep theirs in `nodes`; they are the same hashes, and are not read.


def inner_nodes(nodes: Sequence[tuple[NodeId, bytes]]) -> list[tuple[NodeId, bytes]]:
    """The nodes of a batch a store keeps: every one above level 0."""
    return [node for node in nodes if node[0][0]]


def nodes_for_append(nodes: Sequence[tuple[NodeId, bytes]], end: int) -> list[tuple[NodeId, bytes]]:
    """The nodes a store's append needs of a batch ending at `end`: those it keeps (above
    level 0) and the last leaf, a peak of an odd size (`new_peaks`)."""
    last_leaf = (0, end - 1)
    return [node for node in nodes if node[0][0] or node[0] == last_leaf]


def split_leaves(ids: Sequence[NodeId]) -> tuple[list[int], list[NodeId]]:
    """(entry indexes of the level-0 ids, the other ids)."""
    return [k for level, k in ids if level == 0], [i for i in ids if i[0]]


def leaf_mapping(rows: Sequence[tuple[int, bytes]]) -> dict[NodeId, bytes]:
    """Level-0 nodes from stored (index, entry bytes) rows."""
    return {(0, int(index)): leaf_hash(bytes(raw)) for index, raw in rows}


def sorted_found(rows: Sequence[tuple[str, int, bytes, int]]) -> list[FoundEntry]:
    """Found entries in (log, index) order, whichever store found them."""
    found = [FoundEntry(str(log), int(index), bytes(raw), int(ms)) for log, index, raw, ms in rows]
    return sorted(found, key=lambda f: (f.log, f.index))


def chunks(items: Sequence[_T], size: int = MAX_PARAMS) -> list[Sequence[_T]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


# The tables in SQLite; peaks are concatenated 32-byte hashes, blobs are the bytes given.
SQLITE_TABLES = (
    """CREATE TABLE IF NOT EXISTS rosters (
        version INTEGER PRIMARY KEY,
        raw BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS logs (
        origin TEXT PRIMARY KEY,
        size INTEGER NOT NULL,
        peaks BLOB NOT NULL,
        checkpoint BLOB)""",
    """CREATE TABLE IF NOT EXISTS entries (
        origin TEXT NOT NULL REFERENCES logs (origin),
        idx INTEGER NOT NULL,
        raw BLOB NOT NULL,
        kind INTEGER,
        signal_type TEXT,
        value_key BLOB,
        target_log TEXT,
        target_index INTEGER,
        timestamp_ms INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        PRIMARY KEY (origin, idx))""",
    "CREATE INDEX IF NOT EXISTS entries_by_value ON entries (signal_type, value_key)",
    "CREATE INDEX IF NOT EXISTS entries_by_target ON entries (target_log, target_index)",
    # iter_values pages through one signal type in (origin, idx) order without sorting.
    "CREATE INDEX IF NOT EXISTS entries_by_type ON entries (signal_type, origin, idx)",
    """CREATE TABLE IF NOT EXISTS nodes (
        origin TEXT NOT NULL REFERENCES logs (origin),
        level INTEGER NOT NULL,
        k INTEGER NOT NULL,
        hash BLOB NOT NULL,
        PRIMARY KEY (origin, level, k)) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        origin TEXT NOT NULL REFERENCES logs (origin),
        size INTEGER NOT NULL,
        raw BLOB NOT NULL,
        PRIMARY KEY (origin, size))""",
    """CREATE TABLE IF NOT EXISTS evidence (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        origin TEXT NOT NULL,
        first BLOB NOT NULL,
        second BLOB NOT NULL,
        detail TEXT NOT NULL,
        seen_ms INTEGER NOT NULL,
        encoded BLOB NOT NULL DEFAULT x'')""",
    # Idempotency keys of submissions to our own log (Store.append's `submission`); the
    # rowid counts them, so the oldest beyond MAX_SUBMISSIONS are a range of it.
    """CREATE TABLE IF NOT EXISTS submissions (
        key TEXT PRIMARY KEY,
        digest BLOB NOT NULL,
        start INTEGER NOT NULL,
        count INTEGER NOT NULL,
        created_ms INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS submissions_by_age ON submissions (created_ms)",
)
#: Columns added after their table was first made: (table, column, SQLite definition).
SQLITE_ADDED_COLUMNS = (("evidence", "encoded", "BLOB NOT NULL DEFAULT x''"),)

# The same tables in PostgreSQL, inside the store's own schema ({schema} is a checked name).
POSTGRES_TABLES = (
    """CREATE TABLE IF NOT EXISTS {schema}.rosters (
        version BIGINT PRIMARY KEY,
        raw BYTEA NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {schema}.logs (
        origin TEXT PRIMARY KEY,
        size BIGINT NOT NULL,
        peaks BYTEA NOT NULL,
        checkpoint BYTEA)""",
    """CREATE TABLE IF NOT EXISTS {schema}.entries (
        origin TEXT NOT NULL REFERENCES {schema}.logs (origin),
        idx BIGINT NOT NULL,
        raw BYTEA NOT NULL,
        kind SMALLINT,
        signal_type TEXT,
        value_key BYTEA,
        target_log TEXT,
        target_index BIGINT,
        timestamp_ms BIGINT NOT NULL,
        received_ms BIGINT NOT NULL,
        PRIMARY KEY (origin, idx))""",
    "CREATE INDEX IF NOT EXISTS entries_by_value ON {schema}.entries (signal_type, value_key)",
    "CREATE INDEX IF NOT EXISTS entries_by_target ON {schema}.entries (target_log, target_index)",
    "CREATE INDEX IF NOT EXISTS entries_by_type ON {schema}.entries (signal_type, origin, idx)",
    """CREATE TABLE IF NOT EXISTS {schema}.nodes (
        origin TEXT NOT NULL REFERENCES {schema}.logs (origin),
        level INTEGER NOT NULL,
        k BIGINT NOT NULL,
        hash BYTEA NOT NULL,
        PRIMARY KEY (origin, level, k))""",
    """CREATE TABLE IF NOT EXISTS {schema}.checkpoints (
        origin TEXT NOT NULL REFERENCES {schema}.logs (origin),
        size BIGINT NOT NULL,
        raw BYTEA NOT NULL,
        PRIMARY KEY (origin, size))""",
    """CREATE TABLE IF NOT EXISTS {schema}.evidence (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        origin TEXT NOT NULL,
        first BYTEA NOT NULL,
        second BYTEA NOT NULL,
        detail TEXT NOT NULL,
        seen_ms BIGINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS {schema}.submissions (
        seq BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
        key TEXT PRIMARY KEY,
        digest BYTEA NOT NULL,
        start BIGINT NOT NULL,
        count BIGINT NOT NULL,
        created_ms BIGINT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS submissions_by_age ON {schema}.submissions (created_ms)",
    "ALTER TABLE {schema}.evidence ADD COLUMN IF NOT EXISTS encoded BYTEA NOT NULL DEFAULT ''",
)
