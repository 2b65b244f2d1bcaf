"""Transparency reports: what the consortium shared over a period, read offline from the data
of one or more nodes. Takedowns (removed files, node.formats.takedowns, not hash entries) by
member, label and incident, retracted ones apart; entries by member; retractions and disputes;
members the rosters removed or whose key they declared compromised in the period; agreement by
member (how often other members confirmed or disputed its entries); and, for every
node whose data is given, how long takedowns took to arrive there (origin's timestamp to that
node's storing them), leaving out the history a member's node caught up on when it joined
(takedowns made before the first roster naming it was issued). `render_html` draws the same
as a self-contained page."""

from __future__ import annotations

import html
import itertools
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from node.formats.takedowns import Takedown, TakedownGrouper
from node.store.base import Store
from protocol.entries import Add, Confirm, Dispute, Retract, decode_entry
from protocol.errors import DecodeError
from protocol.roster import Roster

PAGE = 10_000


@dataclass
class Observed:
    """What one node's data says about the period."""

    observer: str
    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (member, kind)
    labels: Counter[str] = field(default_factory=Counter)
    incidents: Counter[str] = field(default_factory=Counter)
    retractions: list[dict[str, Any]] = field(default_factory=list)
    disputes: list[dict[str, Any]] = field(default_factory=list)
    delays_ms: list[int] = field(default_factory=list)
    #: Takedowns made before this node's member joined: history it caught up on, not arrivals.
    caught_up: int = 0
    takedowns: list[Takedown] = field(default_factory=list)
    #: (origin, index) of every add its origin retracted, whenever it did.
    retracted: set[tuple[str, int]] = field(default_factory=set)
    member_of: dict[str, str] = field(default_factory=dict)
    roster_changes: list[dict[str, Any]] = field(default_factory=list)
    #: (member whose entry it is about, "confirm" or "dispute", target log, target index), for
    #: each confirmation or dispute by another member.
    feedback: list[tuple[str, str, str, int]] = field(default_factory=list)


async def observe(
    store: Store,
    observer: str,
    member_of: Callable[[str], str],
    since_ms: int,
    until_ms: int,
    joined_ms: int | None = None,
) -> Observed:
    """What `observer`'s store says of the period; takedowns made before `joined_ms` (when the
    first roster naming the observer was issued) are history, left out of arrival times."""
    seen = Observed(observer)
    grouper = TakedownGrouper()
    first_received: dict[tuple[str, int], int] = {}
    for origin, head in (await store.log_heads()).items():
        member = seen.member_of[origin] = member_of(origin)
        for start in range(0, head.size, PAGE):
            rows = await store.arrivals(origin, start, min(head.size, start + PAGE))
            for offset, (raw, received_ms) in enumerate(rows):
                try:
                    entry = decode_entry(raw)
                except DecodeError:
                    continue
                if isinstance(entry, Retract) and entry.target.log == origin:
                    seen.retracted.add((origin, entry.target.index))
                if not since_ms <= entry.timestamp_ms < until_ms:
                    continue
                _count(seen, member, origin, start + offset, entry)
                if isinstance(entry, Confirm | Dispute) and entry.target.log != origin:
                    kind = "confirm" if isinstance(entry, Confirm) else "dispute"
                    target = entry.target
                    seen.feedback.append((member_of(target.log), kind, target.log, target.index))
                if isinstance(entry, Add):
                    grouper.add(origin, start + offset, entry)
                    first_received[(origin, start + offset)] = received_ms
    seen.takedowns = grouper.takedowns()
    for takedown in seen.takedowns:
        if seen.member_of[takedown.origin] == observer:
            continue
        if joined_ms is not None and takedown.timestamp_ms < joined_ms:
            seen.caught_up += 1
            continue
        arrived = first_received[(takedown.origin, takedown.first_index)]
        seen.delays_ms.append(max(0, arrived - takedown.timestamp_ms))
    return seen


def roster_changes(rosters: list[Roster], since_ms: int, until_ms: int) -> list[dict[str, Any]]:
    """Members a roster issued in the period removed, or whose checkpoint key it declared
    compromised (with the last log size still trusted), from a node's chain of rosters."""
    by_version = {r.version: r for r in rosters}
    ordered = [by_version[v] for v in sorted(by_version)]
    changes: list[dict[str, Any]] = []
    for before, after in itertools.pairwise(ordered):
        if not since_ms <= after.issued_ms < until_ms:
            continue
        kept = {m.member_id: m for m in after.members}
        for old in before.members:
            new = kept.get(old.member_id)
            change: dict[str, Any] = {
                "member": old.member_id,
                "roster_version": after.version,
                "issued_ms": after.issued_ms,
            }
            if new is None:
                changes.append({**change, "change": "removed"})
                continue
            was = {k.public for k in old.checkpoint_keys if k.compromised}
            for key in new.checkpoint_keys:
                if key.compromised and key.public not in was:
                    changes.append(
                        {**change, "change": "key-compromised", "last_trusted_size": key.last_size}
                    )
    return changes


def _count(seen: Observed, member: str, origin: str, index: int, entry: object) -> None:
    if isinstance(entry, Add):
        seen.counts[(member, "add")] += 1
        seen.labels.update(entry.labels)
        if entry.incident:
            seen.incidents[entry.incident] += 1
    elif isinstance(entry, Retract):
        seen.counts[(member, "retract")] += 1
        seen.retractions.append(
            {
                "member": member,
                "log": origin,
                "index": index,
                "reason": entry.reason,
                "target": [entry.target.log, entry.target.index],
                "timestamp_ms": entry.timestamp_ms,
            }
        )
    elif isinstance(entry, Dispute):
        seen.counts[(member, "dispute")] += 1
        seen.disputes.append(
            {
                "member": member,
                "log": origin,
                "index": index,
                "reason_code": entry.reason_code,
                "text": entry.text,
                "target": [entry.target.log, entry.target.index],
                "timestamp_ms": entry.timestamp_ms,
            }
        )


def _percentiles(values: list[int]) -> dict[str, float]:
    if not values:
        return {"count": 0}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])

    return {
        "count": len(ordered),
        "p50": float(statistics.median(ordered)),
        "p90": pick(0.9),
        "p99": pick(0.99),
        "max": float(ordered[-1]),
    }


def _takedown_counts(
    seen: Observed,
) -> tuple[dict[str, dict[str, int]], Counter[str], Counter[str]]:
    """Takedowns by member (standing and retracted apart, with their hash entries), and the
    standing ones by label and by incident."""
    by_member: dict[str, dict[str, int]] = {}
    labels: Counter[str] = Counter()
    incidents: Counter[str] = Counter()
    for takedown in seen.takedowns:
        member = seen.member_of[takedown.origin]
        row = by_member.setdefault(member, {"takedowns": 0, "retracted": 0, "hash_entries": 0})
        row["hash_entries"] += takedown.hashes
        if takedown.retracted_by(seen.retracted):
            row["retracted"] += 1
            continue
        row["takedowns"] += 1
        labels.update(takedown.labels)
        if takedown.incident:
            incidents[takedown.incident] += 1
    return dict(sorted(by_member.items())), labels, incidents


def build_report(observed: list[Observed], since_ms: int, until_ms: int) -> dict[str, Any]:
    """Combine nodes' observations: counts from the most complete one, delays from each."""
    fullest = max(observed, key=lambda o: sum(o.counts.values()))
    by_member: dict[str, dict[str, int]] = {}
    for (member, kind), n in sorted(fullest.counts.items()):
        by_member.setdefault(member, {"add": 0, "retract": 0, "dispute": 0})[kind] = n
    takedowns, labels, incidents = _takedown_counts(fullest)
    changes = {
        (c["member"], c["change"], c["roster_version"]): c
        for o in observed
        for c in o.roster_changes
    }
    return {
        "period": {"from_ms": since_ms, "until_ms": until_ms},
        "sources": [o.observer for o in observed],
        "takedowns_by_member": takedowns,
        "takedowns_by_label": dict(labels.most_common()),
        "takedowns_by_incident": dict(incidents.most_common()),
        "entries_by_member": by_member,
        "adds_by_label": dict(fullest.labels.most_common()),
        "adds_by_incident": dict(fullest.incidents.most_common()),
        "retractions": sorted(fullest.retractions, key=lambda r: r["timestamp_ms"]),
        "disputes": sorted(fullest.disputes, key=lambda d: d["timestamp_ms"]),
        "roster_changes": sorted(changes.values(), key=lambda c: (c["issued_ms"], c["member"])),
        "arrival_ms": {
            o.observer: {**_percentiles(o.delays_ms), "caught_up_excluded": o.caught_up}
            for o in observed
        },
        "agreement_by_member": _agreement(fullest),
    }


def _agreement(seen: Observed) -> dict[str, dict[str, int]]:
    """Per member: its adds in the period, and how often other members confirmed or disputed
    its entries (confirmations and disputes made in the period, and the entries they name)."""
    rows: dict[str, dict[str, int]] = {}
    targets: dict[tuple[str, str], set[tuple[str, int]]] = {}
    for member, kind, log, index in seen.feedback:
        targets.setdefault((member, kind), set()).add((log, index))
    members = {m for (m, kind) in seen.counts if kind == "add"} | {m for m, _ in targets}
    for member in sorted(members):
        rows[member] = {
            "adds": seen.counts[(member, "add")],
            "confirmations_received": sum(
                1 for m, k, _, _ in seen.feedback if m == member and k == "confirm"
            ),
            "entries_confirmed": len(targets.get((member, "confirm"), ())),
            "disputes_received": sum(
                1 for m, k, _, _ in seen.feedback if m == member and k == "dispute"
            ),
            "entries_disputed": len(targets.get((member, "dispute"), ())),
        }
    return rows


def _bars(title: str, data: dict[str, float], unit: str = "") -> str:
    if not data:
        return f"<h2>{html.escape(title)}</h2><p>None in this period.</p>"
    top = max(data.values()) or 1.0
    height = 22 * len(data) + 10
    rows = []
    for i, (name, value) in enumerate(data.items()):
        width = 420 * value / top
        y = 22 * i + 5
        rows.append(
            f'<text x="0" y="{y + 14}">{html.escape(name)}</text>'
            f'<rect x="200" y="{y}" width="{width:.1f}" height="16" fill="#3b6ea5"/>'
            f'<text x="{205 + width:.1f}" y="{y + 14}">{value:g}{unit}</text>'
        )
    return (
        f"<h2>{html.escape(title)}</h2>"
        f'<svg width="720" height="{height}" role="img" aria-label="{html.escape(title)}">'
        + "".join(rows)
        + "</svg>"
    )


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _member_table(takedowns: dict[str, dict[str, int]]) -> str:
    rows = "".join(
        f"<tr><td>{html.escape(m)}</td><td>{c['takedowns']}</td><td>{c['retracted']}</td>"
        f"<td>{c['hash_entries']}</td></tr>"
        for m, c in takedowns.items()
    )
    return (
        "<table><tr><th>member</th><th>takedowns</th><th>retracted</th><th>hash entries</th>"
        f"</tr>{rows}</table><p>A takedown is one removed file: the hashes of it one submit "
        "request added. It is retracted once every one of them is.</p>"
    )


def _caught_up_note(arrivals: dict[str, dict[str, Any]]) -> str:
    notes = [
        f"{html.escape(m)}: {p['caught_up_excluded']}"
        for m, p in arrivals.items()
        if p["caught_up_excluded"]
    ]
    if not notes:
        return ""
    return (
        "<p>Left out of the arrival times: takedowns made before the member joined (the first "
        "roster naming it), which its node fetched as history when it started "
        f"({'; '.join(notes)}).</p>"
    )


def _roster_changes(changes: list[dict[str, Any]]) -> str:
    head = f"<h2>Members removed or with a compromised key ({len(changes)})</h2>"
    if not changes:
        return head + "<p>None in this period.</p>"
    rows = []
    for c in changes:
        what = (
            "removed"
            if c["change"] == "removed"
            else (
                "checkpoint key compromised; entries past size "
                f"{c['last_trusted_size']} not trusted"
            )
        )
        rows.append(
            f"<tr><td>{_day(c['issued_ms'])}</td><td>{html.escape(c['member'])}</td>"
            f"<td>{what}</td><td>roster v{c['roster_version']}</td></tr>"
        )
    return (
        head
        + "<table><tr><th>when</th><th>member</th><th>what</th><th>by</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _agreement_table(rows: dict[str, dict[str, int]]) -> str:
    out = [
        "<h2>Agreement by member</h2>",
        "<p>How often other members confirmed or disputed each member's entries.</p>",
        "<table><tr><th>member</th><th>adds</th><th>confirmations</th>"
        "<th>entries confirmed</th><th>disputes</th><th>entries disputed</th></tr>",
    ]
    for member, r in rows.items():
        cells = (
            r["adds"],
            r["confirmations_received"],
            r["entries_confirmed"],
            r["disputes_received"],
            r["entries_disputed"],
        )
        numbers = "".join(f"<td>{n}</td>" for n in cells)
        out.append(f"<tr><td>{html.escape(member)}</td>{numbers}</tr>")
    out.append("</table>")
    return "".join(out)


def render_html(report: dict[str, Any]) -> str:
    period = report["period"]
    takedowns = report["takedowns_by_member"]
    shared = {m: float(c["takedowns"]) for m, c in takedowns.items()}
    arrivals = {m: float(p["p50"]) for m, p in report["arrival_ms"].items() if p["count"]}
    by_label = report["takedowns_by_label"]
    items = [
        _bars("Takedowns shared, by member (retracted ones left out)", shared),
        _member_table(takedowns),
        _bars("Takedowns by label", {k: float(v) for k, v in by_label.items()}),
        _bars(
            "Takedowns by incident",
            {k: float(v) for k, v in report["takedowns_by_incident"].items()},
        ),
        _bars("Median time from takedown to arrival, by member", arrivals, " ms"),
        _caught_up_note(report["arrival_ms"]),
        _roster_changes(report["roster_changes"]),
    ]
    listing = [_agreement_table(report.get("agreement_by_member", {}))]
    for title, rows in (("Retractions", report["retractions"]), ("Disputes", report["disputes"])):
        listing.append(
            f"<h2>{title} ({len(rows)})</h2>"
            "<table><tr><th>when</th><th>by</th><th>entry</th><th>why</th></tr>"
        )
        for r in rows:
            why = r.get("reason") or f"{r.get('reason_code')}: {r.get('text', '')}"
            listing.append(
                f"<tr><td>{_day(r['timestamp_ms'])}</td><td>{html.escape(r['member'])}</td>"
                f"<td>{html.escape(r['target'][0])} #{r['target'][1]}</td>"
                f"<td>{html.escape(why)}</td></tr>"
            )
        listing.append("</table>")
    return (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        "<title>hashmesh transparency report</title>"
        "<style>body{font:14px sans-serif;max-width:760px;margin:2em auto}"
        "td,th{padding:2px 8px;text-align:left}svg text{font:12px sans-serif}</style>"
        f"<h1>Transparency report</h1><p>{_day(period['from_ms'])} to {_day(period['until_ms'])}"
        f"; data of {html.escape(', '.join(report['sources']))}</p>"
        + "".join(items)
        + "".join(listing)
    )
