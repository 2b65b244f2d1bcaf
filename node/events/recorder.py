"""Events for the platform: every new add, retract, dispute or confirm of any log, as JSON.

`EventRecorder` records stored log entries as events in the outbox (node/events/outbox.py), a
range of entries a row; `EntryEvents` builds each event's JSON from the store's entry when the
event is read. The recorder's `listener` has the signature of PeerLogs.subscribe and
NodeService.on_own_checkpoint; at start `catch_up` records whatever entries the store gained
while the recorder was not listening (a crash between storing entries and recording them),
so no entry is ever missed.

The operator API's pull stream over the same event log is node/http/events_api.py.
"""

from __future__ import annotations

import functools
import json
import json.encoder
import logging
from collections.abc import Callable
from typing import Any

from node.core.listeners import DurableRange
from node.core.service import NodeService
from node.errors import StoreError
from node.events.outbox import Event, EventRange, Outbox
from node.formats.json_views import ref_json
from node.matching.lookups import Standing
from node.store.base import Store
from node.store.decoded import decoded_or_none
from protocol.entries import Add, Confirm, Dispute, EntryRef, Reference, Retract
from protocol.errors import RosterError
from protocol.signals import value_text

log = logging.getLogger(__name__)

KIND_NAMES = {Add: "add", Retract: "retract", Dispute: "dispute", Confirm: "confirm"}
#: One encoder for every payload: json.dumps with options builds a new one each call.
_JSON = json.JSONEncoder(ensure_ascii=False)
_json_str: Callable[[str], str] = json.encoder.encode_basestring  # what _JSON writes for a str


def member_lookup(service: NodeService) -> Callable[[str], str | None]:
    """origin -> member id under the roster in force (None for a log of a removed member)."""

    def member_of(origin: str) -> str | None:
        try:
            return service.rosters.roster.member_by_origin(origin).member_id
        except RosterError:
            return None

    return member_of


class EventRecorder:
    """Records new log entries as events: a range of entries a row (node/events/outbox.py).

    Nothing of an entry is read to record it: its event is built when it is read
    (`EntryEvents`), so a catch-up of a million entries costs the outbox a few hundred rows.
    """

    def __init__(
        self,
        outbox: Outbox,
        store: Store,
        member_of: Callable[[str], str | None],
        clock: Callable[[], int],
    ) -> None:
        self._outbox = outbox
        self._store = store
        self._member_of = member_of
        self._clock = clock

    async def catch_up(self) -> int:
        """Record every stored entry not yet recorded; returns the number of new events.

        On the very first start the logs' current sizes become the cursors: an existing
        node's history is not replayed to the platform as if it were new.
        """
        heads = await self._store.log_heads()
        cursors = await self._outbox.cursors()
        if cursors is None:
            await self._outbox.start_cursors({o: h.size for o, h in heads.items()})
            return 0
        recorded = 0
        for origin, head in sorted(heads.items()):
            if head.size > cursors.get(origin, 0):
                recorded += await self.record_up_to(origin, head.size)
        return recorded

    async def listener(self, told: DurableRange) -> None:
        """New entries of a log are durable: record their events (nothing of them is read).

        A failing outbox must not fail the ingest or the checkpoint signing that called us:
        the entries stay unrecorded behind the log's cursor, and the next entries of that log
        (or the catch-up at the next start) record them.
        """
        try:
            await self.record_up_to(told.origin, told.end)
        except StoreError as e:
            log.error("events of %s up to %d not recorded yet: %s", told.origin, told.end, e)

    async def record_up_to(self, origin: str, end: int) -> int:
        """Record `origin`'s entries from its cursor up to `end`; returns how many."""
        return await self._outbox.record(origin, end, self._member_of(origin), self._clock())


class EntryEvents:
    """The outbox's EventBuilder: the events of a recorded range, from the store's entries.

    Events are read at the pace of the webhook sender and of platforms pulling, apart from the
    listeners of the range (node/core/listeners.py) and often after it has left their cache of
    recent decodings, so the entries are read from the store and decoded here.
    """

    def __init__(
        self,
        store: Store,
        member_of: Callable[[str], str | None],
        standing: Callable[[], Standing] | None = None,
    ) -> None:
        self._store = store
        self._member_of = member_of
        # Judged when an event is read, under the roster then in force (node/matching/policy.py).
        self._standing = standing

    async def __call__(self, recorded: EventRange, start: int, stop: int) -> list[Event]:
        origin = recorded.log
        decoded = map(decoded_or_none, await self._store.entries(origin, start, stop))
        standing = self._standing() if self._standing else None
        payloads = AddPayloads(origin, recorded.member, recorded.received_ms, standing)
        events = []
        for index, entry in enumerate(decoded, start):
            if entry is None:
                continue  # kept in the log, but it carries nothing a platform can act on
            event_id = recorded.id_of(index)
            if isinstance(entry, Add):
                events.append(Event(event_id, "add", payloads.payload(index, entry)))
            else:
                body = await self._reference_body(payloads, index, entry)
                events.append(Event(event_id, KIND_NAMES[type(entry)], body))
        return events

    async def _reference_body(self, payloads: AddPayloads, index: int, entry: Reference) -> str:
        """The JSON of a retract, dispute or confirm, with the hash of the add it is about."""
        body: dict[str, Any] = {
            "log": payloads.origin,
            "index": index,
            "member": payloads.member,
            "timestamp_ms": entry.timestamp_ms,
            "received_ms": payloads.received_ms,
            "target": ref_json(entry.target),
            "target_member": self._member_of(entry.target.log),
            "standing": payloads.standing_of(index),
        }
        target = await self._target(entry.target)
        body.update(_hash_fields(target) if target else _hash_fields(None))
        if isinstance(entry, Retract):
            body["reason"] = entry.reason
        else:
            body["reason_code"] = entry.reason_code
            body["text"] = entry.text
        return _JSON.encode(body)

    async def _target(self, ref: EntryRef) -> Add | None:
        """The add a retract or dispute is about, so the platform knows which hash it means."""
        raws = await self._store.entries(ref.log, ref.index, ref.index + 1)
        if not raws:
            return None
        entry = decoded_or_none(raws[0])
        return entry if isinstance(entry, Add) else None


class AddPayloads:
    """The JSON payloads of one range's add events, exactly as `add_body` encoded would be.

    Built from pieces encoded once a range (and label sets once): catch-up records an event
    an entry, and encoding each body as a dict was a quarter of its CPU time.
    """

    def __init__(
        self, origin: str, member: str | None, received_ms: int, standing: Standing | None = None
    ) -> None:
        self.origin = origin
        self.member = member
        self.received_ms = received_ms
        self._standing = standing
        self._head = '{"log": ' + _json_str(origin) + ', "index": '
        self._member = ', "member": ' + _JSON.encode(member) + ', "timestamp_ms": '
        self._received = f', "received_ms": {received_ms}, "signal_type": '

    def payload(self, index: int, add: Add) -> str:
        value = _json_str(value_text(add.signal_type, add.value))
        incident = "null" if add.incident is None else _json_str(add.incident)
        return (
            f"{self._head}{index}{self._member}{add.timestamp_ms}{self._received}"
            f'{_json_str(add.signal_type)}, "value": {value}, "labels": {_labels(add.labels)},'
            f' "incident": {incident}, "standing": {_JSON.encode(self.standing_of(index))}}}'
        )

    def standing_of(self, index: int) -> str | None:
        """The entry's flag (node/matching/policy.py), None when the roster vouches for it."""
        return self._standing(EntryRef(self.origin, index)) if self._standing else None

    def add_body(self, index: int, add: Add) -> dict[str, Any]:
        """The payload as a dict (the reference form `payload` must encode to)."""
        body: dict[str, Any] = {
            "log": self.origin,
            "index": index,
            "member": self.member,
            "timestamp_ms": add.timestamp_ms,
            "received_ms": self.received_ms,
        }
        body.update(_hash_fields(add))
        body["standing"] = self.standing_of(index)
        return body


@functools.lru_cache(maxsize=256)
def _labels(labels: tuple[str, ...]) -> str:
    return _JSON.encode(list(labels))


def _hash_fields(add: Add | None) -> dict[str, Any]:
    if add is None:
        return {"signal_type": None, "value": None, "labels": [], "incident": None}
    return {
        "signal_type": add.signal_type,
        "value": value_text(add.signal_type, add.value),
        "labels": list(add.labels),
        "incident": add.incident,
    }
