"""Offline checks an auditor runs over a copy of logs: every stored checkpoint against the
entries (signature by the key the roster names for its size, root recomputed from the
entries), compromised keys, evidence of equivocation. Pure: the caller feeds the bytes.

Checkpoints signed only by a compromised key beyond its end, and entries that no trusted
checkpoint vouches for past a compromise, are reported in `notices`: the auditor learns of
them, but they do not fail the log (protocol.trust has the rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol import merkle
from protocol.checkpoint import SignedCheckpoint, parse_signed_checkpoint
from protocol.cosignature import valid_cosigners
from protocol.entries import decode_entry
from protocol.errors import DecodeError, ProtocolError
from protocol.evidence import evidence_of
from protocol.merkle import CompactRange
from protocol.roster import Roster
from protocol.trust import UntrustedCheckpointError, compromise_of, open_trusted


@dataclass(frozen=True, slots=True)
class LogReport:
    origin: str
    size: int
    root: bytes
    checkpoints_checked: int
    witnessed: int
    undecodable: int
    problems: tuple[str, ...]
    notices: tuple[str, ...] = ()
    untrusted_checkpoints: tuple[int, ...] = ()
    #: Entries past a compromise that no trusted checkpoint held here vouches for.
    unvouched_entries: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def witnesses_of(roster: Roster, origin: str) -> dict[str, bytes]:
    """Cosigners of a log: every other member, by member id, with its node key."""
    return {m.member_id: m.node_key for m in roster.members if m.origin != origin}


class LogAudit:
    """Feed a log's entries in order; every checkpoint is checked when its size is reached."""

    def __init__(self, origin: str, roster: Roster, checkpoints: Sequence[bytes]) -> None:
        self.origin = origin
        self._roster = roster
        self._tree = CompactRange(0, ())
        self._problems: list[str] = []
        self._notices: list[str] = []
        self._untrusted: list[int] = []
        self._trusted_size = 0
        self._pending: list[SignedCheckpoint] = []
        self._checked = 0
        self._witnessed = 0
        self._undecodable = 0
        self._compromise = compromise_of(roster.member_by_origin(origin))
        for raw in checkpoints:
            try:
                parsed = parse_signed_checkpoint(raw)
            except DecodeError as e:
                self._problems.append(f"malformed stored checkpoint: {e}")
                continue
            self._pending.append(parsed)
        self._pending.sort(key=lambda s: s.checkpoint.size)
        self._check_due()

    def feed(self, entries: Sequence[bytes]) -> None:
        for raw in entries:
            try:
                decode_entry(raw)
            except DecodeError:
                self._undecodable += 1
            self._tree.append(merkle.leaf_hash(raw))
            self._check_due()

    def _check_due(self) -> None:
        while self._pending and self._pending[0].checkpoint.size == self._tree.size:
            self._check(self._pending.pop(0))

    def _check(self, signed: SignedCheckpoint) -> None:
        cp = signed.checkpoint
        try:
            opened = open_trusted(signed.raw, self._roster, self.origin)
        except UntrustedCheckpointError as e:
            self._untrusted.append(cp.size)
            self._notices.append(f"{e}: it vouches for nothing")
            return
        except ProtocolError as e:
            self._problems.append(f"checkpoint at {cp.size}: {e}")
            return
        if cp.root != self._tree.root():
            self._problems.append(f"checkpoint at {cp.size}: root does not match the entries")
            return
        self._checked += 1
        self._trusted_size = max(self._trusted_size, cp.size)
        quorum = self._roster.witness_quorum
        cosigners = valid_cosigners(
            cp.body(), opened.note.signatures, witnesses_of(self._roster, self.origin)
        )
        if quorum and len(cosigners) >= quorum:
            self._witnessed += 1

    def finish(self) -> LogReport:
        for left in self._pending:
            self._problems.append(
                f"checkpoint at {left.checkpoint.size} is beyond the {self._tree.size} entries held"
            )
        unvouched = 0
        if self._compromise is not None:
            vouched = max(self._trusted_size, self._compromise.last_trusted)
            unvouched = max(0, self._tree.size - vouched)
        if unvouched:
            self._notices.append(
                f"{unvouched} entries beyond size {self._tree.size - unvouched}, past where the "
                "log's key was declared compromised, are vouched for by no trusted checkpoint"
            )
        return LogReport(
            self.origin,
            self._tree.size,
            self._tree.root(),
            self._checked,
            self._witnessed,
            self._undecodable,
            tuple(self._problems),
            tuple(self._notices),
            tuple(self._untrusted),
            unvouched,
        )


def check_evidence(first: bytes, second: bytes, roster: Roster) -> str:
    """Why two checkpoints prove equivocation on their own (one size, two roots); ProtocolError
    if they do not. Evidence of two sizes needs its proof: protocol.evidence.verify_evidence."""
    return evidence_of(roster, first, second).detail
