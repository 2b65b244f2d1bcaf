"""The storage interface every store (SQLite, PostgreSQL) implements, and its row types.

Stores keep the bytes they were given exactly (entries and signed checkpoints are never
re-encoded), write each batch in one transaction, and refuse a batch that does not continue
the stored log (StoreConflictError), so a replayed or concurrent write can never duplicate
or skip an entry.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from protocol.merkle import NodeId


class EntryRow(NamedTuple):
    """One log entry as stored: its bytes plus the columns it is found by.

    A NamedTuple, not a frozen dataclass: it is just as immutable, and a row is the tuple
    SQLite binds and the SQLite writer process receives. A catch-up makes one an entry, and
    a frozen dataclass's __init__ costs three times as much.
    """

    idx: int  # its index in the log (named as its column: `index` is a tuple method)
    raw: bytes
    kind: int | None = None  # 0 add, 1 retract, 2 dispute, 3 confirm; None: did not decode
    signal_type: str | None = None  # adds only
    value_key: bytes | None = None  # adds only: raw hash bytes, or a URL's UTF-8
    target_log: str | None = None  # retracts, disputes and confirms
    target_index: int | None = None
    timestamp_ms: int = 0  # the origin's timestamp in the entry
    received_ms: int = 0  # when this node stored it


@dataclass(frozen=True, slots=True)
class FoundEntry:
    """An entry found by one of its columns, with the log it belongs to."""

    log: str
    index: int
    raw: bytes
    received_ms: int


@dataclass(frozen=True, slots=True)
class LogHead:
    """What a store holds of one log: its size, Merkle peaks, latest checkpoint covering it."""

    origin: str
    size: int
    peaks: tuple[bytes, ...]
    checkpoint: bytes | None  # the signed checkpoint (raw note) of exactly `size`, if any


@dataclass(frozen=True, slots=True)
class Submission:
    """An operator's idempotency key and what its request appended to our own log.

    Kept with the entries, in their transaction, so a retry after an unknown outcome finds
    them (and a restart does not forget them); `digest` tells a retry from another request
    that reuses the key.
    """

    key: str
    digest: bytes
    start: int
    count: int
    created_ms: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """Two checkpoints of one origin that cannot both be true; `encoded` is the verified,
    self-contained evidence (protocol.evidence), empty in rows stored before it existed."""

    origin: str
    first: bytes
    second: bytes
    detail: str
    seen_ms: int
    encoded: bytes = b""


class Store(Protocol):
    """Async storage of logs, checkpoints, rosters and evidence."""

    #: Appends called one after another are made in that order even when the first is not
    #: durable yet (one writer, one queue), so a caller may start the next batch of a log
    #: before the last one returns; a batch behind a failed one is then refused, since it
    #: does not continue the stored log.
    ordered_appends: bool

    async def open(self) -> None: ...
    async def close(self) -> None: ...

    async def save_roster(self, version: int, raw: bytes) -> None:
        """Keep a signed roster (idempotent for the same version and bytes)."""

    async def rosters(self) -> list[bytes]:
        """Every signed roster kept, by ascending version."""

    async def log_heads(self) -> dict[str, LogHead]:
        """Every log held, by origin."""

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
        """Append entries [start, start+len) and their Merkle nodes in one transaction.

        Raises StoreConflictError unless the stored size of `origin` is exactly `start`.
        `checkpoint`, if given, is a signed checkpoint of size `checkpoint_size`, which must
        not exceed the new size; it is kept in the checkpoint history and, if its size equals
        the new size, becomes the log head's checkpoint. `submission`, if given, is kept in
        the same transaction; keys older than SUBMISSION_RETENTION_MS before its time, and
        all but the newest MAX_SUBMISSIONS, are dropped then (node/store/schema.py).
        """

    async def settled_head(self, origin: str) -> LogHead | None:
        """The stored head of `origin`'s log once every write to it sent before has ended
        (committed or rolled back): what to believe after a write whose outcome is unknown
        (a lost answer to COMMIT, a writer that died, a caller that was cancelled)."""

    async def submission(self, key: str) -> Submission | None:
        """The submission kept under an idempotency key, if any."""

    async def save_checkpoint(self, origin: str, size: int, raw: bytes) -> None:
        """Keep a signed checkpoint (size <= stored size) in the history; the head's if equal."""

    async def checkpoints(self, origin: str) -> list[tuple[int, bytes]]:
        """The checkpoint history of a log, by ascending size."""

    async def checkpoint_range(
        self, origin: str, low: int, high: int, limit: int, newest_first: bool = False
    ) -> list[tuple[int, bytes]]:
        """At most `limit` stored checkpoints of a log with low <= size <= high, by size."""

    async def entries(self, origin: str, start: int, end: int) -> list[bytes]:
        """Entries [start, end) of a log (fewer if the log is shorter)."""

    async def arrivals(self, origin: str, start: int, end: int) -> list[tuple[bytes, int]]:
        """Entries [start, end) of a log with the time (ms) this node stored each."""

    async def nodes(self, origin: str, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        """The stored Merkle nodes among `ids`."""

    async def find_adds(self, signal_type: str, value_keys: Sequence[bytes]) -> list[FoundEntry]:
        """Every add entry of that signal type whose value is one of `value_keys`."""

    async def find_references(self, targets: Sequence[tuple[str, int]]) -> list[FoundEntry]:
        """Every retract, dispute or confirm entry whose target is one of `targets`."""

    def iter_values(self, signal_type: str) -> AsyncIterator[tuple[str, int, bytes]]:
        """(log, index, value_key) of every add of a signal type, in batches, for indexes."""

    async def save_evidence(self, evidence: Evidence) -> None: ...

    async def evidence(self) -> list[Evidence]: ...
