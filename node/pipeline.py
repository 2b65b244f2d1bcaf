"""PagePipeline: consecutive pages of one peer log, verified while earlier pages are stored.

Catch-up is three kinds of work: verifying pages (CPU, on the event loop), storing them (the
store's own worker: the SQLite writer process, or PostgreSQL's server) and telling listeners
(match index, events).
The pipeline runs them side by side. Each page is verified as continuing the plans still
being stored (LogReplica.verify_entries(after=...)) and queued; whenever the store is idle it
takes every queued plan as one transaction, so a slow disk gets fewer, larger commits instead
of falling behind. Each stored plan is then committed to the replica, in order: the replica
still changes in one place, and only for what is durable. Listeners hear of each stored
batch, in order, as this pipeline's own task while the next batch is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from protocol.errors import EquivocationError
from protocol.replica import AppendPlan

if TYPE_CHECKING:
    from node.ingest import PeerLogs

#: Entries queued (verified, waiting for the store) before `offer` waits for the store.
MAX_QUEUED_ENTRIES = 48_000


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to a pushed or pulled batch: accepted, known, gap, held."""

    status: str
    size: int


class PagePipeline:
    """One run of pages of one log; holds the log's lock from entering to leaving.

    Leaving waits for the last store even when cancelled: the entries may already be durable,
    and the replica must then know it.
    """

    def __init__(self, logs: PeerLogs, origin: str, source: str | None) -> None:
        self._logs = logs
        self._origin = origin
        self._source = source
        self._lock = logs.lock(origin)
        self._queued: list[AppendPlan] = []
        self._storing: tuple[list[AppendPlan], asyncio.Task[None]] | None = None
        self._notifying: asyncio.Task[None] | None = None

    async def __aenter__(self) -> PagePipeline:
        await self._lock.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._drain()
        finally:
            if self._notifying is not None:  # only when cancelled: stop the listeners too
                self._notifying.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._notifying
            self._lock.release()

    def _last_plan(self) -> AppendPlan | None:
        if self._queued:
            return self._queued[-1]
        return self._storing[0][-1] if self._storing else None

    async def offer(
        self, checkpoint: bytes, start: int, entries: Sequence[bytes], proof: Sequence[bytes]
    ) -> IngestResult:
        """Verify the next page and queue it for the store; see PeerLogs.ingest."""
        logs = self._logs
        replica = logs.replica(self._origin)
        after = self._last_plan()
        held = after.end if after else replica.size
        if logs.is_held(self._origin):
            return IngestResult("held", held)
        end = start + len(entries)
        if start > held or end <= held:
            await self._drain()
            if not await logs.check_only(replica, checkpoint):
                return IngestResult("held", replica.size)
            return IngestResult("gap" if start > held else "known", replica.size)
        try:
            plan = replica.verify_entries(
                held, entries[held - start :], checkpoint, proof, logs.rosters.roster, after
            )
        except EquivocationError as e:
            await self._drain()
            await logs.hold(e)
            return IngestResult("held", replica.size)
        except BaseException:
            await self._drain()
            raise
        self._queued.append(plan)
        queued = sum(len(p.entries) for p in self._queued)
        if self._storing is None or self._storing[1].done() or queued >= MAX_QUEUED_ENTRIES:
            await self._store_queued()
        return IngestResult("accepted", plan.end)

    async def _store_queued(self) -> None:
        """Finish the running store (waiting if need be), then store what is queued."""
        stored = await self._finish_store()
        if self._queued:
            # A batch ends at a plan that reaches a checkpoint: the store keeps one a batch.
            cut = next(
                (i + 1 for i, p in enumerate(self._queued) if p.checkpoint is not None),
                len(self._queued),
            )
            batch, self._queued = self._queued[:cut], self._queued[cut:]
            self._storing = (batch, asyncio.create_task(self._logs.store_plans(batch)))
        if stored:
            await self._finish_notifying()
            self._notifying = asyncio.create_task(self._notify(stored))

    async def _drain(self) -> None:
        """Store and commit everything queued, and let the listeners hear of it."""
        while self._queued or self._storing:
            await self._store_queued()
        await self._finish_notifying()

    async def _notify(self, plans: list[AppendPlan]) -> None:
        await self._logs.notify(self._origin, plans[0].start, plans[-1].end, self._source)

    async def _finish_notifying(self) -> None:
        """Wait for the listeners of the previous batch (they hear of batches in order)."""
        task, self._notifying = self._notifying, None
        if task is not None:
            await task

    async def _finish_store(self) -> list[AppendPlan]:
        """Wait for the running store and commit its plans; [] if none was running."""
        if self._storing is None:
            return []
        plans, task = self._storing
        self._storing = None
        cancelled = False
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                cancelled = True  # finish committing what may be durable, then stop
        try:
            task.result()  # a failed store raises here; nothing of it was committed
        except BaseException:
            self._queued.clear()  # verified as continuing what failed: drop them too
            raise
        for plan in plans:
            self._logs.commit(plan)
        if cancelled:
            raise asyncio.CancelledError
        return plans
