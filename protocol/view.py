"""The consortium's view of one hash: folding every log's adds, retractions and disputes.

Pure: the caller finds the relevant entries (by hash, then by reference to those adds) and
passes them in. A retraction counts only from the log that holds its target (an origin
withdraws its own entry); a dispute counts only from another log (a member cannot dispute
itself).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from protocol.entries import Add, Dispute, Entry, EntryRef, Retract


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

    @property
    def active(self) -> bool:
        return self.retraction is None


@dataclass(frozen=True, slots=True)
class HashView:
    signal_type: str
    value: bytes | str
    submissions: tuple[Submission, ...]

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
) -> HashView:
    """Fold the adds of one hash with every retraction and dispute that targets them;
    `standing` flags adds the roster no longer vouches for."""
    retractions: dict[EntryRef, Retraction] = {}
    disputes: dict[EntryRef, list[DisputeNote]] = {}
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
            )
        )
    submissions.sort(key=lambda s: (s.add.timestamp_ms, s.ref.log, s.ref.index))
    return HashView(signal_type, value, tuple(submissions))
