"""Folding logs into the consortium's view of a hash."""

from __future__ import annotations

from protocol.entries import Add, Confirm, Dispute, EntryRef, Retract
from protocol.view import LocatedEntry, NearAdd, fold

PDQ = bytes(32)
A, B, C = "a.example/log", "b.example/log", "c.example/log"


def add_at(log: str, index: int, labels: tuple[str, ...] = ("terrorist-attack",)) -> LocatedEntry:
    return LocatedEntry(EntryRef(log, index), Add(1000 + index, "pdq", PDQ, labels), 5)


def test_retraction_by_the_origin_withdraws_its_add() -> None:
    adds = [add_at(A, 0)]
    refs = [LocatedEntry(EntryRef(A, 1), Retract(2000, EntryRef(A, 0), "mistake"))]
    view = fold("pdq", PDQ, adds, refs)
    assert not view.active
    assert view.submissions[0].retraction is not None
    assert view.submissions[0].retraction.reason == "mistake"


def test_retraction_by_another_member_is_ignored() -> None:
    adds = [add_at(A, 0)]
    refs = [LocatedEntry(EntryRef(B, 0), Retract(2000, EntryRef(A, 0), "not mine"))]
    assert fold("pdq", PDQ, adds, refs).active


def test_disputes_attach_but_self_disputes_do_not() -> None:
    adds = [add_at(A, 0), add_at(B, 4, ("glorification",))]
    refs = [
        LocatedEntry(EntryRef(C, 0), Dispute(3000, EntryRef(A, 0), "wrong-label", "satire")),
        LocatedEntry(EntryRef(A, 2), Dispute(3000, EntryRef(A, 0), "other", "self")),
    ]
    view = fold("pdq", PDQ, adds, refs)
    first = next(s for s in view.submissions if s.ref == EntryRef(A, 0))
    assert [d.ref.log for d in first.disputes] == [C]
    assert view.labels == ("glorification", "terrorist-attack")
    assert len(view.submissions) == 2


def test_one_origin_retracting_leaves_others_active() -> None:
    adds = [add_at(A, 0), add_at(B, 1)]
    refs = [LocatedEntry(EntryRef(A, 1), Retract(2000, EntryRef(A, 0)))]
    view = fold("pdq", PDQ, adds, refs)
    assert view.active
    assert view.labels == ("terrorist-attack",)
    assert [s.active for s in view.submissions] == [False, True]


def test_adds_of_other_values_are_not_folded_in() -> None:
    other = LocatedEntry(EntryRef(A, 3), Add(1, "pdq", b"\x01" * 32), 0)
    assert fold("pdq", PDQ, [other], []).submissions == ()


def confirm_at(by: str, index: int, target: EntryRef) -> LocatedEntry:
    return LocatedEntry(EntryRef(by, index), Confirm(4000 + index, target, "reviewed"), 6)


def test_a_confirmation_by_another_member_backs_the_hash_and_one_by_the_origin_does_not() -> None:
    adds = [add_at(A, 0)]
    refs = [confirm_at(B, 3, EntryRef(A, 0)), confirm_at(A, 1, EntryRef(A, 0))]
    view = fold("pdq", PDQ, adds, refs)
    assert [c.ref for c in view.submissions[0].confirmations] == [EntryRef(B, 3)]
    assert view.backers() == {A, B}
    assert view.backers(frozenset({A})) == {A}


def test_a_confirmation_its_confirmer_retracted_no_longer_backs_the_hash() -> None:
    adds = [add_at(A, 0)]
    refs = [
        confirm_at(B, 3, EntryRef(A, 0)),
        LocatedEntry(EntryRef(B, 4), Retract(5000, EntryRef(B, 3), "too hasty")),
    ]
    view = fold("pdq", PDQ, adds, refs)
    (note,) = view.submissions[0].confirmations
    assert not note.active and note.retraction is not None
    assert view.backers() == {A}


def test_two_members_adding_the_same_hash_corroborate_each_other() -> None:
    view = fold("pdq", PDQ, [add_at(A, 0), add_at(B, 2)], [])
    first, second = view.submissions
    assert [s.ref for s in view.corroborations(first)] == [EntryRef(B, 2)]  # type: ignore[union-attr]
    assert [s.ref for s in view.corroborations(second)] == [EntryRef(A, 0)]  # type: ignore[union-attr]
    assert view.backers() == {A, B}


def test_a_retracted_add_neither_corroborates_nor_backs_the_hash() -> None:
    adds = [add_at(A, 0), add_at(B, 2)]
    refs = [LocatedEntry(EntryRef(B, 3), Retract(2000, EntryRef(B, 2), "mistake"))]
    view = fold("pdq", PDQ, adds, refs)
    assert view.corroborations(view.submissions[0]) == []
    assert view.backers() == {A}


def test_near_duplicates_of_other_members_corroborate_and_back_the_hash() -> None:
    near = [NearAdd(EntryRef(C, 7), 900, 12), NearAdd(EntryRef(A, 9), 900, 3)]
    view = fold("pdq", PDQ, [add_at(A, 0)], [], near=near)
    assert [n.ref for n in view.near] == [EntryRef(C, 7)]  # A's own near-duplicate is not other
    assert view.corroborations(view.submissions[0]) == [view.near[0]]
    assert view.backers() == {A, C}
