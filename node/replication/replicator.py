"""Replication: push new entries to peers at once, relay what we learn; the pulls are in
pulls.py, the peers and their states in peer_set.py.

- Push: when our log gains a signed checkpoint each peer's pusher sends it and the new entries;
  when a peer's log gains verified entries from someone other than its origin, a few peers'
  pushers offer that checkpoint alone (relay), and send entries only to a peer that answers it
  lacks them. A failed push is tried again after a short, growing delay (peer_state.py).
- Gap: a peer that answers "gap" lacks entries before those pushed. If they fit in one push
  they are pushed at once; else the peer fetches that one log from us (its
  `request_catch_up`), not a sync round.
- Pull: `sync_all` (run by the scheduler's trigger, and on demand) fetches every peer's
  equivocation evidence and checkpoint vector and pages in whatever we lack (Pulls).
- Evidence: when a log is held (equivocation), each peer's pusher offers the evidence; a peer
  that missed it pulls it at its next sync (GET /v1/evidence), so every honest node holds.
Every task belongs to the Replicator's TaskGroup (`run`); a failing peer is recorded and
costs only that peer.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

from node.core import wire
from node.core.listeners import DurableRange
from node.core.service import NodeService
from node.errors import NodeError
from node.replication.peer_client import PeerClient
from node.replication.peer_set import PeerSet
from node.replication.peer_state import PeerState, retry_delay
from node.replication.pulls import Pulls
from node.replication.recent_entries import RecentEntries
from node.replication.removals import RemovalTeller
from protocol.checkpoint import parse_signed_checkpoint
from protocol.errors import RosterError
from protocol.evidence import Equivocation

#: Seconds between checks that each peer of the roster, and only those, has a pusher.
PUSHERS_CHECK_S = 1.0


class Replicator:
    """Owns push and relay for one node, and its pulls (`pulls`) and peers (`peer_set`)."""

    def __init__(self, service: NodeService, client: PeerClient) -> None:
        self._service = service
        self._client = client
        self._config = service.config
        self.peer_set = PeerSet(service)
        self._pushers_running = 0
        self._random = random.Random()  # noqa: S311  # choosing relay targets, not secrets
        self._removals = RemovalTeller(service, client)
        self._recent = RecentEntries(service.store.entries)
        # Each round also tries again to tell the removed members not told yet.
        self.pulls = Pulls(service, client, self.peer_set, self._removals.try_again)
        service.on_own_checkpoint(self._on_new_entries, "relay")
        service.peers.subscribe(self._on_new_entries, "relay")
        service.peers.subscribe_holds(self._on_hold)
        service.rosters.listeners.append(self._removals.roster_changed)
        service.refused_by = self.peer_set.refusing

    def pending_pushes(self) -> dict[str, dict[str, int]]:
        """member id -> {origin: first entry not yet pushed}, for peers with pushes queued."""
        return {m: dict(p.dirty) for m, p in sorted(self.peer_set.states.items()) if p.dirty}

    def peer_status(self) -> dict[str, dict[str, object]]:
        """member id -> what the operator is shown of that peer."""
        return self.peer_set.status()

    def request_sync(self) -> None:
        """Ask for an anti-entropy round (the scheduler's job calls this)."""
        self.pulls.request_sync()

    def request_catch_up(self, origin: str, member_id: str, size: int) -> None:
        """Fetch `origin`'s entries up to `size` from `member_id`: that one log, not a round."""
        self.pulls.request_catch_up(origin, member_id, size)

    async def sync_all(self) -> None:
        """One anti-entropy round with every peer, concurrently."""
        await self.pulls.sync_all()

    @property
    def rounds(self) -> int:
        """Sync rounds ended."""
        return self.pulls.rounds

    @property
    def catch_ups(self) -> int:
        """Logs caught up on request."""
        return self.pulls.catch_ups

    async def run(self) -> None:
        """Run the pulls, the removal teller and one pusher per peer until cancelled."""
        self.peer_set.refresh()
        async with asyncio.TaskGroup() as group:
            group.create_task(self.pulls.run())
            group.create_task(self._removals.run())
            if self._config.push:
                await self._run_pushers(group)

    async def _run_pushers(self, group: asyncio.TaskGroup) -> None:
        """Keep one pusher per peer, for that peer's current PeerState.

        A member removed from the roster loses its state (`PeerSet.refresh`); its pusher,
        which waits on that state's event, is cancelled and awaited. Added back, it has a new
        state and gets a new pusher.
        """
        running: dict[str, tuple[PeerState, asyncio.Task[None]]] = {}
        while True:
            self.peer_set.refresh()
            for member_id, (state, task) in list(running.items()):
                if self.peer_set.states.get(member_id) is not state or task.done():
                    del running[member_id]
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            for member_id, state in self.peer_set.states.items():
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
        self.peer_set.refresh()
        try:
            origin_member = self._service.rosters.roster.member_by_origin(origin).member_id
        except RosterError:
            return
        if source is not None and source == origin_member:
            # The origin pushes to every peer itself; anyone it could not reach pulls it from
            # us, and what we learn that way we do relay (below).
            return
        if source is not None and source in self.peer_set.states:
            self.peer_set.states[source].note_holds(origin, end)  # it just sent us these
        targets = [
            state
            for member_id, state in self.peer_set.states.items()
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
        self.peer_set.refresh()
        try:
            culprit = self._service.rosters.roster.member_by_origin(equivocation.origin).member_id
        except RosterError:
            culprit = None
        for member_id, state in self.peer_set.states.items():
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
                self.peer_set.failed(state, e)
                return False
        while state.dirty:
            origin, start = state.dirty.popitem()
            try:
                await self._push_log(state, origin, start)
            except NodeError as e:
                state.put_back(origin, start)
                self.peer_set.failed(state, e)
                return False
        return True

    async def _offer_evidence(self, state: PeerState, evidence: bytes) -> None:
        url = self.peer_set.urls().get(state.member_id)
        if url is not None:
            await self._client.offer_evidence(state.member_id, url, evidence)
            self.peer_set.ok(state)

    async def _push_log(self, state: PeerState, origin: str, start: int) -> None:
        """Push `origin`'s entries from `start` (at most a page, ending at its checkpoint).

        Another member's log (a relay) is offered as its checkpoint alone: the peer most
        likely holds the entries already, from their origin or another relay, and says so
        ("known"). A peer that answers "gap" says how many entries it holds; if the entries it
        lacks fit in one push they are pushed at once, else the peer fetches that log from us
        (see the push handler)."""
        raw = self._service.wire_checkpoint(origin)
        url = self.peer_set.urls().get(state.member_id)
        if raw is None or url is None:
            return
        size = parse_signed_checkpoint(raw).checkpoint.size
        if origin != self._config.origin:
            start = size
        start = max(start, size - self._config.page_size, 0)
        if start > size or (start == size and origin == self._config.origin):
            return
        held = await self._push_range(state, url, origin, raw, start)
        if held < start and held >= size - self._config.page_size:
            await self._push_range(state, url, origin, raw, held)

    async def _push_range(
        self, state: PeerState, url: str, origin: str, checkpoint: bytes, start: int
    ) -> int:
        """Push entries [start, checkpoint size) of `origin`; how many the peer holds."""
        size = parse_signed_checkpoint(checkpoint).checkpoint.size
        entries = await self._recent.entries(origin, start, size) if start < size else []
        result = await self._client.push(
            state.member_id, url, wire.Push(origin, checkpoint, start, tuple(entries))
        )
        self.peer_set.ok(state)
        state.note_holds(origin, result.size)
        return result.size
