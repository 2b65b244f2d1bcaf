"""Shaping the node's status into what the dashboard's pages show: members, logs, alerts.

Pure functions over the dictionaries that `node_status(service)` (node/core/status.py) and
the replicator's `peer_status()` return (the same ones the operator API serves as JSON), so the
pages and the API never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from node.store.disk_watch import DISK_LOW, DISK_WRITES_FAILED
from protocol.roster import Roster


@dataclass(frozen=True, slots=True)
class Alert:
    """Something an operator must look at. level: "critical", "warning" or "info"."""

    level: str
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class LogRow:
    member: str | None
    origin: str
    size: int
    checkpoint_size: int
    latest_seen: int
    own: bool
    held: bool
    cosigners: tuple[str, ...]
    #: The flag of entries the roster no longer vouches for (node/matching/policy.py), and how many.
    standing: str | None = None
    flagged_entries: int = 0
    removed: bool = False  # its member is no longer in the roster in force

    @property
    def behind(self) -> int:
        """Entries the origin has signed for that this node has not verified and stored yet."""
        return 0 if self.own else max(0, self.latest_seen - self.size)


@dataclass(frozen=True, slots=True)
class MemberRow:
    member_id: str
    display_name: str
    origin: str
    roles: tuple[str, ...]
    endpoint: str
    is_self: bool
    reachable: bool | None  # None: not tried yet (or this node itself)
    last_ok_ms: int | None
    last_error: str | None
    failures: int
    refusing: bool = False  # it answers but does not know us (a roster without us)


def log_rows(status: Mapping[str, Any]) -> list[LogRow]:
    rows = [
        LogRow(
            member=log.get("member"),
            origin=origin,
            size=int(log.get("size", 0)),
            checkpoint_size=int(log.get("checkpoint_size", 0)),
            latest_seen=int(log.get("latest_seen", log.get("size", 0))),
            own=bool(log.get("own")),
            held=bool(log.get("held")),
            cosigners=tuple(log.get("cosigners", ())),
            standing=log.get("standing"),
            flagged_entries=int(log.get("flagged_entries", 0)),
            removed=bool(log.get("removed")),
        )
        for origin, log in status["logs"].items()
    ]
    rows.sort(key=lambda r: (not r.own, r.member or "~", r.origin))
    return rows


def member_rows(
    roster: Roster, member_id: str, peers: Mapping[str, Mapping[str, Any]]
) -> list[MemberRow]:
    rows = []
    for m in roster.members:
        peer = peers.get(m.member_id, {})
        rows.append(
            MemberRow(
                member_id=m.member_id,
                display_name=m.display_name,
                origin=m.origin,
                roles=m.roles,
                endpoint=m.endpoints[0] if m.endpoints else "",
                is_self=m.member_id == member_id,
                reachable=peer.get("reachable"),
                last_ok_ms=peer.get("last_ok_ms"),
                last_error=peer.get("last_error"),
                failures=int(peer.get("failures", 0)),
                refusing=bool(peer.get("refusing")),
            )
        )
    return rows


def last_sync_ms(peers: Mapping[str, Mapping[str, Any]]) -> int | None:
    """When any peer last answered us: the last moment this node was known to be in touch."""
    times = [int(p["last_ok_ms"]) for p in peers.values() if p.get("last_ok_ms") is not None]
    return max(times, default=None)


def alerts(status: Mapping[str, Any], peers: Mapping[str, Mapping[str, Any]]) -> list[Alert]:
    """Every alert, the most severe first.

    The node's own alerts (equivocation, roster expiry, disk) come as its status gives them; peers
    that failed their last exchange add one each, with the error (a verification failure is
    one), and logs we are behind on add an informational line.
    """
    out = []
    for text in status.get("alerts", []):
        if text.startswith("equivocation"):
            out.append(Alert("critical", "equivocation", text))
        elif " are flagged: " in text:
            out.append(Alert("warning", "flagged", text))
        elif "NOT IN roster" in text or "EXPIRED" in text:
            out.append(Alert("critical", "roster", text))
        elif DISK_WRITES_FAILED in text:  # the node is refusing writes now
            out.append(Alert("critical", "disk", text))
        elif text.startswith(DISK_LOW):
            out.append(Alert("warning", "disk", text))
        else:
            out.append(Alert("warning", "roster" if "roster" in text else "node", text))
    for member_id, peer in peers.items():
        if peer.get("refusing"):
            error = peer.get("last_error") or "401"
            out.append(Alert("warning", "peer", f"peer {member_id} refuses us: {error}"))
        elif peer.get("reachable") is False:
            error = peer.get("last_error") or "no answer"
            failures = int(peer.get("failures", 0))
            out.append(
                Alert(
                    "warning",
                    "peer",
                    f"peer {member_id} is unreachable ({failures} failed in a row): {error}",
                )
            )
    for row in log_rows(status):
        if row.behind:
            who = row.member or row.origin
            out.append(Alert("info", "lag", f"{row.behind} entries of {who}'s log not here yet"))
    order = {"critical": 0, "warning": 1, "info": 2}
    out.sort(key=lambda a: order.get(a.level, 3))
    return out
