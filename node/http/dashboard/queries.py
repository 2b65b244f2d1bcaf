"""What the dashboard shows, read from the node: recent entries of every log, incidents
counted in takedowns (node.formats.takedowns: one removed file's hashes), retracted ones apart,
and the review queue's hashes with their current views.

The store has no "latest entries" or "by incident" index, so both are read from the tail of
each log (a bounded number of entries per log) and their arrival times looked up through the
indexes it does have (adds by hash, retractions and disputes by target). Entries that do not
decode were kept for the Merkle tree only and are skipped here, as lookups skip them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from node.core.service import NodeService
from node.core.status import node_status
from node.formats.json_views import view_json
from node.formats.takedowns import Takedown, group_takedowns
from node.matching.review_queue import needs_review
from protocol.entries import Add, Confirm, Dispute, Entry, EntryRef, Retract, decode_entry
from protocol.errors import DecodeError, RosterError
from protocol.signals import value_key, value_text

FEED_PER_LOG = 50
INCIDENT_SCAN_PER_LOG = 2_000


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One entry of some member's log as an operator reads it."""

    origin: str
    index: int
    member: str | None
    kind: str  # "add", "retract", "dispute" or "confirm"
    timestamp_ms: int  # when the origin says it acted
    received_ms: int  # when this node stored it
    signal_type: str = ""
    value: str = ""
    labels: tuple[str, ...] = ()
    incident: str | None = None
    target: EntryRef | None = None
    note: str = ""

    @property
    def delay_ms(self) -> int:
        return max(0, self.received_ms - self.timestamp_ms)

    def to_json(self) -> dict[str, object]:
        return {
            "member": self.member,
            "log": self.origin,
            "index": self.index,
            "kind": self.kind,
            "timestamp_ms": self.timestamp_ms,
            "received_ms": self.received_ms,
            "delay_ms": self.delay_ms,
            "signal_type": self.signal_type,
            "value": self.value,
            "labels": list(self.labels),
            "incident": self.incident,
            "target": None if self.target is None else f"{self.target.log}#{self.target.index}",
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class MemberArrival:
    """One member's part in an incident: its takedowns (standing, and retracted apart), their
    hash entries, when it first submitted one and when that was first here."""

    member: str | None
    origin: str
    takedowns: int
    retracted: int
    hashes: int
    first_timestamp_ms: int
    first_received_ms: int


@dataclass(frozen=True, slots=True)
class Incident:
    incident_id: str
    hashes: tuple[FeedItem, ...]  # oldest first
    members: tuple[MemberArrival, ...]  # by first submission
    takedowns: int  # standing: not every entry retracted by its origin
    retracted: int

    @property
    def latest_ms(self) -> int:
        return max(h.received_ms for h in self.hashes)


@dataclass(frozen=True, slots=True)
class ReviewItem:
    """A queued hash as the review page shows it: its view (JSON), the one submission that
    stands behind it, and when this platform first matched it."""

    view: dict[str, Any]
    submission: dict[str, Any]
    first_matched_ms: int


async def review_items(service: NodeService) -> list[ReviewItem]:
    """The review queue, oldest first, with each hash's current view; hashes that no longer
    need review (confirmed, corroborated, retracted) leave the queue."""
    queued = service.review_queue.oldest_first()
    by_type: dict[str, list[bytes | str]] = {}
    for q in queued:
        by_type.setdefault(q.signal_type, []).append(q.value)
    views = {}
    for signal_type, values in by_type.items():
        found = await service.lookup(signal_type, values)
        service.review_queue.settle(found)
        views.update({(v.signal_type, v.value): v for v in found})
    member_of = member_lookup(service)
    items = []
    for q in queued:
        view = views.get((q.signal_type, q.value))
        if view is None or not needs_review(view, service.origin):
            continue
        shown = view_json(view, member_of)
        live = [s for s in shown["submissions"] if s["active"] and not s["standing"]]
        if not live:
            continue  # its one backer is a near-duplicate's origin: nothing here to confirm
        items.append(ReviewItem(shown, live[0], q.first_matched_ms))
    return items


def member_lookup(service: NodeService) -> Callable[[str], str | None]:
    def member_of(origin: str) -> str | None:
        try:
            return service.rosters.roster.member_by_origin(origin).member_id
        except RosterError:  # a removed member's log stays readable
            return None

    return member_of


async def recent_entries(service: NodeService, limit: int = FEED_PER_LOG) -> list[FeedItem]:
    """The newest entries this node stored, across every log, newest arrival first."""
    items = await _tail(service, limit)
    items.sort(key=lambda i: (i.received_ms, i.timestamp_ms, i.index), reverse=True)
    return items[:limit]


async def incidents(service: NodeService, per_log: int = INCIDENT_SCAN_PER_LOG) -> list[Incident]:
    """Adds that name an incident, grouped by it and into takedowns; the most recently active
    incident first."""
    located: list[tuple[str, int, Entry]] = []
    adds: list[tuple[str, int, Add]] = []
    for origin, index, entry in await _read_tail(service, per_log, adds_only=True):
        if isinstance(entry, Add) and entry.incident is not None:
            located.append((origin, index, entry))
            adds.append((origin, index, entry))
    items = {(i.origin, i.index): i for i in await _items(service, located)}
    retracted = await _retracted(service, list(items))
    grouped: dict[str, list[Takedown]] = {}
    for takedown in group_takedowns(adds):
        grouped.setdefault(takedown.incident or "", []).append(takedown)
    out = []
    for incident_id, takedowns in grouped.items():
        hashes = [items[(t.origin, i)] for t in takedowns for i in t.indexes()]
        hashes.sort(key=lambda h: (h.timestamp_ms, h.origin, h.index))
        gone = sum(1 for t in takedowns if t.retracted_by(retracted))
        rows = _arrivals(takedowns, items, retracted)
        out.append(Incident(incident_id, tuple(hashes), rows, len(takedowns) - gone, gone))
    out.sort(key=lambda i: i.latest_ms, reverse=True)
    return out


async def _retracted(service: NodeService, adds: list[tuple[str, int]]) -> set[tuple[str, int]]:
    """Which of these adds their origin retracted, through the store's index of targets."""
    out: set[tuple[str, int]] = set()
    if not adds:
        return out
    for found in await service.store.find_references(sorted(adds)):
        try:
            entry = decode_entry(found.raw)
        except DecodeError:
            continue
        if isinstance(entry, Retract) and entry.target.log == found.log:
            out.add((entry.target.log, entry.target.index))
    return out


def _arrivals(
    takedowns: list[Takedown],
    items: dict[tuple[str, int], FeedItem],
    retracted: set[tuple[str, int]],
) -> tuple[MemberArrival, ...]:
    by_origin: dict[str, list[Takedown]] = {}
    for takedown in takedowns:
        by_origin.setdefault(takedown.origin, []).append(takedown)
    rows = []
    for origin, own in by_origin.items():
        shown = [items[(origin, i)] for t in own for i in t.indexes()]
        gone = sum(1 for t in own if t.retracted_by(retracted))
        rows.append(
            MemberArrival(
                shown[0].member,
                origin,
                len(own) - gone,
                gone,
                len(shown),
                min(i.timestamp_ms for i in shown),
                min(i.received_ms for i in shown),
            )
        )
    rows.sort(key=lambda r: (r.first_timestamp_ms, r.origin))
    return tuple(rows)


async def _tail(service: NodeService, per_log: int, adds_only: bool = False) -> list[FeedItem]:
    return await _items(service, await _read_tail(service, per_log, adds_only))


async def _read_tail(
    service: NodeService, per_log: int, adds_only: bool
) -> list[tuple[str, int, Entry]]:
    """The last `per_log` entries of every log that decode, in log order, as (origin, index,
    entry)."""
    located: list[tuple[str, int, Entry]] = []
    for origin, log in node_status(service)["logs"].items():
        size = int(log["size"])
        start = max(0, size - per_log)
        for offset, raw in enumerate(await service.store.entries(origin, start, size)):
            try:
                entry = decode_entry(raw)
            except DecodeError:
                continue
            if adds_only and not isinstance(entry, Add):
                continue
            located.append((origin, start + offset, entry))
    return located


async def _items(service: NodeService, located: list[tuple[str, int, Entry]]) -> list[FeedItem]:
    received = await _received_times(service, located)
    member_of = member_lookup(service)
    return [
        _item(origin, index, entry, member_of(origin), received.get((origin, index), 0))
        for origin, index, entry in located
    ]


async def _received_times(
    service: NodeService, located: list[tuple[str, int, Entry]]
) -> dict[tuple[str, int], int]:
    """When this node stored each entry, found through the store's two lookup indexes."""
    keys_by_type: dict[str, set[bytes]] = {}
    targets: set[tuple[str, int]] = set()
    for _, _, entry in located:
        if isinstance(entry, Add):
            keys_by_type.setdefault(entry.signal_type, set()).add(value_key(entry.value))
        else:
            targets.add((entry.target.log, entry.target.index))
    found = []
    for signal_type, keys in keys_by_type.items():
        found += await service.store.find_adds(signal_type, sorted(keys))
    if targets:
        found += await service.store.find_references(sorted(targets))
    return {(f.log, f.index): f.received_ms for f in found}


def _item(origin: str, index: int, entry: Entry, member: str | None, received: int) -> FeedItem:
    if isinstance(entry, Add):
        return FeedItem(
            origin,
            index,
            member,
            "add",
            entry.timestamp_ms,
            received,
            entry.signal_type,
            value_text(entry.signal_type, entry.value),
            entry.labels,
            entry.incident,
        )
    if isinstance(entry, Retract):
        return FeedItem(
            origin,
            index,
            member,
            "retract",
            entry.timestamp_ms,
            received,
            target=entry.target,
            note=entry.reason,
        )
    assert isinstance(entry, Dispute | Confirm)
    note = f"{entry.reason_code}: {entry.text}" if entry.text else entry.reason_code
    return FeedItem(
        origin,
        index,
        member,
        "dispute" if isinstance(entry, Dispute) else "confirm",
        entry.timestamp_ms,
        received,
        target=entry.target,
        note=note,
    )
