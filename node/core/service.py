"""The node's domain service: our own log, peers' logs, the roster, lookups and serving.

HTTP handlers, the replicator and the CLI are thin layers over this one object. It owns our
own log (`OwnLog`, node/core/own_log.py: appends acknowledged once durable, checkpoints
signed in batches), the PeerLogs, the RosterKeeper, the witness and the match index, and
wires the listeners of durable ranges (node/core/listeners.py). What it adds itself: what an
entry of ours may say (`submit`, `retract` once per entry, `dispute`, `confirm`), the
checkpoints we serve peers with the cosignatures collected, and lookups judged under the
roster in force.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from node.config import NodeConfig
from node.core.listeners import DurableRange, Listener, Listeners
from node.core.log_keys import CheckpointKeys
from node.core.log_proofs import LogProofs
from node.core.own_log import OwnLog
from node.core.peer_logs import PeerLogs
from node.core.rosters import RosterKeeper
from node.core.wire import CheckpointVector
from node.core.witness import Witness
from node.errors import PeerError, RequestError
from node.matching.indexes import DEFAULT_PDQ_THRESHOLD
from node.matching.lookups import lookup_views, match_hits, match_many_hits
from node.matching.matcher import Matcher, MatchHit
from node.matching.policy import EntryStanding, MatchPolicy, entry_standing, policy_from
from node.matching.review_queue import ReviewQueue
from node.store.base import Store
from node.store.disk_watch import DiskWatch
from protocol.checkpoint import SignedCheckpoint
from protocol.entries import Add, Confirm, Dispute, EntryRef, Retract, decode_entry
from protocol.errors import DecodeError, RosterError, ValidationError
from protocol.replica import CheckpointStatus
from protocol.roster_members import Member
from protocol.signals import value_text
from protocol.signing import SigningKey
from protocol.trust import compromise_of
from protocol.view import HashView

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Retracted:
    """The answer to a retraction: the retraction entry, and whether this request appended it
    (False: the entry was retracted before, and `ref` is that earlier retraction)."""

    ref: EntryRef
    appended: bool


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
        self.listeners = Listeners(config.origin, store, clock)
        self.peers = PeerLogs(store, self.rosters, config.origin, clock, self.listeners)
        self.keys = CheckpointKeys(config.origin, checkpoint_key, keys_dir)
        self.own_log = OwnLog(config, store, self.keys, self.rosters, self.listeners, clock)
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
        self.rosters.listeners.append(self.own_log.roster_changed)
        self.matcher = Matcher(store, DEFAULT_PDQ_THRESHOLD)
        self.review_queue = ReviewQueue(config.origin, clock)
        self.peers.subscribe(self._index, "match_index")
        self.on_own_checkpoint(self._index, "match_index")
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
            # (status, alerts), but writes nothing (OwnLog.append).
            version = self.rosters.roster.version
            log.warning("%s is not in roster version %d", self.config.member_id, version)
        elif member.origin != self.config.origin:
            raise PeerError(f"the roster gives {member.member_id} the log {member.origin}")
        heads = await self.store.log_heads()
        own = heads.get(self.config.origin)
        if own is not None:
            self.own_log.load(own)
        await self.peers.load(heads, await self.store.evidence())

    async def _index(self, told: DurableRange) -> None:
        """Index the adds of a durable range (the match index's listener)."""
        await self.matcher.add_entries(told.origin, told.start, await told.entries())

    def on_own_checkpoint(self, listener: Listener, name: str | None = None) -> None:
        """Hear of every signed checkpoint of our own log (see node/core/listeners.py)."""
        self.listeners.add(listener, own=True, name=name)

    @property
    def origin(self) -> str:
        return self.config.origin

    # Our own log (node/core/own_log.py).

    @property
    def own_size(self) -> int:
        return self.own_log.size

    @property
    def own_root(self) -> bytes:
        return self.own_log.root

    @property
    def own_checkpoint(self) -> SignedCheckpoint | None:
        return self.own_log.checkpoint

    @property
    def sign_failure(self) -> tuple[str, int] | None:
        """(error, when) of the checkpointer's last failure other than the store's."""
        return self.own_log.sign_failure

    def own_member(self) -> Member | None:
        """This node's member in the roster in force; None once the admins removed it."""
        return self.own_log.member()

    async def sign_pending(self) -> SignedCheckpoint | None:
        """Sign a checkpoint over every entry of ours not yet signed (OwnLog.sign_pending)."""
        return await self.own_log.sign_pending()

    async def run_checkpointer(self) -> None:
        """Sign our new entries in batches until cancelled (OwnLog.run_checkpointer)."""
        await self.own_log.run_checkpointer()

    async def begin_key_rotation(self) -> tuple[int, bytes]:
        """Make our next checkpoint key (OwnLog.begin_key_rotation)."""
        return await self.own_log.begin_key_rotation()

    # What an entry of ours may say.

    async def submit(
        self, adds: Sequence[Add], idempotency: tuple[str, bytes] | None = None
    ) -> list[EntryRef]:
        """Append hashes of content this platform removed; labels must be in the taxonomy.
        `idempotency` makes a retry safe (see OwnLog.append)."""
        taxonomy = set(self.rosters.roster.taxonomy)
        for add in adds:
            unknown = sorted(set(add.labels) - taxonomy)
            if unknown:
                raise RequestError(f"labels not in the consortium's taxonomy: {', '.join(unknown)}")
        return await self.own_log.append(adds, idempotency)

    async def retract(self, index: int, reason: str) -> Retracted:
        """Withdraw an entry of ours everywhere: an add, or a dispute or confirmation.

        An entry retracted before is answered with that retraction, and nothing is appended:
        the check runs under the own log's append lock (OwnLog.append's `already`), so of
        concurrent retractions of one entry exactly one appends. A retraction cannot itself
        be retracted (RequestError).
        """
        if not 0 <= index < self.own_log.size:
            raise RequestError(f"our log has no entry {index}")
        target = EntryRef(self.origin, index)
        earlier: list[EntryRef] = []

        async def retracted_before() -> list[EntryRef] | None:
            raws = await self.store.entries(self.origin, index, index + 1)
            if raws and isinstance(decode_entry(raws[0]), Retract):
                raise RequestError(f"entry {index} is a retraction, which cannot be retracted")
            earlier.extend(await self._retractions_of(target))
            return earlier[:1] or None

        retract = Retract(self.clock(), target, reason)
        refs = await self.own_log.append([retract], already=retracted_before)
        return Retracted(refs[0], appended=not earlier)

    async def _retractions_of(self, target: EntryRef) -> list[EntryRef]:
        """Our retractions of `target` the store holds, earliest (the one that counts) first."""
        refs = []
        for found in await self.store.find_references([(target.log, target.index)]):
            if found.log == self.origin:
                entry = decode_entry(found.raw)
                if isinstance(entry, Retract) and entry.target == target:
                    refs.append(EntryRef(found.log, found.index))
        return sorted(refs, key=lambda ref: ref.index)

    async def dispute(self, target: EntryRef, reason_code: str, text: str) -> EntryRef:
        if target.log == self.origin:
            raise RequestError("a member retracts its own entries; it does not dispute them")
        self._require_held(target)
        try:
            entry = Dispute(self.clock(), target, reason_code, text)
        except ValidationError as e:
            raise RequestError(str(e)) from e
        return (await self.own_log.append([entry]))[0]

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
        return (await self.own_log.append([entry]))[0]

    # Serving peers.

    def signed_checkpoint(self, origin: str) -> SignedCheckpoint | None:
        """The checkpoint we serve for `origin`, with the cosignatures we collected."""
        if origin == self.origin:
            return self.witness.served(self.own_log.checkpoint)
        return self.witness.served(self.peers.served_checkpoint(origin))

    def wire_checkpoint(self, origin: str) -> bytes | None:
        """The checkpoint we show peers of `origin` (vector, push, relay): its origin's
        signature and our own cosignature only (node/core/witness.py, the wire copy)."""
        if origin == self.origin:
            own = self.own_log.checkpoint
            return None if own is None else own.raw
        signed = self.peers.served_checkpoint(origin)
        return None if signed is None else self.witness.wire_copy(signed)

    def checkpoint_vector(self) -> CheckpointVector:
        pairs = []
        for origin in [self.origin, *sorted(self.peers.replicas())]:
            raw = self.wire_checkpoint(origin)
            if raw is not None:
                pairs.append((origin, raw))
        return CheckpointVector(self.rosters.roster.version, tuple(pairs))

    async def offer_checkpoint(self, origin: str, raw: bytes) -> CheckpointStatus | None:
        """A checkpoint a peer showed us: compare it, and keep any new valid cosignatures."""
        if origin == self.origin:
            await self.witness.offered(self.own_log.checkpoint, raw)
            return CheckpointStatus.KNOWN
        status = await self.peers.offer_checkpoint(origin, raw)
        if status is CheckpointStatus.KNOWN:
            await self.witness.offered(self.peers.served_checkpoint(origin), raw)
        return status

    async def _cosign_reached(self, told: DurableRange) -> None:
        signed = self.peers.served_checkpoint(told.origin)
        if signed is not None and signed.checkpoint.size == told.end:
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
