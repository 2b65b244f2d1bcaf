"""The locks of peers' logs, and when a long run of pages hands its log's lock over.

Every change to our view of a peer's log is made under that log's lock (node/core/peer_logs.py).
A pull holds it for as long as it pages the log in (node/core/pipeline.py's PagePipeline), and
lets it go only when another task waits for it (a push of that log, a sync round's
checkpoint) and it has held it HOLD_LOCK_S: a push waits about that long at most. Letting it
go every HOLD_LOCK_S for no one drained the pipeline each time, and the joiner and its store
took turns instead of working side by side.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: Seconds a run of pages holds a log's lock before letting a task that waits for it in.
HOLD_LOCK_S = 1.0


class LogLock:
    """The lock of one peer log: an asyncio.Lock that also says whether anyone waits for it
    (`wanted`), and whether its holder should now hand it over (`hand_over_due`)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._waiting = 0
        self._taken_at = 0.0  # the event loop's time when it was last taken

    async def acquire(self) -> None:
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        self._taken_at = asyncio.get_running_loop().time()

    def release(self) -> None:
        self._lock.release()

    async def __aenter__(self) -> LogLock:
        await self.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.release()

    @property
    def wanted(self) -> bool:
        """Whether another task waits to take the lock."""
        return self._waiting > 0

    @property
    def hand_over_due(self) -> bool:
        """Whether the holder should let the lock go: another task waits for it, and it has
        been held HOLD_LOCK_S."""
        return self.wanted and asyncio.get_running_loop().time() >= self._taken_at + HOLD_LOCK_S


class LogLocks:
    """One LogLock per peer log, made when first asked for. `check` raises for a name that
    is no member's log, so the locks are bounded by the roster, not by what peers send."""

    def __init__(self, check: Callable[[str], None]) -> None:
        self._check = check
        self._locks: dict[str, LogLock] = {}

    def __len__(self) -> int:
        """How many logs have a lock (bounded by the roster's members)."""
        return len(self._locks)

    def of(self, origin: str) -> LogLock:
        lock = self._locks.get(origin)
        if lock is None:
            self._check(origin)
            lock = self._locks[origin] = LogLock()
        return lock
