"""Peer logs: the node's replicas of other members' logs, fed by pushes and pulls.

Every change to our view of a peer's log goes through one LogReplica (protocol/replica.py),
under that log's lock: verify, store durably, then commit. Whatever path brought them, entries
are verified against the origin's signed checkpoint, so a relaying peer is never trusted.
Equivocation holds back that origin's new entries, but only on self-contained evidence
verified with the roster alone (protocol/evidence.py): made here from the two checkpoints and
the entries we hold, or offered by a peer. Holds are told to listeners, who pass them on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from operator import attrgetter

from node.core.evidence_maker import VerifiedPage, make_evidence
from node.core.listeners import Listener, Listeners
from node.core.log_locks import LogLock, LogLocks
from node.core.pipeline import IngestResult, PagePipeline
from node.core.rosters import RosterKeeper
from node.errors import PeerError
from node.store.base import Evidence, LogHead, Store
from node.store.rows import entry_row
from protocol.audit import witnesses_of
from protocol.checkpoint import SignedCheckpoint, open_witnessed, parse_signed_checkpoint
from protocol.errors import EquivocationError, ProofError, ProtocolError, RosterError
from protocol.evidence import Equivocation, decode_evidence, verify_evidence
from protocol.replica import AppendPlan, CheckpointStatus, LogReplica

log = logging.getLogger(__name__)

# A stored batch's entries' decodings, for the cache its listeners share.
_ENTRY = attrgetter("entry")

#: Called once a log is held, with the verified evidence.
HoldListener = Callable[[Equivocation], Awaitable[None]]


class PeerLogs:
    """Replicas of every other member's log; one lock per log."""

    def __init__(
        self,
        store: Store,
        rosters: RosterKeeper,
        own_origin: str,
        clock: Callable[[], int],
        listeners: Listeners | None = None,
    ) -> None:
        self.listeners = listeners or Listeners(own_origin, store, clock)
        self._store = store
        self._rosters = rosters
        self._own = own_origin
        self._clock = clock
        self._replicas: dict[str, LogReplica] = {}
        self._locks = LogLocks(self._check_member_log)
        self._held: dict[str, Evidence] = {}
        #: Plans of a log whose store failed and whose outcome is not settled yet (by log;
        #: a member's log only, so bounded by the roster).
        self._unsettled: dict[str, list[AppendPlan]] = {}
        self._hold_lock = asyncio.Lock()
        self._hold_listeners: list[HoldListener] = []

    async def load(self, heads: dict[str, LogHead], evidence: Sequence[Evidence]) -> None:
        for origin, head in heads.items():
            if origin == self._own:
                continue
            self._replicas[origin] = await self._replica_of(head)
        for ev in evidence:
            if ev.origin in self._held:
                continue
            if ev.encoded:  # verified before it was stored; a hold is never lifted
                self._held[ev.origin] = ev
                continue
            # Stored before evidence was self-contained: made again from what we hold, or the
            # log is not held (a pair that proves nothing, or an empty one, held it before).
            replica = self._replicas.get(ev.origin)
            claim = EquivocationError(ev.origin, ev.first, ev.second, ev.detail)
            try:
                made = await make_evidence(
                    self._store, self._rosters.roster, claim, replica.size if replica else 0
                )
            except ProtocolError as e:
                log.error("stored evidence against %s proves nothing, not held: %s", ev.origin, e)
                continue
            self._held[ev.origin] = Evidence(
                ev.origin, ev.first, ev.second, made.detail, ev.seen_ms, made.raw
            )

    def _verified_lines(self, raw: bytes) -> SignedCheckpoint:
        """A checkpoint we stored, with only the lines that verify (one stored before that
        rule may carry lines under a witness's name that do not); as stored if the roster in
        force no longer names the key that signed it."""
        parsed = parse_signed_checkpoint(raw)
        roster, cp = self._rosters.roster, parsed.checkpoint
        try:
            key = roster.checkpoint_key(cp.origin, cp.size)
            return open_witnessed(raw, key, witnesses_of(roster, cp.origin))
        except ProtocolError:
            return parsed

    def subscribe(self, listener: Listener, name: str | None = None) -> None:
        """Hear of every stored batch of a peer's log (node/core/listeners.py: a listener that
        fails costs only itself, and hears of the batch again)."""
        self.listeners.add(listener, own=False, name=name)

    async def _replica_of(self, head: LogHead) -> LogReplica:
        """A replica of what the store holds of a log (at start, or to follow the store)."""
        raw = head.checkpoint
        if raw is None and head.size:
            # Stopped between two checkpoints (mid catch-up): serve the latest one we hold
            # all entries of, rather than nothing, until the next page reaches one.
            held = [
                cp for size, cp in await self._store.checkpoints(head.origin) if size <= head.size
            ]
            raw = held[-1] if held else None
        cp = self._verified_lines(raw) if raw else None
        return LogReplica(head.origin, head.size, head.peaks, cp)

    async def settle(self, origin: str, plans: Sequence[AppendPlan] = ()) -> list[AppendPlan]:
        """Get back in step with the store after a store of `plans` failed, or was not waited
        for (their outcome is unknown); with no plans, settle what an earlier call could not.
        Call under the log's lock. Returns the plans committed.

        The store's settled head tells which of the plans (consecutive, from our replica's
        size) it holds: those are committed, the one path. Holding anything else, the store
        is followed: the replica is rebuilt from its head and the listeners told of entries
        it gained. A StoreError leaves the plans unsettled, for the next pipeline of the log.
        """
        if not plans and origin not in self._unsettled:
            return []
        pending = self._unsettled[origin] = list(plans) or self._unsettled[origin]
        head = await self._store.settled_head(origin)
        del self._unsettled[origin]
        replica = self.replica(origin)
        size = head.size if head is not None else 0
        committed: list[AppendPlan] = []
        for plan in pending:
            if plan.start != replica.size or plan.end > size:
                break
            self.commit(plan)
            committed.append(plan)
        if head is not None and size != replica.size:
            log.warning(
                "the store holds %d entries of %s, our replica %d: following the store",
                size,
                origin,
                replica.size,
                extra={"origin": origin},
            )
            self._replicas[origin] = await self._replica_of(head)
            if size > replica.size:
                await self.notify(origin, replica.size, size, None)
        return committed

    def subscribe_holds(self, listener: HoldListener) -> None:
        self._hold_listeners.append(listener)

    @property
    def stores_in_flight(self) -> int:
        """How many batches of one log a pipeline may have in the store at once: two if the
        store makes appends in call order (the next is sent while the last is being made)."""
        return 2 if self._store.ordered_appends else 1

    @property
    def rosters(self) -> RosterKeeper:
        return self._rosters

    @property
    def held(self) -> dict[str, Evidence]:
        return dict(self._held)

    def replicas(self) -> dict[str, LogReplica]:
        return dict(self._replicas)

    def replica(self, origin: str) -> LogReplica:
        """Our replica of `origin`'s log; PeerError if no member of the roster has that log."""
        self._check_member_log(origin)
        replica = self._replicas.get(origin)
        if replica is None:
            replica = self._replicas[origin] = LogReplica(origin)
        return replica

    def lock(self, origin: str) -> LogLock:
        """The lock every change to our view of `origin`'s log is made under; PeerError if no
        member of the roster has that log (a lock per name a peer sends would be unbounded)."""
        return self._locks.of(origin)

    def _check_member_log(self, origin: str) -> None:
        if origin == self._own:
            raise PeerError("that is our own log")
        try:
            self._rosters.roster.member_by_origin(origin)
        except RosterError as e:
            raise PeerError(f"no member has the log {origin!r}") from e

    def is_held(self, origin: str) -> bool:
        return origin in self._held

    async def offer_checkpoint(self, origin: str, raw: bytes) -> CheckpointStatus | None:
        """Compare a signed checkpoint with our replica; None if the origin is held."""
        async with self.lock(origin):
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
                await self.hold(e)
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
        """A run of consecutive pages of `origin`, verified while earlier ones are stored;
        it holds the log's lock from entering to leaving (node/core/pipeline.py)."""
        return PagePipeline(self, origin, source)

    async def check_only(self, replica: LogReplica, checkpoint: bytes) -> bool:
        """Offer `checkpoint` without entries; False if it proved equivocation (now held)."""
        size = parse_signed_checkpoint(checkpoint).checkpoint.size
        ids = replica.prefix_ids(size)
        nodes = await self._store.nodes(replica.origin, ids) if ids else None
        try:
            replica.accept_checkpoint(checkpoint, self._rosters.roster, nodes)
        except EquivocationError as e:
            await self.hold(e)
            return False
        return True

    async def notify_stored(self, plans: Sequence[AppendPlan], source: str | None) -> None:
        """Tell every listener of consecutive plans just stored and committed; their entries
        and decodings are remembered first (Listeners.remember), so the listeners need neither
        the store nor the decoder. Remembered here, not when stored: a catch-up stores the
        next batches meanwhile, and would push this one out of the cache first."""
        entries = [e for plan in plans for e in plan.entries]
        decodings = list(map(_ENTRY, entries))
        self.listeners.remember(plans[0].origin, plans[0].start, decodings)
        await self.notify(plans[0].origin, plans[0].start, plans[-1].end, source)

    async def notify(self, origin: str, start: int, end: int, source: str | None) -> None:
        """Tell every listener that entries [start, end) of `origin` are durable; a listener's
        failure is its own (Listeners.notify), never the caller's."""
        await self.listeners.notify(origin, start, end, source)

    async def store_plans(self, plans: Sequence[AppendPlan]) -> None:
        """Store consecutive verified plans of one log in one transaction; the caller then
        commits each, in order. Only the last may reach a checkpoint (the store keeps one)."""
        first, last = plans[0], plans[-1]
        now = self._clock()
        entries = [e for plan in plans for e in plan.entries]
        rows = [entry_row(e.idx, e.raw, e.entry, now) for e in entries]
        bad = sum(1 for e in entries if e.entry is None)
        if bad:
            log.warning("%s signed %d entries that do not decode", first.origin, bad)
        reached = last.checkpoint
        await self._store.append(
            first.origin,
            first.start,
            rows,
            [node for plan in plans for node in plan.nodes],
            reached.raw if reached else None,
            reached.checkpoint.size if reached else None,
        )

    def commit(self, plan: AppendPlan) -> None:
        """Adopt a plan the store made durable (the one path to our view of a log)."""
        self._replicas[plan.origin].commit(plan)

    async def hold(self, e: EquivocationError, page: VerifiedPage | None = None) -> None:
        """Hold back the origin's new entries on self-contained evidence of `e`, made from the
        two checkpoints and, for two sizes, the entries we hold (and `page`, entries just
        verified against one of them; node/core/evidence_maker.py). If what we hold cannot make it
        self-contained, nothing is held: ProofError refuses the checkpoint that contradicts
        our verified entries (it costs the peer that sent it)."""
        try:
            held_size = self.replica(e.origin).size
            roster = self._rosters.roster
            equivocation = await make_evidence(self._store, roster, e, held_size, page)
        except ProtocolError as err:
            log.error("%s; not held, as it cannot be shown to others: %s", e, err)
            raise ProofError(f"{e} (not held: {err})") from err
        await self.hold_verified(equivocation)

    async def offer_evidence(self, raw: bytes) -> bool:
        """Evidence a peer sent: verified with the roster alone, then that origin is held.
        False if we held it already; ProtocolError or PeerError if it proves nothing to us."""
        if _claimed_origin(raw) in self._held:
            return False  # held already: whatever this proves, there is nothing to add
        equivocation = verify_evidence(self._rosters.roster, raw)
        self.replica(equivocation.origin)  # PeerError for our own log or a non-member's
        return await self.hold_verified(equivocation)

    async def hold_verified(self, equivocation: Equivocation) -> bool:
        """Keep verified evidence and hold back the origin's new entries; tell the listeners.
        False if that origin was held already."""
        origin = equivocation.origin
        async with self._hold_lock:
            if origin in self._held:
                return False
            evidence = Evidence(
                origin,
                equivocation.first.raw,
                equivocation.second.raw,
                equivocation.detail,
                self._clock(),
                equivocation.raw,
            )
            await self._store.save_evidence(evidence)
            self._held[origin] = evidence
        log.error("equivocation: %s; holding back its new entries", equivocation.detail)
        for listener in self._hold_listeners:
            await listener(equivocation)
        return True

    def evidence(self) -> list[bytes]:
        """The encoded evidence of every log we hold back, for peers and auditors."""
        return [ev.encoded for _, ev in sorted(self._held.items())]

    def served_checkpoint(self, origin: str) -> SignedCheckpoint | None:
        replica = self._replicas.get(origin)
        return replica.checkpoint if replica else None


def _claimed_origin(raw: bytes) -> str | None:
    """The origin evidence names, unverified (only to skip evidence of a log held already)."""
    try:
        return parse_signed_checkpoint(decode_evidence(raw)[0]).checkpoint.origin
    except ProtocolError:
        return None
