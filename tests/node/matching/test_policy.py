"""The match policy: act, review or ignore, from a hash's provenance and this node's settings."""

from __future__ import annotations

import dataclasses

from node.matching.policy import (
    ACT,
    IGNORE,
    MEMBER_REMOVED,
    PAST_COMPROMISED_KEY,
    REVIEW,
    EntryStanding,
    MatchPolicy,
    decide,
    entry_standing,
    policy_from,
)
from protocol.entries import Add, Confirm, Dispute, EntryRef, Retract
from protocol.roster_members import CheckpointKey
from protocol.view import LocatedEntry, fold
from tests.support import make_members, make_roster

MEMBERS = make_members(2)

VALUE = bytes(16)


def add(log: str, index: int = 0) -> LocatedEntry:
    return LocatedEntry(EntryRef(log, index), Add(1, "md5", VALUE))


def dispute(by: str, log: str, index: int = 0) -> LocatedEntry:
    return LocatedEntry(EntryRef(by, 5), Dispute(2, EntryRef(log, index), "wrong-label", ""))


def retract(log: str, index: int = 0) -> LocatedEntry:
    return LocatedEntry(EntryRef(log, 9), Retract(3, EntryRef(log, index), "mistake"))


def test_nothing_found_has_no_decision() -> None:
    assert decide(fold("md5", VALUE, [], []), MatchPolicy()) is None


def test_an_undisputed_hash_is_acted_on() -> None:
    assert decide(fold("md5", VALUE, [add("a")], []), MatchPolicy()).action == ACT  # type: ignore[union-attr]


def test_a_retracted_hash_is_ignored_and_a_disputed_one_reviewed() -> None:
    view = fold("md5", VALUE, [add("a")], [retract("a")])
    assert decide(view, MatchPolicy()).action == IGNORE  # type: ignore[union-attr]
    view = fold("md5", VALUE, [add("a")], [dispute("b", "a")])
    assert decide(view, MatchPolicy()).action == REVIEW  # type: ignore[union-attr]


def test_act_below_k_distinct_disputers() -> None:
    related = [dispute("b", "a"), dispute("b", "a"), dispute("c", "a")]
    view = fold("md5", VALUE, [add("a")], related)
    assert decide(view, MatchPolicy(act_below_disputes=3)).action == ACT  # type: ignore[union-attr]
    assert decide(view, MatchPolicy(act_below_disputes=2)).action == REVIEW  # type: ignore[union-attr]


def test_only_trusted_members_hashes_are_acted_on() -> None:
    view = fold("md5", VALUE, [add("a"), add("b")], [])
    policy = MatchPolicy(trusted_origins=frozenset({"c"}))
    assert decide(view, policy).action == REVIEW  # type: ignore[union-attr]
    policy = MatchPolicy(trusted_origins=frozenset({"b"}))
    assert decide(view, policy).action == ACT  # type: ignore[union-attr]


def test_an_add_past_a_compromised_key_or_of_a_removed_member_is_reviewed_not_acted_on() -> None:
    standing = EntryStanding(frozenset({"a", "b"}), {"a": 2}, judged=True)
    assert standing(EntryRef("a", 1)) is None
    assert standing(EntryRef("a", 2)) == PAST_COMPROMISED_KEY
    assert standing(EntryRef("gone", 0)) == MEMBER_REMOVED
    view = fold("md5", VALUE, [add("a", 3), add("gone")], [], standing)
    assert view.flags == (MEMBER_REMOVED, PAST_COMPROMISED_KEY)
    decision = decide(view, MatchPolicy())
    assert decision is not None and decision.action == REVIEW and "flagged" in decision.reason
    # One add the roster still vouches for is enough to act.
    view = fold("md5", VALUE, [add("a", 3), add("b")], [], standing)
    assert decide(view, MatchPolicy()).action == ACT  # type: ignore[union-attr]


def test_entries_past_a_compromise_stay_flagged_until_a_valid_key_signs_over_them() -> None:
    member = MEMBERS[0].member()
    compromised = dataclasses.replace(
        member, checkpoint_keys=(CheckpointKey(member.checkpoint_keys[0].public, 0, 2, True),)
    )
    rekeyed = dataclasses.replace(
        compromised,
        checkpoint_keys=(*compromised.checkpoint_keys, CheckpointKey(bytes(32), 3)),
    )
    roster, _, _ = make_roster(MEMBERS)
    for m, vouched, flagged_from in [
        (compromised, {}, 2),
        (compromised, {member.origin: 2}, 2),
        (rekeyed, {member.origin: 2}, 2),  # the new key has not signed yet
        (rekeyed, {member.origin: 5}, 5),
    ]:
        changed = dataclasses.replace(roster, members=(m, *roster.members[1:]))
        assert entry_standing(changed, vouched).flagged_from == {member.origin: flagged_from}
    # A match server judges by the roster alone: a successor key vouches for the log.
    changed = dataclasses.replace(roster, members=(rekeyed, *roster.members[1:]))
    assert entry_standing(changed).flagged_from == {}


def confirm(by: str, log: str, index: int = 0, at: int = 6) -> LocatedEntry:
    return LocatedEntry(EntryRef(by, at), Confirm(4, EntryRef(log, index), "reviewed", ""))


def test_a_hash_one_member_stands_behind_is_reviewed_until_a_confirmation_makes_two() -> None:
    policy = MatchPolicy(act_agreement=2)
    alone = decide(fold("md5", VALUE, [add("a")], []), policy)
    assert alone is not None and alone.action == REVIEW and "1 member(s)" in alone.reason
    confirmed = fold("md5", VALUE, [add("a")], [confirm("b", "a")])
    assert decide(confirmed, policy).action == ACT  # type: ignore[union-attr]
    corroborated = fold("md5", VALUE, [add("a"), add("b")], [])
    assert decide(corroborated, policy).action == ACT  # type: ignore[union-attr]


def test_confirmations_by_untrusted_members_do_not_count_towards_agreement() -> None:
    view = fold("md5", VALUE, [add("a")], [confirm("b", "a"), confirm("c", "a", at=7)])
    policy = MatchPolicy(act_agreement=2, trusted_origins=frozenset({"a"}))
    assert decide(view, policy).action == REVIEW  # type: ignore[union-attr]
    policy = MatchPolicy(act_agreement=2, trusted_origins=frozenset({"a", "c"}))
    assert decide(view, policy).action == ACT  # type: ignore[union-attr]


def test_agreement_does_not_outweigh_disputes() -> None:
    view = fold("md5", VALUE, [add("a")], [confirm("b", "a"), dispute("c", "a")])
    assert decide(view, MatchPolicy(act_agreement=2)).action == REVIEW  # type: ignore[union-attr]


def test_a_node_may_ask_for_more_agreement_than_the_roster_never_less() -> None:
    roster, _, _ = make_roster(MEMBERS)
    strict = dataclasses.replace(roster, act_agreement=3)
    assert policy_from(1, "", strict, 2).act_agreement == 3
    assert policy_from(1, "", strict, 4).act_agreement == 4
    assert policy_from(1, "", roster).act_agreement == 1
