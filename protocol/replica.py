"""The one state machine through which a member's log changes our view of it.

A LogReplica holds our verified view of one origin's log: the Merkle state of the entries we
hold and the latest signed checkpoint that covers exactly them. Input arrives in two steps, in
the manner of python-tuf's TrustedMetadataSet and the sans-IO pattern:

1. `accept_checkpoint` checks a signed checkpoint against the roster and everything seen before;
2. `verify_entries` checks a page of entries against a signed checkpoint (the root recomputed
   must equal it, or a consistency proof must link the page's end to it) and returns an
   immutable AppendPlan; the caller stores the plan durably, then calls `commit`.

Nothing here awaits or stores: the node does both. Two validly signed checkpoints of one origin
that cannot both be true raise EquivocationError carrying both as evidence.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from protocol import merkle
from protocol.audit import witnesses_of
from protocol.checkpoint import (
    Checkpoint,
    SignedCheckpoint,
    open_witnessed,
    parse_signed_checkpoint,
)
from protocol.cosignature import VerifiedLines
from protocol.entries import Entry, decode_entry
from protocol.errors import DecodeError, EquivocationError, ProofError, RollbackError
from protocol.merkle import CompactRange, NodeId
from protocol.note import NoteSignature
from protocol.records import new_record
from protocol.roster import Roster

#: How many signed checkpoints ahead of our entries we remember, to compare against later.
MAX_REMEMBERED = 64
#: How many checkpoint bodies already verified under the roster in force we recognise again
#: without opening them (the peers of a sync round offer the same checkpoints N times over).
MAX_VOUCHED = 256


class CheckpointStatus(Enum):
    """What a verified checkpoint means for us."""

    KNOWN = "known"  # same as one we hold
    STALE = "stale"  # older than ours and consistent with it
    AHEAD = "ahead"  # larger than what we hold: fetch the entries it covers


class ReceivedEntry(NamedTuple):
    """An entry's bytes exactly as received, with its decoding (or why it did not decode).

    A NamedTuple, like the store's EntryRow, not a frozen dataclass: just as immutable, and a
    catch-up makes one an entry, where a frozen dataclass's __init__ costs twice as much.
    `idx` is its index in the log (`index` is a tuple method).
    """

    idx: int
    raw: bytes
    entry: Entry | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AppendPlan:
    """Verified entries ready to store; `commit` it after the store made it durable."""

    origin: str
    start: int
    entries: tuple[ReceivedEntry, ...]
    #: The Merkle nodes the entries complete above level 0, and the last entry's leaf hash
    #: (a peak when the size is odd): what a store keeps; it hashes entries for other leaves.
    nodes: tuple[tuple[NodeId, bytes], ...]
    peaks: tuple[bytes, ...]
    target: SignedCheckpoint
    #: The checkpoint that now covers exactly our entries, if this page reached one.
    checkpoint: SignedCheckpoint | None
    #: The roster it was verified under (a reached checkpoint is vouched for at `commit`).
    roster: Roster | None = None

    @property
    def end(self) -> int:
        return self.start + len(self.entries)


class LogReplica:
    """Our verified view of one origin's log. One owner; one path changes it."""

    def __init__(
        self,
        origin: str,
        size: int = 0,
        peaks: Sequence[bytes] = (),
        checkpoint: SignedCheckpoint | None = None,
    ) -> None:
        self.origin = origin
        self._tree = CompactRange(size, peaks)
        if checkpoint is not None:
            cp = checkpoint.checkpoint
            if cp.origin != origin or cp.size > size:
                raise ProofError("stored checkpoint does not belong to the stored entries")
            if cp.size == size and cp.root != self._tree.root():
                raise ProofError("stored entries do not match the stored checkpoint")
        self._checkpoint = checkpoint
        self._ahead: dict[int, SignedCheckpoint] = {}
        #: The last checkpoint opened, with the bytes and roster it was opened with: a pull
        #: offers one checkpoint with every page, and opening checks every signature line.
        self._opened: tuple[bytes, Roster, SignedCheckpoint] | None = None
        # The latest body's signature lines found valid: peers offer copies of one checkpoint
        # with different cosignatures, each line verified once (protocol/cosignature.py).
        self._verified_lines = VerifiedLines()
        #: Checkpoint bodies by size, with their origin line, found consistent with our
        #: entries, and the roster they were opened under: the same bytes offered again under
        #: that roster need no signature checked (under another, their root stays consistent).
        self._vouched: dict[int, tuple[Checkpoint, NoteSignature, Roster]] = {}

    @property
    def size(self) -> int:
        return self._tree.size

    @property
    def root(self) -> bytes:
        return self._tree.root()

    @property
    def peaks(self) -> tuple[bytes, ...]:
        return self._tree.peaks

    @property
    def checkpoint(self) -> SignedCheckpoint | None:
        """The latest signed checkpoint whose size we hold every entry of."""
        return self._checkpoint

    @property
    def latest_seen(self) -> SignedCheckpoint | None:
        """The largest valid checkpoint seen, held or not."""
        if self._ahead:
            return self._ahead[max(self._ahead)]
        return self._checkpoint

    def open(self, raw: bytes, roster: Roster) -> SignedCheckpoint:
        """Parse `raw` and verify it with the key the roster names for its size; of its other
        lines only the valid cosignatures of the roster's witnesses are kept (one each)."""
        last = self._opened
        if last is not None and last[1] is roster and last[0] == raw:
            return last[2]
        parsed = parse_signed_checkpoint(raw)
        cp = parsed.checkpoint
        if cp.origin != self.origin:
            raise DecodeError(f"checkpoint of {cp.origin!r} offered for {self.origin!r}")
        key = roster.checkpoint_key(self.origin, cp.size)
        opened = open_witnessed(raw, key, witnesses_of(roster, self.origin), self._verified_lines)
        self._opened = (raw, roster, opened)
        return opened

    def prefix_ids(self, size: int) -> list[NodeId]:
        """Stored nodes needed to check a checkpoint of `size` against entries we hold."""
        if size >= self.size or self._checkpoint_at(size) is not None or size in self._vouched:
            return []
        return merkle.tree_hash_ids(size)

    def accept_checkpoint(
        self, raw: bytes, roster: Roster, prefix_nodes: Mapping[NodeId, bytes] | None = None
    ) -> tuple[CheckpointStatus, SignedCheckpoint]:
        """Verify a signed checkpoint and compare it with all we know of this log.

        For a checkpoint smaller than what we hold, pass the nodes named by `prefix_ids`.
        Raises SignatureError, DecodeError, ProofError or EquivocationError.

        A body at or below our size already verified under this roster and found consistent
        with our entries (`_vouched`) is recognised without opening its bytes again: a sync
        round's N peers offer each checkpoint N times, with different cosignatures. Then the
        checkpoint returned is, for KNOWN, the one held; for STALE the one offered (its body
        is the vouched one; its other lines are not checked, and are for no one to keep).
        """
        parsed = parse_signed_checkpoint(raw)
        recognised = self._recognise(parsed, roster)
        if recognised is not None:
            return recognised
        status, signed = self._accept(raw, roster, prefix_nodes)
        if status is not CheckpointStatus.AHEAD:  # only bodies checked against our entries
            self._vouch(signed, roster)
        return status, signed

    def _recognise(
        self, parsed: SignedCheckpoint, roster: Roster
    ) -> tuple[CheckpointStatus, SignedCheckpoint] | None:
        cp = parsed.checkpoint
        # The same body with the same origin line as verified: a different line is opened (and
        # refused if it is not the origin's valid signature), as any new bytes are.
        vouched = self._vouched.get(cp.size)
        if (
            vouched is None
            or vouched[2] is not roster
            or vouched[0] != cp
            or parsed.note.signatures[:1] != (vouched[1],)
        ):
            return None
        if (
            cp.size == self.size
            and self._checkpoint is not None
            and self._checkpoint.checkpoint == cp
        ):
            return CheckpointStatus.KNOWN, self._checkpoint
        if cp.size < self.size:
            return CheckpointStatus.STALE, parsed
        return None

    def _vouch(self, signed: SignedCheckpoint, roster: Roster) -> None:
        cp = signed.checkpoint
        self._vouched[cp.size] = (cp, signed.note.signatures[0], roster)
        while len(self._vouched) > MAX_VOUCHED:
            del self._vouched[min(self._vouched)]

    def _accept(
        self, raw: bytes, roster: Roster, prefix_nodes: Mapping[NodeId, bytes] | None
    ) -> tuple[CheckpointStatus, SignedCheckpoint]:
        signed = self.open(raw, roster)
        cp = signed.checkpoint
        known = self._checkpoint_at(cp.size)
        if known is not None:
            if known.checkpoint.root != cp.root:
                raise EquivocationError(
                    self.origin, known.raw, signed.raw, f"two roots at {cp.size}"
                )
            if cp.size > self.size:
                return CheckpointStatus.AHEAD, known
            return CheckpointStatus.KNOWN, known
        if cp.size <= self.size:
            vouched = self._vouched.get(cp.size)
            if cp.size == self.size:
                held = self.root
            elif vouched is not None:
                held = vouched[0].root  # checked against our entries before (under any roster)
            else:
                if prefix_nodes is None:
                    raise ProofError("checking an older checkpoint needs the stored prefix nodes")
                held = merkle.tree_hash(cp.size, prefix_nodes)
            if held != cp.root:
                evidence = self._checkpoint or self.latest_seen
                raise EquivocationError(
                    self.origin,
                    evidence.raw if evidence else b"",
                    signed.raw,
                    f"checkpoint at {cp.size} contradicts the verified entries",
                )
            if cp.size == self.size:
                self._checkpoint = signed
                return CheckpointStatus.KNOWN, signed
            return CheckpointStatus.STALE, signed
        self._remember(signed)
        return CheckpointStatus.AHEAD, signed

    def verify_entries(
        self,
        start: int,
        entries: Sequence[bytes],
        checkpoint_raw: bytes,
        proof: Sequence[bytes],
        roster: Roster,
        after: AppendPlan | None = None,
    ) -> AppendPlan:
        """Verify a page of entries [start, start+len) against a signed checkpoint.

        If the page ends below the checkpoint's size, `proof` is the consistency proof from the
        page's end to the checkpoint. Only remembers the (valid) checkpoint; the entries count
        once the caller has stored the plan and called `commit`. `after` is a verified plan
        not committed yet (still being stored) that this page continues; plans are then
        committed in order.
        """
        held = self.size
        tree = self._tree.copy()
        if after is not None:
            # `after` may follow other uncommitted plans; `commit` enforces their order.
            if after.origin != self.origin or after.start < self.size:
                raise ProofError("the plan to continue does not continue this replica")
            held = after.end
            tree = CompactRange(after.end, after.peaks)
        opened = self.open(checkpoint_raw, roster).checkpoint
        if opened.size <= held:
            raise RollbackError(f"checkpoint at {opened.size} is not ahead of our {held} entries")
        status, signed = self.accept_checkpoint(checkpoint_raw, roster)
        cp = signed.checkpoint
        if status is not CheckpointStatus.AHEAD:
            raise RollbackError(f"checkpoint at {cp.size} is not ahead of our {held} entries")
        if start != held:
            raise ProofError(f"entries start at {start}, we hold {held}")
        if not entries:
            raise ProofError("an empty page of entries")
        end = start + len(entries)
        if end > cp.size:
            raise ProofError(f"entries run to {end}, beyond the checkpoint's {cp.size}")
        nodes: list[tuple[NodeId, bytes]] = []
        passed: list[tuple[SignedCheckpoint, bytes]] = []
        # Checkpoints remembered at sizes inside this page are checked at those sizes.
        done = start
        for size in sorted({end, *(size for size in self._ahead if start < size < end)}):
            nodes.extend(tree.extend(entries[done - start : size - start], leaves=False))
            done = size
            seen = self._ahead.get(size)
            if seen is not None and seen.checkpoint != cp:
                passed.append((seen, tree.root()))
        root = tree.root()
        if end == cp.size:
            if root != cp.root:
                raise ProofError(f"entries do not hash to the checkpoint's root at {end}")
        else:
            merkle.verify_consistency(end, cp.size, root, cp.root, proof)
        for seen, seen_root in passed:
            if seen_root != seen.checkpoint.root:
                raise EquivocationError(
                    self.origin, seen.raw, signed.raw, "inconsistent checkpoints"
                )
        received = tuple(_receive(start + i, raw) for i, raw in enumerate(entries))
        reached = signed if end == cp.size else self._ahead.get(end)
        return AppendPlan(
            self.origin, start, received, tuple(nodes), tree.peaks, signed, reached, roster
        )

    def commit(self, plan: AppendPlan) -> None:
        """Adopt a verified plan once it is durable."""
        if plan.origin != self.origin or plan.start != self.size:
            raise ProofError("plan does not continue this replica")
        tree = CompactRange(plan.end, plan.peaks)
        self._tree = tree
        if plan.checkpoint is not None:
            self._checkpoint = plan.checkpoint
            if plan.roster is not None:  # its root is our entries' now: peers behind offer it
                self._vouch(plan.checkpoint, plan.roster)
        for size in [s for s in self._ahead if s <= plan.end]:
            del self._ahead[size]
        if plan.target.checkpoint.size > plan.end:
            self._remember(plan.target)

    def _checkpoint_at(self, size: int) -> SignedCheckpoint | None:
        if self._checkpoint is not None and self._checkpoint.checkpoint.size == size:
            return self._checkpoint
        return self._ahead.get(size)

    def _remember(self, signed: SignedCheckpoint) -> None:
        self._ahead[signed.checkpoint.size] = signed
        while len(self._ahead) > MAX_REMEMBERED:
            # Forget the smallest: the largest is what we fetch towards.
            del self._ahead[min(self._ahead)]


def _receive(index: int, raw: bytes) -> ReceivedEntry:
    try:
        return new_record(ReceivedEntry, (index, raw, decode_entry(raw), None))
    except DecodeError as e:
        # The origin signed it, so it stays in the log (proofs need it), but it means nothing.
        return ReceivedEntry(index, raw, None, str(e))
