"""The match policy: act, review or ignore, from a hash's provenance and this node's settings."""

from __future__ import annotations

from node.policy import ACT, IGNORE, REVIEW, MatchPolicy, decide
from protocol.entries import Add, Dispute, EntryRef, Retract
from protocol.view import LocatedEntry, fold

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
