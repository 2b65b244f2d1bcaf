"""A node's match policy: what a hit on a hash means for this platform, given its provenance.

The consortium's view of a hash says who added it, who retracted or disputed it; each member
decides for itself what to do with that. Decisions:

  act     block or remove, as the platform's own rules for a confirmed hit say
  review  send to a human: the hash is contested, only untrusted members added it, or every
          add of it is flagged (below)
  ignore  every submission was retracted by its origin

A submission counts towards `act` when it is not retracted, not flagged, its origin is trusted
(all members are, unless `trusted_members` names some) and fewer than `act_below_disputes`
distinct other members dispute it. Then the hash is acted on when at least `act_agreement`
trusted members stand behind it (the origins of its live adds, the members that confirmed
one, the origins of near-duplicates: HashView.backers); below that it goes to review. The
consortium's default is the roster's `act_agreement`; a node may ask for more, never less.

A held entry is *flagged* (`EntryStanding`) when the roster in force no longer vouches for it:
its log's member was removed (`member-removed`), or it lies at or past the size S where the
member's key was declared compromised and no checkpoint this node holds signed by a valid key
covers it (`past-compromised-key`). Flags are decided here, once, for every endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from protocol.entries import EntryRef
from protocol.roster import Roster
from protocol.trust import compromise_of
from protocol.view import HashView

ACT, REVIEW, IGNORE = "act", "review", "ignore"
MEMBER_REMOVED, PAST_COMPROMISED_KEY = "member-removed", "past-compromised-key"


@dataclass(frozen=True, slots=True)
class EntryStanding:
    """Which held entries the roster in force no longer vouches for; call it with a ref."""

    origins: frozenset[str] = frozenset()
    #: origin -> the first index flagged as past a compromised key.
    flagged_from: Mapping[str, int] = field(default_factory=dict)
    #: With no roster to judge by (tests, tools), nothing is flagged.
    judged: bool = False

    def __call__(self, ref: EntryRef) -> str | None:
        if not self.judged:
            return None
        if ref.log not in self.origins:
            return MEMBER_REMOVED
        start = self.flagged_from.get(ref.log)
        return PAST_COMPROMISED_KEY if start is not None and ref.index >= start else None


def entry_standing(roster: Roster, vouched: Mapping[str, int] | None = None) -> EntryStanding:
    """The standing of entries under `roster`. `vouched` gives, per log, the size of the newest
    checkpoint held that the roster trusts; without it, a successor key counts as vouching for
    the log past the compromise (a match server, which does not judge checkpoints)."""
    flagged_from: dict[str, int] = {}
    for member in roster.members:
        compromise = compromise_of(member)
        if compromise is None or not member.writes:
            continue
        if vouched is not None:
            held = vouched.get(member.origin, 0)
            flagged_from[member.origin] = max(compromise.last_trusted, held)
        elif not compromise.successor:
            flagged_from[member.origin] = compromise.last_trusted
    return EntryStanding(frozenset(roster.origins()), flagged_from, judged=True)


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    act_below_disputes: int = 1
    trusted_origins: frozenset[str] | None = None  # None: every member is trusted
    act_agreement: int = 1  # act when at least this many trusted members stand behind it


def policy_from(
    act_below_disputes: int, trusted_members: str, roster: Roster, act_agreement: int = 1
) -> MatchPolicy:
    """The policy a node's settings describe; `trusted_members` is comma-separated member ids;
    the agreement asked for is the roster's or the node's `act_agreement`, whichever is more."""
    trusted = [m.strip() for m in trusted_members.split(",") if m.strip()]
    origins = frozenset(m.origin for m in roster.members if m.member_id in trusted)
    agreement = max(roster.act_agreement, act_agreement)
    return MatchPolicy(act_below_disputes, origins if trusted else None, agreement)


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
    standing = [s for s in trusted if s.standing is None]
    if not standing:
        flags = ", ".join(sorted({s.standing for s in trusted if s.standing}))
        return Decision(REVIEW, f"every add of it is flagged: {flags}")
    trusted = standing
    for s in trusted:
        disputers = {d.ref.log for d in s.disputes if d.ref.log != s.ref.log}
        if len(disputers) < policy.act_below_disputes:
            backers = len(view.backers(policy.trusted_origins))
            if backers < policy.act_agreement:
                return Decision(
                    REVIEW,
                    f"{backers} member(s) stand behind it; this node acts at"
                    f" {policy.act_agreement}",
                )
            return Decision(
                ACT,
                f"added by {s.ref.log}, {backers} member(s) stand behind it,"
                f" disputed by {len(disputers)}",
            )
    return Decision(REVIEW, f"disputed by {policy.act_below_disputes} or more members")
