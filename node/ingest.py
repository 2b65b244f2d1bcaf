"""Peer logs: the node's replicas of other members' logs, fed by pushes and pulls.

Every change to our view of a peer's log goes through one LogReplica (protocol/replica.py),
under that log's lock: verify, store durably, then commit. Whatever path brought them, entries
are verified against the origin's signed checkpoint, so a relaying peer is never trusted.
Equivocation is kept as evidence and holds back that origin's new entries.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from node.entry_cache import DecodedEntries
from node.errors import PeerError
from node.rosters import RosterKeeper
from node.rows import entry_row
from node.store.base import Evidence, LogHead, Store
from protocol.checkpoint import SignedCheckpoint, parse_signed_checkpoint
from protocol.errors import EquivocationError, RosterError
from protocol.replica import AppendPlan, CheckpointStatus, LogReplica

log = logging.getLogger(__name__)

#: Called after new entries of a log are durable: (origin, start, end, peer they came from).
Listener = Callable[[str, int, int, str | None], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class IngestResult:
    """What happened to a pushed or pulled batch: accepted, known, gap, held."""

    status: str
    size: int


class PeerLogs:
    """Replicas of every other member's log; one lock per log."""

    def __init__(
        self,
        store: Store,
        rosters: RosterKeeper,
        own_origin: str,
        clock: Callable[[], int],
        decoded: DecodedEntries | None = None,
    ) -> None:
        self.decoded = decoded or DecodedEntries()
        self._store = store
        self._rosters = rosters
        self._own = own_origin
        self._clock = clock
        self._replicas: dict[str, LogReplica] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._held: dict[str, Evidence] = {}
        self._listeners: list[Listener] = []

    async def load(self, heads: dict[str, LogHead], evidence: Sequence[Evidence]) -> None:
        for origin, head in heads.items():
            if origin == self._own:
                continue
            raw = head.checkpoint
            if raw is None and head.size:
                # Stopped between two checkpoints (mid catch-up): serve the latest one we hold
                # all entries of, rather than nothing, until the next page reaches one.
                held = [
                    cp for size, cp in await self._store.checkpoints(origin) if size <= head.size
                ]
                raw = held[-1] if held else None
            cp = parse_signed_checkpoint(raw) if raw else None
            self._replicas[origin] = LogReplica(origin, head.size, head.peaks, cp)
        for ev in evidence:
            self._held.setdefault(ev.origin, ev)

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    @property
    def held(self) -> dict[str, Evidence]:
        return dict(self._held)

    def replicas(self) -> dict[str, LogReplica]:
        return dict(self._replicas)

    def replica(self, origin: str) -> LogReplica:
        """Our replica of `origin`'s log; PeerError if no member of the roster has that log."""
        if origin == self._own:
            raise PeerError("that is our own log")
        try:
            self._rosters.roster.member_by_origin(origin)
        except RosterError as e:
            raise PeerError(f"no member has the log {origin!r}") from e
        replica = self._replicas.get(origin)
        if replica is None:
            replica = self._replicas[origin] = LogReplica(origin)
        return replica

    def _lock(self, origin: str) -> asyncio.Lock:
        return self._locks.setdefault(origin, asyncio.Lock())

    async def offer_checkpoint(self, origin: str, raw: bytes) -> CheckpointStatus | None:
        """Compare a signed checkpoint with our replica; None if the origin is held."""
        async with self._lock(origin):
            replica = self.replica(origin)
            if origin in self._held:
                return None
            try:
                size = parse_signed_checkpoint(raw).checkpoint.size
                ids = replica.prefix_ids(size)
                nodes = await self._store.nodes(origin, ids) if ids else None
                had = replica.checkpoint
                status, signed = replica.accept_checkpoint(raw, self._rosters.roster, nodes)
            except EquivocationError as e:
                await self._hold(e)
                return None
            # Entries stored without a checkpoint of their exact size (a crash between the two)
            # are covered again; a copy we already keep (with cosignatures) is not replaced.
            first_at_size = had is None or had.checkpoint.size != replica.size
            at_our_size = signed.checkpoint.size == replica.size
            if status is CheckpointStatus.KNOWN and at_our_size and first_at_size:
                await self._store.save_checkpoint(origin, replica.size, signed.raw)
            return status

    async def ingest(
        self,
        origin: str,
        checkpoint: bytes,
        start: int,
        entries: Sequence[bytes],
        proof: Sequence[bytes],
        source: str | None,
    ) -> IngestResult:
        """Verify and store entries [start, start+len) of `origin` proven by `checkpoint`.

        Entries we already hold are skipped; a batch starting beyond our size is a gap (the
        caller pulls). Raises ProtocolError for anything that does not verify.
        """
        async with self.pipeline(origin, source) as pipeline:
            return await pipeline.offer(checkpoint, start, entries, proof)

    def pipeline(self, origin: str, source: str | None) -> PagePipeline:
        """A run of consecutive pages of `origin`, each verified while the previous one is
        being stored; it holds the log's lock from entering to leaving."""
        return PagePipeline(self, origin, source)

    async def _check_only(self, replica: LogReplica, checkpoint: bytes) -> bool:
        size = parse_signed_checkpoint(checkpoint).checkpoint.size
        ids = replica.prefix_ids(size)
        nodes = await self._store.nodes(replica.origin, ids) if ids else None
        try:
            replica.accept_checkpoint(checkpoint, self._rosters.roster, nodes)
        except EquivocationError as e:
            await self._hold(e)
            return False
        return True

    async def _notify(self, plan: AppendPlan, source: str | None) -> None:
        for listener in self._listeners:
            await listener(plan.origin, plan.start, plan.end, source)

    async def _store_plan(self, plan: AppendPlan) -> None:
        now = self._clock()
        rows = [entry_row(e.index, e.raw, e.entry, now) for e in plan.entries]
        for e in plan.entries:
            self.decoded.remember(e.raw, e.entry)
        self.decoded.remember_range(plan.origin, plan.start, [e.raw for e in plan.entries])
        bad = [e for e in plan.entries if e.entry is None]
        if bad:
            log.warning("%s signed %d entries that do not decode", plan.origin, len(bad))
        reached = plan.checkpoint
        await self._store.append(
            plan.origin,
            plan.start,
            rows,
            plan.nodes,
            reached.raw if reached else None,
            reached.checkpoint.size if reached else None,
        )

    async def _hold(self, e: EquivocationError) -> None:
        evidence = Evidence(e.origin, e.first, e.second, e.detail, self._clock())
        log.error("equivocation by %s: %s; holding back its new entries", e.origin, e.detail)
        if e.origin not in self._held:
            await self._store.save_evidence(evidence)
            self._held[e.origin] = evidence

    def served_checkpoint(self, origin: str) -> SignedCheckpoint | None:
        replica = self._replicas.get(origin)
        return replica.checkpoint if replica else None


class PagePipeline:
    """Consecutive pages of one log: page k+1 is verified while page k is being stored.

    Page k's plan is committed to the replica only once its store finished, and page k+1 was
    verified as continuing that plan, so the replica still changes in one place, in order.
    Listeners of page k run while page k+1 is stored. Leaving waits for the last store (even
    when cancelled: the entries may already be durable and the replica must then know it).
    """

    def __init__(self, logs: PeerLogs, origin: str, source: str | None) -> None:
        self._logs = logs
        self._origin = origin
        self._source = source
        self._lock = logs._lock(origin)
        self._storing: tuple[AppendPlan, asyncio.Task[None]] | None = None

    async def __aenter__(self) -> PagePipeline:
        await self._lock.acquire()
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            plan = await self._finish_store()
            if plan is not None:
                await self._logs._notify(plan, self._source)
        finally:
            self._lock.release()

    async def offer(
        self, checkpoint: bytes, start: int, entries: Sequence[bytes], proof: Sequence[bytes]
    ) -> IngestResult:
        """Verify the next page and start storing it; see PeerLogs.ingest."""
        logs = self._logs
        replica = logs.replica(self._origin)
        pending = self._storing[0] if self._storing else None
        held = pending.end if pending else replica.size
        if self._origin in logs._held:
            return IngestResult("held", held)
        end = start + len(entries)
        if start > held or end <= held:
            await self._finish_and_notify()
            status = await logs._check_only(replica, checkpoint)
            if not status:
                return IngestResult("held", replica.size)
            return IngestResult("gap" if start > held else "known", replica.size)
        page = entries[held - start :]
        try:
            plan = replica.verify_entries(
                held, page, checkpoint, proof, logs._rosters.roster, after=pending
            )
        except EquivocationError as e:
            await self._finish_and_notify()
            await logs._hold(e)
            return IngestResult("held", replica.size)
        except BaseException:
            await self._finish_and_notify()
            raise
        previous = await self._finish_store()
        self._storing = (plan, asyncio.create_task(logs._store_plan(plan)))
        if previous is not None:
            await logs._notify(previous, self._source)
        return IngestResult("accepted", plan.end)

    async def _finish_and_notify(self) -> None:
        plan = await self._finish_store()
        if plan is not None:
            await self._logs._notify(plan, self._source)

    async def _finish_store(self) -> AppendPlan | None:
        """Wait for the page being stored and commit it; None if none was."""
        if self._storing is None:
            return None
        plan, task = self._storing
        self._storing = None
        cancelled = False
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                cancelled = True  # finish committing what may be durable, then stop
        task.result()  # a failed store raises here; nothing was committed
        self._logs._replicas[self._origin].commit(plan)
        if cancelled:
            raise asyncio.CancelledError
        return plan
