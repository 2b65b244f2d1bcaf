"""PagePipeline: consecutive pages of one peer log, verified while earlier pages are stored.

Catch-up is three kinds of work: verifying pages (CPU, on the event loop), storing them (the
store's own worker: the SQLite writer process, or PostgreSQL's server) and telling listeners
(match index, events).
The pipeline runs them side by side. Each page is verified as continuing the plans still
being stored (LogReplica.verify_entries(after=...)) and queued. The pipeline's storer task
takes every queued plan as one transaction as soon as the store is free, so the store never
waits for the next page to be offered, and a slow disk gets fewer, larger commits instead of
falling behind. Each stored plan is then committed to the replica, in order: the replica
still changes in one place, and only for what is durable. Listeners hear of each stored
batch, in order, as the pipeline's own task while the next batch is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from node.core.evidence_maker import VerifiedPage
from node.core.log_locks import LogLock
from node.core.rosters import RosterKeeper
from node.errors import StoreError
from protocol.errors import EquivocationError
from protocol.replica import AppendPlan, LogReplica


class PipelineLogs(Protocol):
    """What a pipeline needs of the peer logs it feeds (node/core/peer_logs.py's PeerLogs):
    named here so that the pipeline depends on this, not on PeerLogs, which makes pipelines."""

    @property
    def rosters(self) -> RosterKeeper: ...
    @property
    def stores_in_flight(self) -> int: ...
    def lock(self, origin: str) -> LogLock: ...
    def replica(self, origin: str) -> LogReplica: ...
    def is_held(self, origin: str) -> bool: ...
    async def check_only(self, replica: LogReplica, checkpoint: bytes) -> bool: ...
    async def hold(self, e: EquivocationError, page: VerifiedPage | None = None) -> None: ...
    async def store_plans(self, plans: Sequence[AppendPlan]) -> None: ...
    def commit(self, plan: AppendPlan) -> None: ...
    async def settle(self, origin: str, plans: Sequence[AppendPlan] = ()) -> list[AppendPlan]: ...
    async def notify_stored(self, plans: Sequence[AppendPlan], source: str | None) -> None: ...


log = logging.getLogger(__name__)

#: Entries queued (verified, waiting for the store) before `offer` waits for the store: two
#: pages of the default size. Every entry in flight is a few hundred bytes of Python objects
#: in the node (its bytes, its decoding, its store row) and again in the writer process, and
#: a catch-up keeps about three batches in flight (queued, in the store, told to listeners):
#: at 24,000 queued and 12,000 sent early they were about 100 MiB of a 2.1M-entry catch-up's
#: peak. Smaller transactions cost SQLite little at this size (docs/performance.md, catch-up).
MAX_QUEUED_ENTRIES = 8_000
#: Entries queued before they are sent behind a batch still being made (stores that append
#: in call order): a page, so the store's next transaction is sent before the store is free.
#: Less is sent when the store is free.
EARLY_BATCH_ENTRIES = 4_000


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to a pushed or pulled batch: accepted, known, gap, held."""

    status: str
    size: int


class PagePipeline:
    """One run of pages of one log; holds the log's lock from entering to leaving.

    Leaving waits for the store under way even when cancelled: its entries may already be
    durable, and the replica must then know it. Plans still queued are stored first, unless
    leaving was itself cancelled.
    """

    def __init__(self, logs: PipelineLogs, origin: str, source: str | None) -> None:
        self._logs = logs
        self._origin = origin
        self._source = source
        self._lock = logs.lock(origin)
        self._queued: list[AppendPlan] = []
        self._storing: list[AppendPlan] = []  # the plans in the store now, in order
        self._storer: asyncio.Task[None] | None = None
        self._taken = asyncio.Event()  # set whenever the storer takes a batch or stops
        self._offered = asyncio.Event()  # set whenever a page is queued
        self._notifying: asyncio.Task[None] | None = None
        #: The batch whose store failed (or was not waited for), with its store.
        self._failed: list[tuple[list[AppendPlan], asyncio.Task[None]]] = []

    async def __aenter__(self) -> PagePipeline:
        await self._lock.acquire()
        try:
            # A store of this log whose outcome is still unknown is settled first.
            settled = await self._logs.settle(self._origin)
            if settled:
                await self._logs.notify_stored(settled, self._source)
        except BaseException:
            self._lock.release()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._drain()
        finally:
            # Left early (a failed store, a bad page): the listeners still hear of what was
            # committed, or the match index would miss durable entries until a restart. A
            # cancelled pipeline stops them too; those cut short hear of it again later
            # (node/core/listeners.py).
            task, self._notifying = self._notifying, None
            if task is not None:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            self._lock.release()

    @property
    def hand_over_due(self) -> bool:
        """Whether this run should end now, to let another task that waits for the log's
        lock in (node/core/log_locks.py)."""
        return self._lock.hand_over_due

    def _last_plan(self) -> AppendPlan | None:
        if self._queued:
            return self._queued[-1]
        return self._storing[-1] if self._storing else None

    async def offer(
        self, checkpoint: bytes, start: int, entries: Sequence[bytes], proof: Sequence[bytes]
    ) -> IngestResult:
        """Verify the next page and queue it for the store; see PeerLogs.ingest."""
        self._raise_if_store_failed()
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
            # The page verified against its checkpoint before a checkpoint remembered inside
            # it contradicted it: the page's entries can show the contradiction.
            await logs.hold(e, VerifiedPage(held, entries[held - start :]))
            return IngestResult("held", replica.size)
        except BaseException:
            await self._drain()
            raise
        self._queued.append(plan)
        self._offered.set()
        if self._storer is None:
            self._storer = asyncio.create_task(self._store_batches(self._take_batch()))
        while self._storer is not None and not self._storer.done() and self._queue_full():
            # Wait for the storer to take a batch (it takes all that is queued).
            self._taken.clear()
            await self._taken.wait()
        self._raise_if_store_failed()
        return IngestResult("accepted", plan.end)

    def _queue_full(self) -> bool:
        return self._queued_at_least(MAX_QUEUED_ENTRIES)

    def _queued_at_least(self, entries: int) -> bool:
        return sum(len(p.entries) for p in self._queued) >= entries

    def _take_batch(self) -> list[AppendPlan]:
        """Every queued plan up to the first that reaches a checkpoint (the store keeps one
        checkpoint a batch), now in the store."""
        cut = next(
            (i + 1 for i, p in enumerate(self._queued) if p.checkpoint is not None),
            len(self._queued),
        )
        batch, self._queued = self._queued[:cut], self._queued[cut:]
        self._storing += batch
        self._taken.set()
        return batch

    async def _store_batches(self, batch: list[AppendPlan]) -> None:
        """The storer: store `batch`, then what is queued meanwhile, until nothing is.

        With a store that makes appends in call order, the next batch is sent once
        EARLY_BATCH_ENTRIES are queued, while the last is still being made; they are
        committed in order.
        """
        in_flight: deque[tuple[list[AppendPlan], asyncio.Task[None]]] = deque()
        self._failed = []
        try:
            while batch or in_flight:
                if batch:
                    in_flight.append((batch, asyncio.create_task(self._logs.store_plans(batch))))
                oldest, store = in_flight[0]
                if len(in_flight) < self._logs.stores_in_flight:
                    await self._pages_or_store(store)
                    if self._queued_at_least(EARLY_BATCH_ENTRIES) and not store.done():
                        batch = self._take_batch()
                        continue
                in_flight.popleft()
                await self._commit_stored(oldest, store)
                batch = self._take_batch() if self._queued else []
        finally:
            # Only after a failure (or the storer's cancellation): the batch that failed and
            # those sent behind it are waited for, then the store is believed. It may hold
            # them after all (an answer to COMMIT lost): those it holds are committed.
            unsettled = [*self._failed, *in_flight]
            for _, store in unsettled:
                with contextlib.suppress(Exception):
                    await asyncio.shield(store)
            if unsettled:
                await self._settle([plan for batch, _ in unsettled for plan in batch])
            self._storing = []
            self._taken.set()

    async def _settle(self, plans: list[AppendPlan]) -> None:
        """Commit those of `plans` the store holds (PeerLogs.settle) and tell the listeners."""
        try:
            committed = await self._logs.settle(self._origin, plans)
        except StoreError as e:
            log.warning(
                "%s: a store's outcome is unknown until the log is next written: %s",
                self._origin,
                e,
                extra={"origin": self._origin},
            )
            return
        if committed:
            await self._finish_notifying()
            self._notifying = asyncio.create_task(self._notify(committed))

    async def _pages_or_store(self, store: asyncio.Task[None]) -> None:
        """Wait until EARLY_BATCH_ENTRIES are queued or `store` ends, whichever is first."""
        while not self._queued_at_least(EARLY_BATCH_ENTRIES) and not store.done():
            self._offered.clear()
            offered = asyncio.create_task(self._offered.wait())
            try:
                await asyncio.wait((store, offered), return_when=asyncio.FIRST_COMPLETED)
            finally:
                offered.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await offered

    async def _commit_stored(self, batch: list[AppendPlan], store: asyncio.Task[None]) -> None:
        """Wait for `batch`'s store, commit its plans and let the listeners hear of it."""
        try:
            await asyncio.shield(store)
        except BaseException:
            self._queued.clear()  # verified as continuing what failed: drop them too
            self._failed = [(batch, store)]  # settled by the storer before it ends
            raise
        del self._storing[: len(batch)]
        for plan in batch:
            self._logs.commit(plan)
        await self._finish_notifying()
        self._notifying = asyncio.create_task(self._notify(batch))

    def _raise_if_store_failed(self) -> None:
        """Raise the storer's failure (once) if it stopped with one."""
        storer = self._storer
        if storer is not None and storer.done():
            self._storer = None
            storer.result()

    async def _drain(self) -> None:
        """Store and commit everything queued, and let the listeners hear of it.

        Cancelled meanwhile, it finishes the batches in the store, drops the rest and re-raises.
        """
        storer = self._storer
        if storer is not None:
            cancelled = False
            while not storer.done():
                try:
                    await asyncio.shield(storer)
                except asyncio.CancelledError:
                    cancelled = True
                    self._queued.clear()  # the storer stops after the batch in the store
            self._storer = None
            storer.result()  # a failed store raises here; nothing of it was committed
            if cancelled:
                raise asyncio.CancelledError
        await self._finish_notifying()

    async def _notify(self, plans: list[AppendPlan]) -> None:
        await self._logs.notify_stored(plans, self._source)

    async def _finish_notifying(self) -> None:
        """Wait for the listeners of the previous batch (they hear of batches in order)."""
        task, self._notifying = self._notifying, None
        if task is not None:
            await task
