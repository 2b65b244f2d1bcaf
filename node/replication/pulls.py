"""The pull side of replication (Pulls): scheduled sync rounds, and catching up one log.

- Round: `sync_all` (run when the scheduler's trigger calls `request_sync`, and on demand)
  fetches every peer's equivocation evidence and checkpoint vector and pages in whatever we
  lack, verified against the origin's checkpoint. A peer that missed a pushed evidence pulls
  it here (GET /v1/evidence), so every honest node holds the log.
- Catch-up: when we answer a peer's push "gap" and lack more entries than fit in one push,
  we fetch that one log from it (`request_catch_up`, at most one fetch a log under way
  however many gaps are answered: catch_ups.py), not a sync round.
Every pull of a log, in a round or a catch-up, takes that log's pull lock: one at a time.
Its tasks belong to the TaskGroup of `run`; a failing peer is recorded (PeerSet) and costs
only that peer.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from node.core import wire
from node.core.service import NodeService
from node.errors import NodeError, PeerError
from node.replication.catch_ups import CatchUps
from node.replication.page_fetches import PageFetches
from node.replication.peer_client import PeerClient
from node.replication.peer_set import PeerSet
from node.replication.peer_state import retry_delay
from protocol.checkpoint import parse_signed_checkpoint
from protocol.errors import ProtocolError
from protocol.replica import CheckpointStatus

log = logging.getLogger(__name__)
T = TypeVar("T")


class Pulls:
    """Owns the sync rounds and catch-ups of one node."""

    def __init__(
        self,
        service: NodeService,
        client: PeerClient,
        peers: PeerSet,
        after_round: Callable[[], None],
    ) -> None:
        self._service = service
        self._client = client
        self._config = service.config
        self._peers = peers
        #: Called at the end of every round.
        self._after_round = after_round
        self._sync_requested = asyncio.Event()
        self._synced = asyncio.Condition()
        self.rounds = 0
        self._random = random.Random()  # noqa: S311  # jittering retries, not secrets
        self._catch_ups = CatchUps(self._catch_up_log)
        #: origin -> the lock of its pulls (one at a time; bounded by the roster's logs)
        self._pulls: dict[str, asyncio.Lock] = {}
        #: Told of every sync with a peer: (member id, ok, failure reason).
        self.on_round: Callable[[str, bool, str], None] = _ignore_round

    def request_sync(self) -> None:
        """Ask for an anti-entropy round (the scheduler's job calls this)."""
        self._sync_requested.set()

    async def run(self) -> None:
        """Run the requested rounds and catch-ups until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self._puller())
            group.create_task(self._catch_ups.run())

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
        url = self._peers.urls().get(member_id)
        if url is None:
            return False
        state = self._peers.state(member_id)
        try:
            await self.pull_log(member_id, url, origin, size)
        except NodeError as e:
            self._peers.failed(state, e)
            return False
        return True

    async def _puller(self) -> None:
        while True:
            await self._sync_requested.wait()
            self._sync_requested.clear()
            await self.sync_all()

    async def sync_all(self) -> None:
        """One anti-entropy round with every peer, concurrently."""
        self._peers.refresh()
        peers = self._peers.urls()
        async with asyncio.TaskGroup() as group:
            for member_id, url in peers.items():
                group.create_task(self._sync_peer_guarded(member_id, url))
        self.rounds += 1
        self._after_round()
        async with self._synced:
            self._synced.notify_all()

    async def _sync_peer_guarded(self, member_id: str, url: str) -> None:
        """Sync with one peer; a peer that was answering until now and fails (a reset, on a
        lossy link) is tried once more after retry_delay, not left for a sync interval. A
        peer already failing is not: a peer that is down must not lengthen every round."""
        state = self._peers.state(member_id)
        retry = state.failures == 0
        while True:
            try:
                await self.sync_peer(member_id, url)
            except NodeError as e:
                self._peers.failed(state, e)
                self.on_round(member_id, False, type(e).__name__)
                if not retry or state.refusing:
                    return
                retry = False
                await asyncio.sleep(retry_delay(state.failures, self._random) or 0.0)
                state.retries += 1
            else:
                self._peers.ok(state)
                self.on_round(member_id, True, "")
                return

    async def sync_peer(self, member_id: str, url: str) -> None:
        """Take the peer's evidence, later rosters and every log it is ahead on."""
        await self._pull_evidence(member_id, url)
        state = self._peers.state(member_id)
        roster_version = self._service.rosters.roster.version
        if state.vector_roster != roster_version:
            # A new roster may judge the same checkpoints otherwise: take the whole vector.
            state.vector_seen.clear()
            state.vector_roster = roster_version
        vector = await self._client.checkpoints(member_id, url, state.vector_seen.values())
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
        for origin, raw in vector.checkpoints:
            size = _size_of(raw)
            state.note_holds(origin, size)
            state.vector_seen.pop(origin, None)
            try:
                status = await _translate(member_id, self._service.offer_checkpoint(origin, raw))
            except PeerError as e:
                log.warning("%s", e)
                continue
            if status is CheckpointStatus.AHEAD:
                await self.pull_log(member_id, url, origin, size)
            if status is not None:
                # Handled in full: the peer need not send these bytes again.
                state.vector_seen[origin] = wire.checkpoint_digest(raw)

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

    async def pull_log(self, member_id: str, url: str, origin: str, size: int) -> None:
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

    async def wait_round(self) -> None:
        """Wait for the end of the next round."""
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
