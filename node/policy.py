"""A node's match policy: what a hit on a hash means for this platform, given its provenance.

The consortium's view of a hash says who added it, who retracted or disputed it; each member
decides for itself what to do with that. Decisions:

  act     block or remove, as the platform's own rules for a confirmed hit say
  review  send to a human: the hash is contested, or only untrusted members added it
  ignore  every submission was retracted by its origin

A submission counts towards `act` when it is not retracted, its origin is trusted (all members
are, unless `trusted_members` names some) and fewer than `act_below_disputes` distinct other
members dispute it.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.roster import Roster
from protocol.view import HashView

ACT, REVIEW, IGNORE = "act", "review", "ignore"


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    act_below_disputes: int = 1
    trusted_origins: frozenset[str] | None = None  # None: every member is trusted


def policy_from(act_below_disputes: int, trusted_members: str, roster: Roster) -> MatchPolicy:
    """The policy a node's settings describe; `trusted_members` is comma-separated member ids."""
    trusted = [m.strip() for m in trusted_members.split(",") if m.strip()]
    origins = frozenset(m.origin for m in roster.members if m.member_id in trusted)
    return MatchPolicy(act_below_disputes, origins if trusted else None)


@dataclass(frozen=True, slots=True)
class Decision:
    action: str
    reason: str


def decide(view: HashView, policy: MatchPolicy) -> Decision | None:
    """The decision for a found hash; None when nothing was found."""
    if not view.submissions:
        return None
    live = [s for s in view.submissions if s.retraction is None]
    if not live:
        return Decision(IGNORE, "retracted by its origin")
    trusted = [
        s for s in live if policy.trusted_origins is None or s.ref.log in policy.trusted_origins
    ]
    if not trusted:
        return Decision(REVIEW, "added only by members this node does not trust")
    for s in trusted:
        disputers = {d.ref.log for d in s.disputes if d.ref.log != s.ref.log}
        if len(disputers) < policy.act_below_disputes:
            return Decision(ACT, f"added by {s.ref.log}, disputed by {len(disputers)}")
    return Decision(REVIEW, f"disputed by {policy.act_below_disputes} or more members")
