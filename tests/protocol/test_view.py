"""Folding logs into the consortium's view of a hash."""

from __future__ import annotations

from protocol.entries import Add, Dispute, EntryRef, Retract
from protocol.view import LocatedEntry, fold

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
