"""The data directory's free space and the store's failed writes, for alerts and metrics.

A node whose disk fills refuses writes (503) and loses nothing, but an operator should hear
of it before that: `DiskWatch.alerts` warns once free space falls below the configured
threshold, and while writes have failed recently. Free space is read (statvfs) when asked,
so the alert and the `hashmesh_data_free_bytes` gauge are never stale. Failed writes are
counted by `WatchedStore`, which the runner puts around the node's store.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from node.errors import StoreConflictError, StoreError
from node.store.base import EntryRow, Evidence, FoundEntry, LogHead, Store, Submission
from protocol.merkle import NodeId

MIB = 1 << 20
#: How the two alerts begin and what they say, for the dashboard to tell them apart.
DISK_LOW = "low disk space"
DISK_WRITES_FAILED = "store write(s) failed"
#: Write failures within this many milliseconds keep the write-failure alert up.
FAILURE_WINDOW_MS = 10 * 60_000
#: Failure times kept for the window: enough to count a flood, bounded however long it lasts.
MAX_FAILURES_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class DiskSpace:
    """The file system holding a directory: bytes free to us (not root's reserve), and size."""

    free_bytes: int
    total_bytes: int


def disk_space(path: Path) -> DiskSpace | None:
    """The space of `path`'s file system, or None if it cannot be read (no permission).

    A path not made yet (a PostgreSQL node's data directory before its first event) is on
    the file system of its nearest existing parent.
    """
    path = path.absolute()
    while not path.exists() and path.parent != path:
        path = path.parent
    try:
        stats = os.statvfs(path)
    except OSError:
        return None
    return DiskSpace(stats.f_bavail * stats.f_frsize, stats.f_blocks * stats.f_frsize)


class DiskWatch:
    """Free space of the data directory, and the store writes that failed.

    Low space means less than `low_free_percent` of the file system, or less than
    `low_free_mib`, whichever is more: the second leaves room for SQLite to copy its
    write-ahead log into the database, which needs free space of its own.
    """

    def __init__(
        self,
        path: Path,
        clock: Callable[[], int],
        low_free_percent: float = 5.0,
        low_free_mib: float = 256.0,
    ) -> None:
        self.path = path
        self.clock = clock
        self.low_free_percent = low_free_percent
        self.low_free_mib = low_free_mib
        self.write_failures = 0
        self._recent: deque[int] = deque(maxlen=MAX_FAILURES_KEPT)
        self._last_failure = ""

    def space(self) -> DiskSpace | None:
        return disk_space(self.path)

    def low_threshold_bytes(self, space: DiskSpace) -> int:
        return int(max(space.total_bytes * self.low_free_percent / 100, self.low_free_mib * MIB))

    def full_note(self) -> str:
        """' (the disk is full or nearly: N bytes free for PATH)' if below the alert threshold."""
        space = self.space()
        if space is None or space.free_bytes >= self.low_threshold_bytes(space):
            return ""
        return f" (the disk is full or nearly: {space.free_bytes} bytes free for {self.path})"

    def write_failed(self, error: StoreError) -> None:
        """A store write failed (disk full, database locked, the writer died)."""
        self.write_failures += 1
        self._recent.append(self.clock())
        self._last_failure = str(error)

    def recent_failures(self) -> int:
        since = self.clock() - FAILURE_WINDOW_MS
        while self._recent and self._recent[0] < since:
            self._recent.popleft()
        return len(self._recent)

    def alerts(self) -> list[str]:
        out = []
        space = self.space()
        if space is not None and space.free_bytes < self.low_threshold_bytes(space):
            out.append(
                f"{DISK_LOW}: {space.free_bytes / MIB:.1f} MiB free of "
                f"{space.total_bytes / MIB:.0f} MiB for {self.path} (alert below "
                f"{self.low_threshold_bytes(space) / MIB:.0f} MiB); writes fail when it is gone"
            )
        failed = self.recent_failures()
        if failed:
            out.append(
                f"{failed} {DISK_WRITES_FAILED} in the last {FAILURE_WINDOW_MS // 60_000} min;"
                f" the last: {self._last_failure}"
            )
        return out


class WatchedStore:
    """A Store that tells a DiskWatch of every write that fails; otherwise the store itself.

    A conflict is not a failure of the disk: it is a write that does not continue the log
    (a peer's batch that lost a race), and the store refused it on purpose.
    """

    def __init__(self, store: Store, watch: DiskWatch) -> None:
        self.inner = store
        self.watch = watch
        self.ordered_appends = store.ordered_appends

    def _failed(self, error: StoreError) -> None:
        if not isinstance(error, StoreConflictError):
            self.watch.write_failed(error)

    async def open(self) -> None:
        await self.inner.open()

    async def close(self) -> None:
        await self.inner.close()

    async def save_roster(self, version: int, raw: bytes) -> None:
        try:
            await self.inner.save_roster(version, raw)
        except StoreError as e:
            self._failed(e)
            raise

    async def rosters(self) -> list[bytes]:
        return await self.inner.rosters()

    async def log_heads(self) -> dict[str, LogHead]:
        return await self.inner.log_heads()

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
        try:
            await self.inner.append(
                origin, start, entries, nodes, checkpoint, checkpoint_size, submission
            )
        except StoreError as e:
            self._failed(e)
            raise

    async def settled_head(self, origin: str) -> LogHead | None:
        return await self.inner.settled_head(origin)

    async def submission(self, key: str) -> Submission | None:
        return await self.inner.submission(key)

    async def checkpoint_range(
        self, origin: str, low: int, high: int, limit: int, newest_first: bool = False
    ) -> list[tuple[int, bytes]]:
        return await self.inner.checkpoint_range(origin, low, high, limit, newest_first)

    async def save_checkpoint(self, origin: str, size: int, raw: bytes) -> None:
        try:
            await self.inner.save_checkpoint(origin, size, raw)
        except StoreError as e:
            self._failed(e)
            raise

    async def checkpoints(self, origin: str) -> list[tuple[int, bytes]]:
        return await self.inner.checkpoints(origin)

    async def entries(self, origin: str, start: int, end: int) -> list[bytes]:
        return await self.inner.entries(origin, start, end)

    async def arrivals(self, origin: str, start: int, end: int) -> list[tuple[bytes, int]]:
        return await self.inner.arrivals(origin, start, end)

    async def nodes(self, origin: str, ids: Sequence[NodeId]) -> dict[NodeId, bytes]:
        return await self.inner.nodes(origin, ids)

    async def find_adds(self, signal_type: str, value_keys: Sequence[bytes]) -> list[FoundEntry]:
        return await self.inner.find_adds(signal_type, value_keys)

    async def find_references(self, targets: Sequence[tuple[str, int]]) -> list[FoundEntry]:
        return await self.inner.find_references(targets)

    def iter_values(self, signal_type: str) -> AsyncIterator[tuple[str, int, bytes]]:
        return self.inner.iter_values(signal_type)

    async def save_evidence(self, evidence: Evidence) -> None:
        try:
            await self.inner.save_evidence(evidence)
        except StoreError as e:
            self._failed(e)
            raise

    async def evidence(self) -> list[Evidence]:
        return await self.inner.evidence()
