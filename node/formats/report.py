"""Transparency reports: what the consortium shared over a period, read offline from the data
of one or more nodes. Entries by member, label and incident; retractions and disputes;
agreement by member (how often other members confirmed or disputed its entries); and, for
every node whose data is given, how long takedowns took to arrive there (origin's timestamp to
that node's storing them). `render_html` draws the same as a self-contained page."""

from __future__ import annotations

import html
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from node.store.base import Store
from protocol.entries import Add, Confirm, Dispute, Retract, decode_entry
from protocol.errors import DecodeError

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
    #: (member whose entry it is about, "confirm" or "dispute", target log, target index), for
    #: each confirmation or dispute by another member.
    feedback: list[tuple[str, str, str, int]] = field(default_factory=list)


async def observe(
    store: Store, observer: str, member_of: Callable[[str], str], since_ms: int, until_ms: int
) -> Observed:
    seen = Observed(observer)
    for origin, head in (await store.log_heads()).items():
        member = member_of(origin)
        for start in range(0, head.size, PAGE):
            rows = await store.arrivals(origin, start, min(head.size, start + PAGE))
            for offset, (raw, received_ms) in enumerate(rows):
                try:
                    entry = decode_entry(raw)
                except DecodeError:
                    continue
                if not since_ms <= entry.timestamp_ms < until_ms:
                    continue
                _count(seen, member, origin, start + offset, entry)
                if isinstance(entry, Confirm | Dispute) and entry.target.log != origin:
                    kind = "confirm" if isinstance(entry, Confirm) else "dispute"
                    target = entry.target
                    seen.feedback.append((member_of(target.log), kind, target.log, target.index))
                if isinstance(entry, Add) and member != observer:
                    seen.delays_ms.append(max(0, received_ms - entry.timestamp_ms))
    return seen


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


def build_report(observed: list[Observed], since_ms: int, until_ms: int) -> dict[str, Any]:
    """Combine nodes' observations: counts from the most complete one, delays from each."""
    fullest = max(observed, key=lambda o: sum(o.counts.values()))
    by_member: dict[str, dict[str, int]] = {}
    for (member, kind), n in sorted(fullest.counts.items()):
        by_member.setdefault(member, {"add": 0, "retract": 0, "dispute": 0})[kind] = n
    return {
        "period": {"from_ms": since_ms, "until_ms": until_ms},
        "sources": [o.observer for o in observed],
        "entries_by_member": by_member,
        "adds_by_label": dict(fullest.labels.most_common()),
        "adds_by_incident": dict(fullest.incidents.most_common()),
        "retractions": sorted(fullest.retractions, key=lambda r: r["timestamp_ms"]),
        "disputes": sorted(fullest.disputes, key=lambda d: d["timestamp_ms"]),
        "arrival_ms": {o.observer: _percentiles(o.delays_ms) for o in observed},
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
    adds = {m: float(c["add"]) for m, c in report["entries_by_member"].items()}
    arrivals = {m: float(p["p50"]) for m, p in report["arrival_ms"].items() if p["count"]}
    items = [
        _bars("Takedowns shared, by member", adds),
        _bars("Takedowns by label", {k: float(v) for k, v in report["adds_by_label"].items()}),
        _bars(
            "Takedowns by incident", {k: float(v) for k, v in report["adds_by_incident"].items()}
        ),
        _bars("Median time from takedown to arrival, by member", arrivals, " ms"),
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
