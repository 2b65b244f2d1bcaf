"""Listeners: tell each subscriber of newly durable entries, every failure kept to its listener.

The match index, the event recorder, the metrics, the witness and relay each hear of every
range of entries that became durable (a peer's stored batch, our own signed checkpoint).
`Listeners.notify` calls each in turn; one that raises costs only itself: the others still
hear of the range, and the caller (a pipeline, the checkpointer) carries on.

A listener that fails on a range owes it (so does one a cancellation cut short, or never
reached: the entries are durable all the same). The range is delivered to it again: merged in
front of that log's next range (so it still hears of each log's entries in order, which the
match index relies on: it skips indexes at or below the highest it holds), and by
`run_retries` with a growing delay, until it succeeds. Listeners are idempotent over a range
they have already handled (the match index skips what it holds, the event outbox keeps a
cursor, relay keeps the smallest start), so a re-delivery of a range half handled loses and
doubles nothing. What is owed is at most one range per (listener, log), and a re-delivery
reads at most REDELIVERY_CHUNK entries at a time. A restart rebuilds what listeners keep (the
index loads from the store, the recorder catches up), so nothing owed survives a restart.

A listener is handed one `DurableRange`: the log's origin, the range's start and end, the
peer the entries came from, and `entries()`, the range's decodings. Whoever makes a range
durable remembers its decodings here first (`remember`, into the cache of recent ranges,
node/store/decoded.py, which only this module reads); `entries()` resolves them from that
cache, else from the store and the strict decoder, on the first listener's ask, and every
other listener of that range is handed the same decodings. So a stored batch is decoded once
(when verified) and read back by no listener; a listener that needs no entries (witness,
relay, events) costs nothing to resolve. A re-delivered chunk is resolved for its listener.

Each failure is logged (with its traceback the first time a listener fails that way),
counted by listener (`failures`), and alerted for ALERT_MS afterwards and while anything is
owed (`alerts`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from node.store.base import Store
from node.store.decoded import DecodedEntries
from protocol.entries import Entry

log = logging.getLogger(__name__)


class Decodings:
    """The decodings of one range of a log (None: bytes that did not decode), resolved on the
    first ask and then shared by everyone who asks again."""

    __slots__ = ("_held", "_resolve")

    def __init__(self, resolve: Callable[[], Awaitable[Sequence[Entry | None]]]) -> None:
        self._resolve = resolve
        self._held: Sequence[Entry | None] | None = None

    @classmethod
    def of(cls, entries: Sequence[Entry | None]) -> Decodings:
        """Decodings already in hand."""
        made = cls(_nothing_to_resolve)
        made._held = entries
        return made

    async def get(self) -> Sequence[Entry | None]:
        if self._held is None:
            self._held = await self._resolve()
        return self._held


async def _nothing_to_resolve() -> Sequence[Entry | None]:
    raise AssertionError("decodings made in hand are never resolved")


@dataclass(frozen=True, slots=True)
class DurableRange:
    """Entries [start, end) of `origin`'s log, durable, as a listener hears of them."""

    origin: str
    start: int
    end: int
    #: The peer the entries came from; None for our own log, or entries found in the store.
    source: str | None
    decodings: Decodings = field(repr=False, compare=False)

    async def entries(self) -> Sequence[Entry | None]:
        """The decodings of the range's entries in order (None: bytes that did not decode);
        may raise StoreError (read from the store when no longer remembered)."""
        return await self.decodings.get()


#: Called after new entries of a log are durable.
Listener = Callable[[DurableRange], Awaitable[None]]

#: Seconds before the first retry of a failed delivery; doubled per failed retry up to the max.
RETRY_S = 1.0
RETRY_MAX_S = 60.0
#: Entries a re-delivery passes a listener at once (a long outage must not read them all).
REDELIVERY_CHUNK = 10_000
#: How long after a listener's last failure the node still alerts about it.
ALERT_MS = 15 * 60_000
#: Characters of a failure's message kept for the alert.
MAX_ERROR_CHARS = 200


@dataclass(frozen=True, slots=True)
class _Subscriber:
    name: str
    callback: Listener
    own: bool  # hears of our own log's checkpoints
    peers: bool  # hears of peers' stored batches


@dataclass(frozen=True, slots=True)
class _Owed:
    """A range of one log a listener failed on and still has to hear of."""

    start: int
    end: int
    source: str | None


@dataclass(frozen=True, slots=True)
class ListenerFailure:
    """A listener's latest failure."""

    origin: str
    start: int
    end: int
    error: str
    at_ms: int


class Listeners:
    """The subscribers of one node's logs, the ranges they owe, and their failures."""

    def __init__(self, own_origin: str, store: Store, clock: Callable[[], int]) -> None:
        self._own = own_origin
        self._store = store
        self._clock = clock
        self._subscribers: dict[str, _Subscriber] = {}
        # Keyed by listener name (set by the code) and a log's origin (verified, a member's).
        self._owed: dict[tuple[str, str], _Owed] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._owing = asyncio.Event()
        self._failures: dict[str, int] = {}
        self._latest: dict[str, ListenerFailure] = {}
        self._logged_as: dict[str, str] = {}
        # The decodings of the latest durable ranges, for the DurableRanges handed out.
        self._decoded = DecodedEntries()

    def remember(self, origin: str, start: int, decodings: Sequence[Entry | None]) -> None:
        """The decodings of entries [start, start+len) of `origin`, just made durable, for
        the listeners that will hear of them (None: the bytes did not decode)."""
        self._decoded.remember_range(origin, start, decodings)

    def add(self, callback: Listener, *, own: bool, name: str | None = None) -> None:
        """Subscribe `callback` to our own log (`own`) or to peers' logs; the same callback
        under the same name may subscribe to both."""
        name = name or str(getattr(callback, "__qualname__", repr(callback)))
        had = self._subscribers.get(name)
        if had is not None and had.callback != callback:
            raise ValueError(f"another listener is already named {name!r}")
        self._subscribers[name] = _Subscriber(
            name,
            callback,
            own or (had is not None and had.own),
            not own or (had is not None and had.peers),
        )
        self._failures.setdefault(name, 0)

    async def notify(self, origin: str, start: int, end: int, source: str | None) -> None:
        """Tell every subscriber that entries [start, end) of `origin` are durable, with
        whatever each still owes of that log in front. Never raises a listener's error."""
        own = origin == self._own
        pending = [s for s in self._subscribers.values() if (s.own if own else s.peers)]
        told = self._range(origin, start, end, source)  # one for all: decoded at most once
        try:
            async with self._lock(origin):
                while pending:
                    await self._deliver(pending[0], told)
                    del pending[0]
        except asyncio.CancelledError:
            # Cancelled (a pipeline cut short, the node stopping): the entries are durable all
            # the same, so whoever has not heard of them yet owes them.
            for sub in pending:
                self._owe(sub.name, origin, start, end, source)
            raise

    async def run_retries(self) -> None:
        """Re-deliver owed ranges until cancelled: after RETRY_S, doubling while they fail."""
        delay = RETRY_S
        while True:
            await self._owing.wait()
            await asyncio.sleep(delay)
            self._owing.clear()
            await self.retry_owed()
            delay = min(delay * 2, RETRY_MAX_S) if self._owed else RETRY_S

    async def retry_owed(self) -> None:
        """Re-deliver every owed range once."""
        for (name, origin), owed in list(self._owed.items()):
            async with self._lock(origin):
                sub = self._subscribers.get(name)
                if sub is not None and self._owed.get((name, origin)) == owed:
                    await self._deliver(sub, self._range(origin, owed.end, owed.end, owed.source))

    def failures(self) -> dict[str, int]:
        """Listener name -> failed deliveries since the start (every listener listed)."""
        return dict(self._failures)

    def owed_entries(self) -> dict[str, int]:
        """Listener name -> entries it failed on and has not yet handled."""
        out = dict.fromkeys(self._subscribers, 0)
        for (name, _), owed in self._owed.items():
            out[name] = out.get(name, 0) + owed.end - owed.start
        return out

    def alerts(self) -> list[str]:
        """A listener that failed within ALERT_MS, or still owes entries."""
        now = self._clock()
        owed = self.owed_entries()
        out = []
        for name, latest in sorted(self._latest.items()):
            waiting = owed.get(name, 0)
            if not waiting and now - latest.at_ms > ALERT_MS:
                continue
            ago_s = max(0, now - latest.at_ms) // 1000
            line = (
                f"listener {name} failed {self._failures[name]} times, last {ago_s} s ago on "
                f"entries {latest.start}-{latest.end} of {latest.origin}: {latest.error}"
            )
            if waiting:
                line += f"; {waiting} entries wait to be re-delivered to it"
            out.append(line)
        return out

    def _lock(self, origin: str) -> asyncio.Lock:
        """Deliveries of one log are made one at a time, so each listener hears in order."""
        lock = self._locks.get(origin)
        if lock is None:
            lock = self._locks[origin] = asyncio.Lock()
        return lock

    def _range(self, origin: str, start: int, end: int, source: str | None) -> DurableRange:
        """Entries [start, end) of `origin` for listeners, their decodings resolved once."""
        return DurableRange(
            origin,
            start,
            end,
            source,
            Decodings(lambda: self._decoded.read_decoded(self._store, origin, start, end)),
        )

    async def _deliver(self, sub: _Subscriber, told: DurableRange) -> None:
        """Deliver `told` to one listener, behind what it owes of that log; on failure it
        owes everything from the range that failed on."""
        origin, start, end, source = told.origin, told.start, told.end, told.source
        chunk = max(REDELIVERY_CHUNK, end - start)
        owed = self._owed.pop((sub.name, origin), None)
        if owed is not None:
            start, end = min(start, owed.start), max(end, owed.end)
        while start < end:
            stop = min(end, start + chunk)
            handed = told
            if (start, stop) != (told.start, told.end):  # a re-delivery: resolved for it
                handed = self._range(origin, start, stop, source)
            try:
                await sub.callback(handed)
            except Exception as e:  # a listener's failure is its own (see above)
                self._owe(sub.name, origin, start, end, source)
                self._failed(sub.name, origin, start, stop, e)
                return
            except BaseException:
                self._owe(sub.name, origin, start, end, source)
                raise
            start = stop
        if owed is not None:
            log.info("listener %s caught up on %s up to entry %d", sub.name, origin, end)

    def _owe(self, name: str, origin: str, start: int, end: int, source: str | None) -> None:
        had = self._owed.get((name, origin))
        if had is not None:
            start, end = min(start, had.start), max(end, had.end)
        self._owed[(name, origin)] = _Owed(start, end, source)
        self._owing.set()

    def _failed(self, name: str, origin: str, start: int, end: int, e: Exception) -> None:
        error = f"{type(e).__name__}: {e}"[:MAX_ERROR_CHARS]
        self._failures[name] = self._failures.get(name, 0) + 1
        self._latest[name] = ListenerFailure(origin, start, end, error, self._clock())
        if self._logged_as.get(name) != error:
            self._logged_as[name] = error
            log.error(
                "listener %s failed on entries %d-%d of %s (%s); it will hear of them again",
                *(name, start, end, origin, error),
                exc_info=e,
            )
        else:
            # The traceback once per distinct failure; repeats are one identical line each.
            log.error("listener %s failed again on %s (%s)", name, origin, error)
