"""Replication: push new entries to peers at once, relay what we learn, pull on a schedule.

- Push: when our log gains a signed checkpoint each peer's pusher sends it and the new entries;
  when a peer's log gains verified entries from someone other than its origin, a few peers'
  pushers offer that checkpoint alone (relay), and send entries only to a peer that answers it
  lacks them. A failed push is tried again after a short, growing delay (peer_state.py).
- Gap: a peer that answers "gap" lacks entries before those pushed. If they fit in one push
  they are pushed at once; else the peer fetches that one log from us (`request_catch_up`, at
  most one fetch a log under way however many gaps are answered), not a sync round.
- Pull: `sync_all` (run by the scheduler's trigger, and on demand) fetches every peer's
  equivocation evidence and checkpoint vector and pages in whatever we lack, verified against
  the origin's checkpoint.
- Evidence: when a log is held (equivocation), each peer's pusher offers the evidence; a peer
  that missed it pulls it at its next sync (GET /v1/evidence), so every honest node holds.
Every task belongs to the Replicator's TaskGroup (`run`); a failing peer is recorded and
costs only that peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from node.core import wire
from node.core.listeners import DurableRange
from node.core.service import NodeService
from node.errors import NodeError, PeerError, PeerRefusedError
from node.replication.catch_ups import CatchUps
from node.replication.page_fetches import PageFetches
from node.replication.peer_client import PeerClient
from node.replication.peer_state import PeerState, retry_delay
from node.replication.removals import RemovalTeller
from protocol.checkpoint import parse_signed_checkpoint
from protocol.errors import ProtocolError, RosterError
from protocol.evidence import Equivocation
from protocol.replica import CheckpointStatus

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Seconds between checks that each peer of the roster, and only those, has a pusher.
PUSHERS_CHECK_S = 1.0


class Replicator:
    """Owns push, relay and pull for one node."""

    def __init__(self, service: NodeService, client: PeerClient) -> None:
        self._service = service
        self._client = client
        self._config = service.config
        self._peers: dict[str, PeerState] = {}
        self._sync_requested = asyncio.Event()
        self._synced = asyncio.Condition()
        self.rounds = 0
        self._pushers_running = 0
        self._random = random.Random()  # noqa: S311  # choosing relay targets, not secrets
        self._removals = RemovalTeller(service, client)
        #: Told of every sync with a peer: (member id, ok, failure reason).
        self._catch_ups = CatchUps(self._catch_up_log)
        #: origin -> the lock of its pulls (one at a time; bounded by the roster's logs)
        self._pulls: dict[str, asyncio.Lock] = {}
        self.on_round: Callable[[str, bool, str], None] = _ignore_round
        service.on_own_checkpoint(self._on_new_entries, "relay")
        service.peers.subscribe(self._on_new_entries, "relay")
        service.peers.subscribe_holds(self._on_hold)
        service.rosters.listeners.append(self._removals.roster_changed)
        service.refused_by = self.refusing_peers

    def peers(self) -> dict[str, str]:
        """member id -> endpoint URL of every other member with an endpoint."""
        out = {}
        for member in self._service.rosters.roster.members:
            if member.member_id != self._config.member_id and member.endpoints:
                out[member.member_id] = member.endpoints[0]
        return out

    def pending_pushes(self) -> dict[str, dict[str, int]]:
        """member id -> {origin: first entry not yet pushed}, for peers with pushes queued."""
        return {m: dict(p.dirty) for m, p in sorted(self._peers.items()) if p.dirty}

    def peer_status(self) -> dict[str, dict[str, object]]:
        self._refresh_peers()
        return {
            m: {
                "reachable": p.reachable,
                "refusing": p.refusing,
                "last_ok_ms": p.last_ok_ms,
                "last_error": p.last_error,
                "failures": p.failures,
            }
            for m, p in sorted(self._peers.items())
        }

    def refusing_peers(self) -> list[str]:
        """The peers whose last answer refused to authenticate us (401)."""
        return sorted(m for m, p in self._peers.items() if p.refusing)

    def _refresh_peers(self) -> None:
        current = self.peers()
        for member_id in current:
            self._peers.setdefault(member_id, PeerState(member_id))
        for gone in set(self._peers) - set(current):
            del self._peers[gone]

    def request_sync(self) -> None:
        """Ask for an anti-entropy round (the scheduler's job calls this)."""
        self._sync_requested.set()

    async def run(self) -> None:
        """Run the puller and one pusher per peer until cancelled."""
        self._refresh_peers()
        async with asyncio.TaskGroup() as group:
            group.create_task(self._puller())
            group.create_task(self._removals.run())
            group.create_task(self._catch_ups.run())
            if self._config.push:
                await self._run_pushers(group)

    async def _run_pushers(self, group: asyncio.TaskGroup) -> None:
        """Keep one pusher per peer, for that peer's current PeerState.

        A member removed from the roster loses its state (`_refresh_peers`); its pusher, which
        waits on that state's event, is cancelled and awaited. Added back, it has a new state
        and gets a new pusher.
        """
        running: dict[str, tuple[PeerState, asyncio.Task[None]]] = {}
        while True:
            self._refresh_peers()
            for member_id, (state, task) in list(running.items()):
                if self._peers.get(member_id) is not state or task.done():
                    del running[member_id]
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            for member_id, state in self._peers.items():
                if member_id not in running:
                    running[member_id] = (state, group.create_task(self._pusher(state)))
            await asyncio.sleep(PUSHERS_CHECK_S)

    def pusher_tasks(self) -> int:
        """How many pusher tasks are running (one per peer, when pushing)."""
        return self._pushers_running

    # Push and relay.

    async def _on_new_entries(self, told: DurableRange) -> None:
        origin, start, end, source = told.origin, told.start, told.end, told.source
        if not self._config.push or (source is not None and not self._config.relay):
            return
        self._refresh_peers()
        try:
            origin_member = self._service.rosters.roster.member_by_origin(origin).member_id
        except RosterError:
            return
        if source is not None and source == origin_member:
            # The origin pushes to every peer itself; anyone it could not reach pulls it from
            # us, and what we learn that way we do relay (below).
            return
        if source is not None and source in self._peers:
            self._peers[source].note_holds(origin, end)  # it just sent us these
        targets = [
            state
            for member_id, state in self._peers.items()
            if member_id not in (source, origin_member) and state.holds.get(origin, 0) < end
        ]
        fanout = self._config.relay_fanout
        if source is not None and fanout and len(targets) > fanout:
            # Relaying to everyone costs n^2 requests a takedown; a few random peers each
            # spread it as far (gossip), and the scheduled pull catches any that were missed.
            targets = self._random.sample(targets, fanout)
        for state in targets:
            state.dirty[origin] = min(state.dirty.get(origin, start), start)
            state.wake.set()

    async def _on_hold(self, equivocation: Equivocation) -> None:
        if not self._config.push:
            return
        self._refresh_peers()
        try:
            culprit = self._service.rosters.roster.member_by_origin(equivocation.origin).member_id
        except RosterError:
            culprit = None
        for member_id, state in self._peers.items():
            if member_id != culprit:  # its own node refuses evidence about its own log
                state.evidence[equivocation.origin] = equivocation.raw
                state.wake.set()

    async def _pusher(self, state: PeerState) -> None:
        """Push what is pending for one peer; after a failure, try again after retry_delay
        (what failed stays pending, merged with what arrives meanwhile), until PUSH_TRIES
        failures in a row leave it to the scheduled pull."""
        self._pushers_running += 1
        try:
            while True:
                await state.wake.wait()
                state.wake.clear()
                while (state.evidence or state.dirty) and not await self._push_pending(state):
                    delay = None if state.refusing else retry_delay(state.failures, self._random)
                    if delay is None:
                        # The peer pulls these at its next sync, from us or from another peer.
                        state.dirty.clear()
                        state.evidence.clear()
                        break
                    await asyncio.sleep(delay)
                    state.retries += 1
        finally:
            self._pushers_running -= 1

    async def _push_pending(self, state: PeerState) -> bool:
        """Offer the pending evidence, then push the pending logs; False at the first failure,
        what failed pending again."""
        while state.evidence:
            # Evidence first: the peer should hold the log before it takes more of it.
            origin, evidence = state.evidence.popitem()
            try:
                await self._offer_evidence(state, evidence)
            except NodeError as e:
                state.evidence.setdefault(origin, evidence)
                self._failed(state, e)
                return False
        while state.dirty:
            origin, start = state.dirty.popitem()
            try:
                await self._push_log(state, origin, start)
            except NodeError as e:
                state.put_back(origin, start)
                self._failed(state, e)
                return False
        return True

    async def _offer_evidence(self, state: PeerState, evidence: bytes) -> None:
        url = self.peers().get(state.member_id)
        if url is not None:
            await self._client.offer_evidence(state.member_id, url, evidence)
            self._ok(state)

    async def _push_log(self, state: PeerState, origin: str, start: int) -> None:
        """Push `origin`'s entries from `start` (at most a page, ending at its checkpoint).

        Another member's log (a relay) is offered as its checkpoint alone: the peer most
        likely holds the entries already, from their origin or another relay, and says so
        ("known"). A peer that answers "gap" says how many entries it holds; if the entries it
        lacks fit in one push they are pushed at once, else the peer fetches that log from us
        (see the push handler)."""
        signed = self._service.signed_checkpoint(origin)
        url = self.peers().get(state.member_id)
        if signed is None or url is None:
            return
        size = signed.checkpoint.size
        if origin != self._config.origin:
            start = size
        start = max(start, size - self._config.page_size, 0)
        if start > size or (start == size and origin == self._config.origin):
            return
        held = await self._push_range(state, url, origin, signed.raw, start)
        if held < start and held >= size - self._config.page_size:
            await self._push_range(state, url, origin, signed.raw, held)

    async def _push_range(
        self, state: PeerState, url: str, origin: str, checkpoint: bytes, start: int
    ) -> int:
        """Push entries [start, checkpoint size) of `origin`; how many the peer holds."""
        size = parse_signed_checkpoint(checkpoint).checkpoint.size
        entries = await self._service.store.entries(origin, start, size) if start < size else []
        result = await self._client.push(
            state.member_id, url, wire.Push(origin, checkpoint, start, tuple(entries))
        )
        self._ok(state)
        state.note_holds(origin, result.size)
        return result.size

    def request_catch_up(self, origin: str, member_id: str, size: int) -> None:
        """Fetch `origin`'s entries up to `size` from `member_id`: that one log, not a round
        (CatchUps: many requests for one log, one fetch)."""
        self._catch_ups.request(origin, member_id, size)

    @property
    def catch_ups(self) -> int:
        """Logs caught up on request."""
        return self._catch_ups.done

    async def _catch_up_log(self, origin: str, member_id: str, size: int) -> bool:
        """Whether `origin` was fetched up to `size` from `member_id`; a failure is that
        peer's, and the scheduled pull catches the log up."""
        url = self.peers().get(member_id)
        if url is None:
            return False
        state = self._peers.setdefault(member_id, PeerState(member_id))
        try:
            await self._pull_log(member_id, url, origin, size)
        except NodeError as e:
            self._failed(state, e)
            return False
        return True

    # Pull.

    async def _puller(self) -> None:
        while True:
            await self._sync_requested.wait()
            self._sync_requested.clear()
            await self.sync_all()

    async def sync_all(self) -> None:
        """One anti-entropy round with every peer, concurrently."""
        self._refresh_peers()
        peers = self.peers()
        async with asyncio.TaskGroup() as group:
            for member_id, url in peers.items():
                group.create_task(self._sync_peer_guarded(member_id, url))
        self.rounds += 1
        self._removals.try_again()  # those removed members we could not tell yet
        async with self._synced:
            self._synced.notify_all()

    async def _sync_peer_guarded(self, member_id: str, url: str) -> None:
        """Sync with one peer; a peer that was answering until now and fails (a reset, on a
        lossy link) is tried once more after retry_delay, not left for a sync interval. A
        peer already failing is not: a peer that is down must not lengthen every round."""
        state = self._peers.setdefault(member_id, PeerState(member_id))
        retry = state.failures == 0
        while True:
            try:
                await self.sync_peer(member_id, url)
            except NodeError as e:
                self._failed(state, e)
                self.on_round(member_id, False, type(e).__name__)
                if not retry or state.refusing:
                    return
                retry = False
                await asyncio.sleep(retry_delay(state.failures, self._random) or 0.0)
                state.retries += 1
            else:
                self._ok(state)
                self.on_round(member_id, True, "")
                return

    async def sync_peer(self, member_id: str, url: str) -> None:
        await self._pull_evidence(member_id, url)
        vector = await self._client.checkpoints(member_id, url)
        if self._service.rosters.first_version > 1:
            # Set up from a later roster: the versions before it come from peers, so that the
            # chain we serve (and bundles made from it) starts at the consortium's first.
            earlier = await self._client.rosters(member_id, url, 0)
            await _translate(member_id, self._service.rosters.adopt_earlier(earlier))
        if vector.roster_version > self._service.rosters.roster.version:
            for raw in await self._client.rosters(
                member_id, url, self._service.rosters.roster.version
            ):
                await _translate(member_id, self._service.rosters.offer(raw))
        state = self._peers.setdefault(member_id, PeerState(member_id))
        for origin, raw in vector.checkpoints:
            size = _size_of(raw)
            state.note_holds(origin, size)
            try:
                status = await _translate(member_id, self._service.offer_checkpoint(origin, raw))
            except PeerError as e:
                log.warning("%s", e)
                continue
            if status is CheckpointStatus.AHEAD:
                await self._pull_log(member_id, url, origin, size)

    async def _pull_evidence(self, member_id: str, url: str) -> None:
        """Hold every log the peer holds on evidence that verifies here; evidence that does
        not costs the peer a warning, not the round."""
        try:
            offered = await self._client.evidence(member_id, url)
        except PeerError as e:
            log.warning("%s", e)
            return
        for raw in offered:
            try:
                await _translate(member_id, self._service.peers.offer_evidence(raw))
            except PeerError as e:
                log.warning("%s: evidence refused: %s", member_id, e)

    async def _pull_log(self, member_id: str, url: str, origin: str, size: int) -> None:
        """Page in `origin`'s entries from a peer until we hold `size` of them.

        The next PREFETCH_PAGES pages are fetched while the current one is verified, and
        verified while the previous ones are stored (PagePipeline), so network, CPU and disk
        overlap, and the peer's latency to serve a page is hidden even when it is longer than
        our time to verify one. Pages after the next are asked for where the last page's
        length says they start; a guess that missed (a peer serving shorter pages) is
        cancelled and asked again. The fetches are this call's own tasks, cancelled if it
        stops early. The log's lock is taken once the first page has arrived, and held until
        the pull ends, unless its hand-over is due
        (node/core/log_locks.py): then the pipeline is drained, the lock let go, and the pull
        goes on in a new pipeline.

        One pull of a log runs at a time: a round finds a log ahead on many peers at once (in
        a burst, every peer's vector is ahead by the entries being pushed), and as the first
        page is on its way without the log's lock, each would fetch it; a pull that waited
        here finds what it wanted already held.
        """
        async with self._pulls.setdefault(origin, asyncio.Lock()):
            await self._pull_log_now(member_id, url, origin, size)

    async def _pull_log_now(self, member_id: str, url: str, origin: str, size: int) -> None:
        peers = self._service.peers
        start = peers.replica(origin).size
        if start >= size:
            return
        fetches = PageFetches(lambda at: self._client.entries(member_id, url, origin, at), size)
        fetches.ask(start, self._config.page_size)
        try:
            # The first page arrives before the log's lock is taken: pushes of the log (a
            # burst in flight, which the round found us behind on) need not wait on the WAN.
            page: wire.EntriesPage | None = await fetches.next_page()
            while page is not None:
                async with peers.pipeline(origin, member_id) as pipeline:
                    while page is not None:
                        result = await _translate(
                            member_id,
                            pipeline.offer(page.checkpoint, page.start, page.entries, page.proof),
                        )
                        if result.status != "accepted":
                            return
                        page = await fetches.next_page() if fetches else None
                        if pipeline.hand_over_due:
                            break
        finally:
            await fetches.cancel()

    def _ok(self, state: PeerState) -> None:
        state.reachable = True
        state.refusing = False
        state.last_ok_ms = self._service.clock()
        state.failures = 0

    def _failed(self, state: PeerState, e: Exception) -> None:
        # A peer that refuses to authenticate us answers, yet we exchange nothing with it.
        state.refusing = isinstance(e, PeerRefusedError)
        state.reachable = not state.refusing and (
            not isinstance(e, PeerError) or "failed" not in str(e)
        )
        state.last_error = str(e)
        state.failures += 1
        log.warning("peer %s: %s", state.member_id, e)

    async def wait_round(self) -> None:
        async with self._synced:
            await self._synced.wait()


def _size_of(raw: bytes) -> int:
    """The size a peer's checkpoint claims (0 if it does not parse: the sync refuses it)."""
    try:
        return parse_signed_checkpoint(raw).checkpoint.size
    except ProtocolError:
        return 0


def _ignore_round(member_id: str, ok: bool, reason: str) -> None:
    """No one listens to sync rounds."""


async def _translate(peer: str, call: Awaitable[T]) -> T:
    """Await a step on a peer's data; what fails verification costs that peer, as PeerError."""
    try:
        return await call
    except ProtocolError as e:
        raise PeerError(f"{peer}: refused what it sent: {e}") from e
