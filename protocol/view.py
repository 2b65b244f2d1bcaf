"""The consortium's view of one hash: folding every log's adds, retractions, disputes and
confirmations, and who stands behind it.

Pure: the caller finds the relevant entries (by hash, then by reference to those adds, then by
reference to those confirmations) and passes them in. A retraction counts only from the log
that holds its target (an origin withdraws its own entry, or its own confirmation); a dispute
or a confirmation counts only from another log (a member cannot dispute or confirm itself).

Members stand behind a hash in three ways: they added it (each origin of a live add of the
same value corroborates the others), they confirmed another member's add, or they added a
near-duplicate (PDQ within the consortium's threshold; the caller finds those with its index
and passes them as `near`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from protocol.entries import Add, Confirm, Dispute, Entry, EntryRef, Retract


@dataclass(frozen=True, slots=True)
class LocatedEntry:
    """An entry with where it lives and when this node received it."""

    ref: EntryRef
    entry: Entry
    received_ms: int = 0


@dataclass(frozen=True, slots=True)
class Retraction:
    ref: EntryRef
    timestamp_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class DisputeNote:
    ref: EntryRef
    timestamp_ms: int
    reason_code: str
    text: str


@dataclass(frozen=True, slots=True)
class ConfirmNote:
    """Another member's confirmation of an add; `retraction` if the confirmer withdrew it."""

    ref: EntryRef
    timestamp_ms: int
    reason_code: str
    text: str
    retraction: Retraction | None = None
    #: Why the roster in force no longer vouches for the confirmation (as Submission.standing).
    standing: str | None = None

    @property
    def active(self) -> bool:
        return self.retraction is None and self.standing is None


@dataclass(frozen=True, slots=True)
class NearAdd:
    """Another member's live add of a near-duplicate value (PDQ), found by the match index."""

    ref: EntryRef
    timestamp_ms: int
    distance: int
    #: Why the roster in force no longer vouches for it (as Submission.standing).
    standing: str | None = None


@dataclass(frozen=True, slots=True)
class Submission:
    """One member's add of the hash, and what became of it."""

    ref: EntryRef
    add: Add
    received_ms: int
    retraction: Retraction | None
    disputes: tuple[DisputeNote, ...]
    #: Why the roster in force no longer vouches for this add, if it does not
    #: (node/matching/policy.py).
    standing: str | None = None
    confirmations: tuple[ConfirmNote, ...] = ()

    @property
    def active(self) -> bool:
        return self.retraction is None


@dataclass(frozen=True, slots=True)
class HashView:
    signal_type: str
    value: bytes | str
    submissions: tuple[Submission, ...]
    #: Other members' adds of near-duplicate values, which corroborate this one.
    near: tuple[NearAdd, ...] = ()

    def corroborations(self, submission: Submission) -> list[Submission | NearAdd]:
        """Who independently added this hash besides `submission`'s origin: the live adds of
        the same value in other logs, and the near-duplicates."""
        same: list[Submission | NearAdd] = [
            s
            for s in self.submissions
            if s.active and s.standing is None and s.ref.log != submission.ref.log
        ]
        return same + [n for n in self.near if n.ref.log != submission.ref.log]

    def backers(self, origins: frozenset[str] | None = None) -> frozenset[str]:
        """The logs of the members standing behind the hash: the origins of its live,
        unflagged adds, the members that confirmed one of them, and the origins of
        near-duplicates; only those in `origins`, if given (a node's trusted members)."""
        logs: set[str] = set()
        for s in self.submissions:
            if not s.active or s.standing is not None:
                continue
            logs.add(s.ref.log)
            logs.update(c.ref.log for c in s.confirmations if c.active)
        logs.update(n.ref.log for n in self.near if n.standing is None)
        return frozenset(logs if origins is None else logs & origins)

    @property
    def active(self) -> bool:
        """True while at least one origin stands by its add."""
        return any(s.active for s in self.submissions)

    @property
    def flags(self) -> tuple[str, ...]:
        """The flags of its active submissions (see Submission.standing)."""
        return tuple(sorted({s.standing for s in self.submissions if s.active and s.standing}))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(sorted({x for s in self.submissions if s.active for x in s.add.labels}))


def fold(
    signal_type: str,
    value: bytes | str,
    adds: Sequence[LocatedEntry],
    references: Sequence[LocatedEntry],
    standing: Callable[[EntryRef], str | None] | None = None,
    near: Sequence[NearAdd] = (),
) -> HashView:
    """Fold the adds of one hash with every retraction, dispute and confirmation that targets
    them (and every retraction of those confirmations); `standing` flags adds and
    confirmations the roster no longer vouches for; `near` are near-duplicate adds."""
    retractions: dict[EntryRef, Retraction] = {}
    disputes: dict[EntryRef, list[DisputeNote]] = {}
    confirms: dict[EntryRef, list[LocatedEntry]] = {}
    for located in references:
        entry = located.entry
        if isinstance(entry, Retract) and located.ref.log == entry.target.log:
            earlier = retractions.get(entry.target)
            if earlier is None or located.ref.index < earlier.ref.index:
                retractions[entry.target] = Retraction(
                    located.ref, entry.timestamp_ms, entry.reason
                )
        elif isinstance(entry, Dispute) and located.ref.log != entry.target.log:
            note = DisputeNote(located.ref, entry.timestamp_ms, entry.reason_code, entry.text)
            disputes.setdefault(entry.target, []).append(note)
        elif isinstance(entry, Confirm) and located.ref.log != entry.target.log:
            confirms.setdefault(entry.target, []).append(located)
    submissions = []
    for located in adds:
        add = located.entry
        if not isinstance(add, Add) or add.signal_type != signal_type or add.value != value:
            continue
        submissions.append(
            Submission(
                located.ref,
                add,
                located.received_ms,
                retractions.get(located.ref),
                tuple(
                    sorted(disputes.get(located.ref, ()), key=lambda d: (d.ref.log, d.ref.index))
                ),
                standing(located.ref) if standing else None,
                _confirmations(confirms.get(located.ref, ()), retractions, standing),
            )
        )
    submissions.sort(key=lambda s: (s.add.timestamp_ms, s.ref.log, s.ref.index))
    own = {s.ref.log for s in submissions if s.active}
    others = tuple(sorted((n for n in near if n.ref.log not in own), key=lambda n: n.distance))
    return HashView(signal_type, value, tuple(submissions), others)


def _confirmations(
    located: Sequence[LocatedEntry],
    retractions: dict[EntryRef, Retraction],
    standing: Callable[[EntryRef], str | None] | None,
) -> tuple[ConfirmNote, ...]:
    notes = []
    for x in sorted(located, key=lambda x: (x.ref.log, x.ref.index)):
        assert isinstance(x.entry, Confirm)  # fold only passes confirmations
        notes.append(
            ConfirmNote(
                x.ref,
                x.entry.timestamp_ms,
                x.entry.reason_code,
                x.entry.text,
                retractions.get(x.ref),
                standing(x.ref) if standing else None,
            )
        )
    return tuple(notes)
