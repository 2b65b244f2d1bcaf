"""The node's domain service: our own log, peers' logs, the roster, lookups and serving.

HTTP handlers, the replicator and the CLI are thin layers over this one object. It owns the
LogWriter of our own log (appends are acknowledged once durable; checkpoints are signed in
batches by `run_checkpointer`), the PeerLogs, and the RosterKeeper.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from node.config import NodeConfig
from node.core.listeners import Listeners
from node.core.log_keys import CheckpointKeys
from node.core.log_proofs import LogProofs
from node.core.peer_logs import PeerLogs
from node.core.rosters import RosterKeeper
from node.core.wire import CheckpointVector
from node.core.witness import Witness
from node.errors import (
    ForbiddenError,
    IdempotencyKeyReusedError,
    PeerError,
    RequestError,
    StoreError,
)
from node.matching.indexes import DEFAULT_PDQ_THRESHOLD
from node.matching.lookups import lookup_views, match_hits, match_many_hits
from node.matching.matcher import Matcher, MatchHit
from node.matching.policy import EntryStanding, MatchPolicy, entry_standing, policy_from
from node.matching.review_queue import ReviewQueue
from node.store.base import LogHead, Store, Submission
from node.store.disk_watch import DiskWatch
from node.store.rows import entry_row
from node.store.schema import SUBMISSION_RETENTION_MS
from protocol.checkpoint import SignedCheckpoint, parse_signed_checkpoint
from protocol.entries import (
    Add,
    Confirm,
    Dispute,
    Entry,
    EntryRef,
    Retract,
    decode_entry,
    encode_entry,
)
from protocol.errors import DecodeError, RosterError, ValidationError
from protocol.replica import CheckpointStatus
from protocol.roster import Member, Roster
from protocol.signals import value_text
from protocol.signing import SigningKey
from protocol.trust import compromise_of
from protocol.view import HashView
from protocol.writer import LogWriter, WritePlan

log = logging.getLogger(__name__)

#: Seconds between tries to sign a checkpoint the store failed to save.
SIGN_RETRY_S = 0.5

#: Called after our own log gained a signed checkpoint: (origin, start, end, None).
OwnListener = Callable[[str, int, int, str | None], Awaitable[None]]


class NodeService:
    """One member's node, minus the network."""

    def __init__(
        self,
        config: NodeConfig,
        store: Store,
        checkpoint_key: SigningKey,
        clock: Callable[[], int],
        node_key: SigningKey | None = None,
        keys_dir: Path | None = None,
        disk: DiskWatch | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        #: The data directory's free space and failed writes; the runner's counts its store's.
        self.disk = disk or DiskWatch(
            config.data_dir, clock, config.disk_alert_free_percent, config.disk_alert_free_mib
        )
        self.rosters = RosterKeeper(store, clock)
        self.listeners = Listeners(config.origin, clock)
        self.peers = PeerLogs(store, self.rosters, config.origin, clock, self.listeners)
        self.keys = CheckpointKeys(config.origin, checkpoint_key, keys_dir)
        self._writer = LogWriter(config.origin, checkpoint_key)
        #: A write of our log whose outcome is not known yet (the store failed or the caller
        #: was cancelled while it was made), with its entries; settled before the next one.
        self._pending: tuple[WritePlan, Sequence[Entry]] | None = None
        self._signed: SignedCheckpoint | None = None
        self._append_lock = asyncio.Lock()
        self._unsigned = asyncio.Event()
        #: (error, when) of the checkpointer's last failure other than the store's, until it
        #: signs again.
        self.sign_failure: tuple[str, int] | None = None
        self.proofs = LogProofs(store, self.rosters, self.signed_checkpoint, config.page_size)
        self.witness = Witness(
            config.member_id,
            config.origin,
            node_key or SigningKey.generate(),  # without a node key our cosignatures count nil
            store,
            lambda: self.rosters.roster,
            clock,
        )
        self.peers.subscribe(self._cosign_reached, "witness")
        self.rosters.listeners.append(self.roster_changed)
        self.matcher = Matcher(store, DEFAULT_PDQ_THRESHOLD, self.listeners.decoded)
        self.review_queue = ReviewQueue(config.origin, clock)
        self.peers.subscribe(self.matcher.on_entries, "match_index")
        self.on_own_checkpoint(self.matcher.on_entries, "match_index")
        #: Asks for an anti-entropy round now; the runner connects it to the Replicator.
        self.request_sync: Callable[[], None] = _no_sync
        #: Asks for one log (origin) up to a size from one peer (member id), not a round.
        self.request_catch_up: Callable[[str, str, int], None] = _no_catch_up
        #: The peers that refuse to authenticate us; the Replicator connects it to its own.
        self.refused_by: Callable[[], list[str]] = _no_refusals

    async def start(self, pinned_roster: bytes) -> None:
        await self.rosters.load(pinned_roster)
        self.matcher.index.pdq_threshold = self.rosters.roster.pdq_threshold
        member = self.own_member()
        if member is None:
            # Removed by the admins: the node still starts, serves what it holds and says so
            # (status, alerts), but writes nothing (`append`).
            log.warning(
                "%s is not in roster version %d", self.config.member_id, self.roster_version
            )
        elif member.origin != self.config.origin:
            raise PeerError(f"the roster gives {member.member_id} the log {member.origin}")
        heads = await self.store.log_heads()
        own = heads.get(self.config.origin)
        if own is not None:
            if own.checkpoint is not None:
                self._signed = parse_signed_checkpoint(own.checkpoint)
            self._load_own(own)
        await self.peers.load(heads, await self.store.evidence())

    def _load_own(self, head: LogHead) -> None:
        """Take our log's state from the store's head (at start, and after an unknown outcome
        left the store holding something else than we planned)."""
        self._writer = LogWriter(self.config.origin, self.keys.current, head.size, head.peaks)
        if self._signed is None or self._signed.checkpoint.size < head.size:
            self._unsigned.set()  # entries acknowledged before a crash still need a signature

    def on_own_checkpoint(self, listener: OwnListener, name: str | None = None) -> None:
        """Hear of every signed checkpoint of our own log (see node/core/listeners.py)."""
        self.listeners.add(listener, own=True, name=name)

    @property
    def origin(self) -> str:
        return self.config.origin

    @property
    def own_size(self) -> int:
        return self._writer.size

    @property
    def own_root(self) -> bytes:
        return self._writer.root

    @property
    def own_checkpoint(self) -> SignedCheckpoint | None:
        return self._signed

    # Our own log.

    @property
    def roster_version(self) -> int:
        return self.rosters.roster.version

    def own_member(self) -> Member | None:
        """This node's member in the roster in force; None once the admins removed it."""
        try:
            return self.rosters.roster.member(self.config.member_id)
        except RosterError:
            return None

    @property
    def writes(self) -> bool:
        """Whether this node keeps a log: members do, auditors and removed members do not."""
        member = self.own_member()
        return member is not None and member.writes

    async def append(
        self, entries: Sequence[Entry], idempotency: tuple[str, bytes] | None = None
    ) -> list[EntryRef]:
        """Append entries to our log; returns once they are durable.

        `idempotency` is (key, digest of the request): a request whose key is kept gets the
        entries it appended then instead of new ones (IdempotencyKeyReusedError if the
        digest differs). If the store fails, what it holds is believed: entries it stored
        after all are acknowledged, and the next append continues whatever it holds.
        """
        if self.own_member() is None:
            raise ForbiddenError(
                f"{self.config.member_id} is not in roster version {self.roster_version}, the "
                "roster in force: the admins removed it, so no peer would accept what it adds"
            )
        if not self.writes:
            raise ForbiddenError("this node belongs to an auditor: it reads every log, writes none")
        raws = [encode_entry(e) for e in entries]
        async with self._append_lock:
            await self._settle_own()
            if idempotency is not None:
                done = await self.store.submission(idempotency[0])
                # Kept past its retention (dropped at the next keyed append): forgotten.
                if done is not None and self.clock() - done.created_ms <= SUBMISSION_RETENTION_MS:
                    if done.digest != idempotency[1]:
                        raise IdempotencyKeyReusedError(
                            "that Idempotency-Key was used for a different request"
                        )
                    return [EntryRef(self.origin, done.start + i) for i in range(done.count)]
            plan = self._writer.plan(raws)
            now = self.clock()
            rows = [
                entry_row(plan.start + i, raw, e, now)
                for i, (raw, e) in enumerate(zip(raws, entries, strict=True))
            ]
            keyed = None
            if idempotency is not None:
                keyed = Submission(idempotency[0], idempotency[1], plan.start, len(raws), now)
            self._pending = (plan, entries)
            try:
                await self.store.append(
                    self.origin, plan.start, rows, plan.nodes, None, submission=keyed
                )
            except StoreError:
                # The store may have made the write all the same (its answer to COMMIT lost):
                # believe what it holds. Cancelled instead, the next append settles it.
                if not await self._settle_own():
                    raise
            else:
                self._commit_own(plan, entries)
        return [EntryRef(self.origin, plan.start + i) for i in range(len(raws))]

    def _commit_own(self, plan: WritePlan, entries: Sequence[Entry]) -> None:
        """Adopt a write of our log the store made durable."""
        self._pending = None
        self.listeners.remember(self.origin, plan.start, entries)
        self._writer.commit(plan)
        self._unsigned.set()

    async def _settle_own(self) -> bool:
        """Get back in step with the store after a write of our log whose outcome is unknown
        (call under the append lock). True if that write is stored, and now adopted.

        The store's settled head tells: the size it held before the write (not stored), or
        the write's end (stored). Anything else (not expected: the log has one writer) is
        adopted as it stands. A StoreError here leaves the write unsettled for the next try.
        """
        if self._pending is None:
            return False
        plan, entries = self._pending
        head = await self.store.settled_head(self.origin)
        size = head.size if head is not None else 0
        if plan.start == self._writer.size and size == plan.end:
            self._commit_own(plan, entries)
            return True
        self._pending = None
        if head is not None and size != self._writer.size:
            log.warning(
                "our log holds %d entries in the store, %d in memory: following the store",
                size,
                self._writer.size,
                extra={"origin": self.origin},
            )
            self._load_own(head)
        return False

    async def submit(
        self, adds: Sequence[Add], idempotency: tuple[str, bytes] | None = None
    ) -> list[EntryRef]:
        """Append hashes of content this platform removed; labels must be in the taxonomy.
        `idempotency` makes a retry safe (see `append`)."""
        taxonomy = set(self.rosters.roster.taxonomy)
        for add in adds:
            unknown = sorted(set(add.labels) - taxonomy)
            if unknown:
                raise RequestError(f"labels not in the consortium's taxonomy: {', '.join(unknown)}")
        return await self.append(adds, idempotency)

    async def retract(self, index: int, reason: str) -> EntryRef:
        if not 0 <= index < self._writer.size:
            raise RequestError(f"our log has no entry {index}")
        return (await self.append([Retract(self.clock(), EntryRef(self.origin, index), reason)]))[0]

    async def dispute(self, target: EntryRef, reason_code: str, text: str) -> EntryRef:
        if target.log == self.origin:
            raise RequestError("a member retracts its own entries; it does not dispute them")
        self._require_held(target)
        try:
            entry = Dispute(self.clock(), target, reason_code, text)
        except ValidationError as e:
            raise RequestError(str(e)) from e
        return (await self.append([entry]))[0]

    def _require_held(self, target: EntryRef) -> None:
        """A dispute or confirmation names an entry of a peer's log that this node holds."""
        replica = self.peers.replicas().get(target.log)
        if replica is None or target.index >= replica.size:
            raise RequestError(f"this node holds no entry {target.index} of {target.log}")

    async def confirm(self, target: EntryRef, reason_code: str, text: str) -> EntryRef:
        """Stand behind another member's add: reviewed and agreed, or removed it too."""
        if target.log == self.origin:
            raise RequestError("a member's own add already stands behind its hash")
        self._require_held(target)
        raws = await self.store.entries(target.log, target.index, target.index + 1)
        try:
            if not raws or not isinstance(decode_entry(raws[0]), Add):
                raise RequestError(f"entry {target.index} of {target.log} is not an add")
            entry = Confirm(self.clock(), target, reason_code, text)
        except (ValidationError, DecodeError) as e:
            raise RequestError(f"cannot confirm: {e}") from e
        return (await self.append([entry]))[0]

    async def sign_pending(self) -> SignedCheckpoint | None:
        """Sign a checkpoint over every committed entry, if any is unsigned.

        Signs with the key the roster names for that size; with none installed (a key rotation
        under way, or a key declared compromised) the entries wait, acknowledged and durable.
        """
        async with self._append_lock:
            signed_size = self._signed.checkpoint.size if self._signed else 0
            if self._writer.size == signed_size:
                return None
            key = self.keys.for_size(self.rosters.roster, self._writer.size)
            if key is None:
                return None
            signed = self._writer.sign(key=key)
            await self.store.save_checkpoint(self.origin, signed.checkpoint.size, signed.raw)
            self._signed = signed
        # The position is signed whatever a listener does: one that fails hears of it again.
        await self.listeners.notify(self.origin, signed_size, signed.checkpoint.size, None)
        return signed

    async def run_checkpointer(self) -> None:
        """Sign checkpoints in batches: after `checkpoint_batch_ms`, or at once past N entries."""
        delay = self.config.checkpoint_batch_ms / 1000
        while True:
            await self._unsigned.wait()
            signed = self._signed.checkpoint.size if self._signed else 0
            if self._writer.size - signed < self.config.checkpoint_batch_entries:
                await asyncio.sleep(delay)
            self._unsigned.clear()
            try:
                await self.sign_pending()
            except StoreError as e:
                # A full disk or a locked database must not stop the node: the entries stay
                # durable and unsigned, and the next tick tries again.
                log.error("checkpoint not signed yet: %s; retrying in %.1f s", e, SIGN_RETRY_S)
                await asyncio.sleep(SIGN_RETRY_S)
                self._unsigned.set()
            except Exception as e:
                # Nor may anything else (a bug): ending this task would end the node's task group.
                self._sign_failed(e)
                await asyncio.sleep(SIGN_RETRY_S)
                self._unsigned.set()
            else:
                self.sign_failure = None

    def _sign_failed(self, e: Exception) -> None:
        """Log a failure to sign (its traceback once while it repeats) and keep it for alerts."""
        error = f"{type(e).__name__}: {e}"
        if self.sign_failure is None or self.sign_failure[0] != error:
            log.error("checkpoint not signed yet (%s); retrying", error, exc_info=e)
        self.sign_failure = (error, self.clock())

    # Serving peers.

    def signed_checkpoint(self, origin: str) -> SignedCheckpoint | None:
        """The checkpoint we serve for `origin`, with the cosignatures we collected."""
        if origin == self.origin:
            return self.witness.served(self._signed)
        return self.witness.served(self.peers.served_checkpoint(origin))

    def checkpoint_vector(self) -> CheckpointVector:
        pairs = []
        for origin in [self.origin, *sorted(self.peers.replicas())]:
            signed = self.signed_checkpoint(origin)
            if signed is not None:
                pairs.append((origin, signed.raw))
        return CheckpointVector(self.rosters.roster.version, tuple(pairs))

    async def offer_checkpoint(self, origin: str, raw: bytes) -> CheckpointStatus | None:
        """A checkpoint a peer showed us: compare it, and keep any new valid cosignatures."""
        if origin == self.origin:
            await self.witness.offered(self._signed, raw)
            return CheckpointStatus.KNOWN
        status = await self.peers.offer_checkpoint(origin, raw)
        if status is CheckpointStatus.KNOWN:
            await self.witness.offered(self.peers.served_checkpoint(origin), raw)
        return status

    async def _cosign_reached(self, origin: str, start: int, end: int, source: str | None) -> None:
        signed = self.peers.served_checkpoint(origin)
        if signed is not None and signed.checkpoint.size == end:
            await self.witness.reached(signed)

    # Lookups.

    async def lookup(
        self, signal_type: str, values: Sequence[bytes | str], near: bool = True
    ) -> list[HashView]:
        """The consortium's view of each hash, in the order asked; `near=False` leaves out
        the PDQ near-duplicates that corroborate it (an index search and reads per hash)."""
        standing = self.entry_standing()
        matcher = self.matcher if near else None
        return await lookup_views(self.store, signal_type, values, standing, matcher)

    async def match(self, signal_type: str, value: bytes | str) -> list[MatchHit]:
        """Every hash held that matches: near-duplicates for pdq and vpdq, exact otherwise."""
        threshold = self.rosters.roster.pdq_threshold
        standing = self.entry_standing()
        return await match_hits(self.store, self.matcher, threshold, signal_type, value, standing)

    async def match_many(
        self, signal_type: str, values: Sequence[bytes | str]
    ) -> list[list[MatchHit]]:
        """`match` for each of `values`, searched and looked up together."""
        threshold = self.rosters.roster.pdq_threshold
        standing = self.entry_standing()
        return await match_many_hits(
            self.store, self.matcher, threshold, signal_type, values, standing
        )

    def entry_standing(self) -> EntryStanding:
        """Which held entries the roster no longer vouches for (node/matching/policy.py)."""
        roster = self.rosters.roster
        vouched = {}
        # Only logs past a compromise need their checkpoint judged (a signature check each).
        for member in roster.members:
            signed = self.signed_checkpoint(member.origin) if compromise_of(member) else None
            if signed is not None and self.proofs.trusted(member.origin, signed.raw):
                vouched[member.origin] = signed.checkpoint.size
        return entry_standing(roster, vouched)

    def member_of(self, origin: str) -> str | None:
        try:
            return self.rosters.roster.member_by_origin(origin).member_id
        except RosterError:
            return None

    async def begin_key_rotation(self) -> tuple[int, bytes]:
        """Make our next checkpoint key; sign nothing beyond the current size until the admins
        name it. Returns (size where the old key ends, new public key)."""
        await self.sign_pending()
        async with self._append_lock:
            size = self._signed.checkpoint.size if self._signed else 0
            key = self.keys.begin_rotation(size)
        return size, key.public

    def roster_changed(self, previous: Roster) -> None:
        """A new roster may name a key for entries that wait for a signature."""
        self._unsigned.set()

    def match_policy(self) -> MatchPolicy:
        config = self.config
        roster = self.rosters.roster
        return policy_from(
            config.act_below_disputes, config.trusted_members, roster, config.act_agreement
        )


def _no_sync() -> None:
    """Before replication is wired up there is nothing to ask."""


def _no_catch_up(origin: str, member_id: str, size: int) -> None:
    """Before replication is wired up there is nothing to ask."""


def _no_refusals() -> list[str]:
    """Without replication no peer is asked, so none refuses."""
    return []


def describe_value(signal_type: str, value: bytes | str) -> str:
    return f"{signal_type}:{value_text(signal_type, value)}"
