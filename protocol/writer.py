"""A member's own log: append entries and sign checkpoints over them (pure; the node stores).

Appends happen in two steps so that memory never runs ahead of the disk: `plan` computes the
Merkle nodes for new entries, the node stores entries and nodes in one transaction, then
`commit` adopts the new state. Checkpoints are signed over whatever is committed, so a burst of
submissions costs one signature.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol.checkpoint import Checkpoint, SignedCheckpoint, sign_checkpoint
from protocol.errors import ProofError
from protocol.merkle import CompactRange, NodeId
from protocol.signing import SigningKey


@dataclass(frozen=True, slots=True)
class WritePlan:
    """New entries of our own log with the nodes to store alongside them."""

    start: int
    entries: tuple[bytes, ...]
    nodes: tuple[tuple[NodeId, bytes], ...]
    peaks: tuple[bytes, ...]

    @property
    def end(self) -> int:
        return self.start + len(self.entries)


class LogWriter:
    """The append side of our own log. One owner."""

    def __init__(self, origin: str, key: SigningKey, size: int = 0, peaks: Sequence[bytes] = ()):
        self.origin = origin
        self._key = key
        self._tree = CompactRange(size, peaks)

    @property
    def size(self) -> int:
        return self._tree.size

    @property
    def root(self) -> bytes:
        return self._tree.root()

    def plan(self, entries: Sequence[bytes]) -> WritePlan:
        tree = self._tree.copy()
        nodes = tree.extend(entries)
        return WritePlan(self.size, tuple(entries), tuple(nodes), tree.peaks)

    def commit(self, plan: WritePlan) -> None:
        if plan.start != self.size:
            raise ProofError(f"plan starts at {plan.start}, the log is at {self.size}")
        self._tree = CompactRange(plan.end, plan.peaks)

    def sign(
        self, extensions: tuple[str, ...] = (), key: SigningKey | None = None
    ) -> SignedCheckpoint:
        """Sign a checkpoint of everything committed (with `key` after a key rotation)."""
        cp = Checkpoint(self.origin, self.size, self.root, extensions)
        return sign_checkpoint(cp, key or self._key)
