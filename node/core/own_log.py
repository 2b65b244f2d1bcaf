"""Our own log: appends acknowledged once durable, checkpoints signed over them in batches.

`OwnLog` owns the LogWriter of this node's log (protocol/writer.py) and everything that moves
it: `append` (under the append lock, an Idempotency-Key's earlier answer given again, a
caller's check of what the log already holds made atomic with the write, an unknown outcome
of the store believed as the store holds it), `sign_pending` and the checkpointer task that
calls it (`run_checkpointer`), and the start of a key rotation. Once a checkpoint is signed
the listeners hear of the new range (node/core/listeners.py). What an entry may say (labels
in the taxonomy, a dispute of an entry held) is checked by NodeService (node/core/service.py):
before it gets here, or through `append`'s `already` when it depends on what the log holds
(an entry retracted once is not retracted again).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from node.config import NodeConfig
from node.core.listeners import Listeners
from node.core.log_keys import CheckpointKeys
from node.core.rosters import RosterKeeper
from node.errors import ForbiddenError, IdempotencyKeyReusedError, StoreError
from node.store.base import LogHead, Store, Submission
from node.store.rows import entry_row
from node.store.schema import SUBMISSION_RETENTION_MS
from protocol.checkpoint import SignedCheckpoint, parse_signed_checkpoint
from protocol.entries import Entry, EntryRef, encode_entry
from protocol.errors import RosterError
from protocol.roster import Roster
from protocol.roster_members import Member
from protocol.writer import LogWriter, WritePlan

log = logging.getLogger(__name__)

#: Seconds between tries to sign a checkpoint the store failed to save.
SIGN_RETRY_S = 0.5


class OwnLog:
    """This node's log: its writer, its latest signed checkpoint, and the checkpointer's state."""

    def __init__(
        self,
        config: NodeConfig,
        store: Store,
        keys: CheckpointKeys,
        rosters: RosterKeeper,
        listeners: Listeners,
        clock: Callable[[], int],
    ) -> None:
        self.origin = config.origin
        self._config = config
        self._store = store
        self._keys = keys
        self._rosters = rosters
        self._listeners = listeners
        self.clock = clock
        self._writer = LogWriter(config.origin, keys.current)
        #: A write of our log whose outcome is not known yet (the store failed or the caller
        #: was cancelled while it was made), with its entries; settled before the next one.
        self._pending: tuple[WritePlan, Sequence[Entry]] | None = None
        self._signed: SignedCheckpoint | None = None
        self._lock = asyncio.Lock()
        self._unsigned = asyncio.Event()
        #: (error, when) of the checkpointer's last failure other than the store's, until it
        #: signs again.
        self.sign_failure: tuple[str, int] | None = None

    def load(self, head: LogHead) -> None:
        """Take our log's state from the store's head, at start."""
        if head.checkpoint is not None:
            self._signed = parse_signed_checkpoint(head.checkpoint)
        self._follow(head)

    def _follow(self, head: LogHead) -> None:
        """Take our log's state from the store's head (at start, and after an unknown outcome
        left the store holding something else than we planned)."""
        self._writer = LogWriter(self.origin, self._keys.current, head.size, head.peaks)
        if self._signed is None or self._signed.checkpoint.size < head.size:
            self._unsigned.set()  # entries acknowledged before a crash still need a signature

    @property
    def size(self) -> int:
        return self._writer.size

    @property
    def root(self) -> bytes:
        return self._writer.root

    @property
    def checkpoint(self) -> SignedCheckpoint | None:
        """Our latest signed checkpoint, without the cosignatures collected for it."""
        return self._signed

    def member(self) -> Member | None:
        """This node's member in the roster in force; None once the admins removed it."""
        try:
            return self._rosters.roster.member(self._config.member_id)
        except RosterError:
            return None

    async def append(
        self,
        entries: Sequence[Entry],
        idempotency: tuple[str, bytes] | None = None,
        already: Callable[[], Awaitable[list[EntryRef] | None]] | None = None,
    ) -> list[EntryRef]:
        """Append entries to our log; returns once they are durable.

        `idempotency` is (key, digest of the request): a request whose key is kept gets the
        entries it appended then instead of new ones (IdempotencyKeyReusedError if the
        digest differs). `already` checks what the log holds (NodeService.retract): it runs
        under the append lock once any earlier write is settled, so no other append comes
        between its check and this one; the entries it returns are the answer instead of
        new ones, and it may raise to refuse the request. If the store fails, what it holds
        is believed: entries it stored after all are acknowledged, and the next append
        continues whatever it holds.
        """
        member = self.member()
        if member is None:
            raise ForbiddenError(
                f"{self._config.member_id} is not in roster version "
                f"{self._rosters.roster.version}, the roster in force: the admins removed it, "
                "so no peer would accept what it adds"
            )
        if not member.writes:
            raise ForbiddenError("this node belongs to an auditor: it reads every log, writes none")
        raws = [encode_entry(e) for e in entries]
        async with self._lock:
            await self._settle()
            if idempotency is not None:
                done = await self._store.submission(idempotency[0])
                # Kept past its retention (dropped at the next keyed append): forgotten.
                if done is not None and self.clock() - done.created_ms <= SUBMISSION_RETENTION_MS:
                    if done.digest != idempotency[1]:
                        raise IdempotencyKeyReusedError(
                            "that Idempotency-Key was used for a different request"
                        )
                    return [EntryRef(self.origin, done.start + i) for i in range(done.count)]
            if already is not None:
                earlier = await already()
                if earlier is not None:
                    return earlier
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
                await self._store.append(
                    self.origin, plan.start, rows, plan.nodes, None, submission=keyed
                )
            except StoreError:
                # The store may have made the write all the same (its answer to COMMIT lost):
                # believe what it holds. Cancelled instead, the next append settles it.
                if not await self._settle():
                    raise
            else:
                self._commit(plan, entries)
        return [EntryRef(self.origin, plan.start + i) for i in range(len(raws))]

    def _commit(self, plan: WritePlan, entries: Sequence[Entry]) -> None:
        """Adopt a write of our log the store made durable."""
        self._pending = None
        self._listeners.remember(self.origin, plan.start, entries)
        self._writer.commit(plan)
        self._unsigned.set()

    async def _settle(self) -> bool:
        """Get back in step with the store after a write of our log whose outcome is unknown
        (call under the append lock). True if that write is stored, and now adopted.

        The store's settled head tells: the size it held before the write (not stored), or
        the write's end (stored). Anything else (not expected: the log has one writer) is
        adopted as it stands. A StoreError here leaves the write unsettled for the next try.
        """
        if self._pending is None:
            return False
        plan, entries = self._pending
        head = await self._store.settled_head(self.origin)
        size = head.size if head is not None else 0
        if plan.start == self._writer.size and size == plan.end:
            self._commit(plan, entries)
            return True
        self._pending = None
        if head is not None and size != self._writer.size:
            log.warning(
                "our log holds %d entries in the store, %d in memory: following the store",
                size,
                self._writer.size,
                extra={"origin": self.origin},
            )
            self._follow(head)
        return False

    async def sign_pending(self) -> SignedCheckpoint | None:
        """Sign a checkpoint over every committed entry, if any is unsigned.

        Signs with the key the roster names for that size; with none installed (a key rotation
        under way, or a key declared compromised) the entries wait, acknowledged and durable.
        """
        async with self._lock:
            signed_size = self._signed.checkpoint.size if self._signed else 0
            if self._writer.size == signed_size:
                return None
            key = self._keys.for_size(self._rosters.roster, self._writer.size)
            if key is None:
                return None
            signed = self._writer.sign(key=key)
            await self._store.save_checkpoint(self.origin, signed.checkpoint.size, signed.raw)
            self._signed = signed
        # The position is signed whatever a listener does: one that fails hears of it again.
        await self._listeners.notify(self.origin, signed_size, signed.checkpoint.size, None)
        return signed

    async def run_checkpointer(self) -> None:
        """Sign checkpoints in batches: after `checkpoint_batch_ms`, or at once past N entries."""
        delay = self._config.checkpoint_batch_ms / 1000
        while True:
            await self._unsigned.wait()
            signed = self._signed.checkpoint.size if self._signed else 0
            if self._writer.size - signed < self._config.checkpoint_batch_entries:
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

    async def begin_key_rotation(self) -> tuple[int, bytes]:
        """Make our next checkpoint key; sign nothing beyond the current size until the admins
        name it. Returns (size where the old key ends, new public key)."""
        await self.sign_pending()
        async with self._lock:
            size = self._signed.checkpoint.size if self._signed else 0
            key = self._keys.begin_rotation(size)
        return size, key.public

    def roster_changed(self, previous: Roster) -> None:
        """A new roster may name a key for entries that wait for a signature."""
        self._unsigned.set()
