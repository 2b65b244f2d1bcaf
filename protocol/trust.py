"""How a log's checkpoints and entries are judged once one of its keys is declared compromised.

The rule (docs/protocol.md, "Compromised keys"): a checkpoint of size n is *trusted* when the
member's key that covers n (first_size <= n <= last_size) signed it; a compromised key ends at
its last_size S, so its signature vouches for sizes <= S only. A checkpoint of size n > S whose
only valid signature is by a compromised key is *untrusted*: it vouches for nothing, and it is
reported, not an error. Any other checkpoint (no valid signature by a key of the member) is
invalid. An entry at index i is vouched for by a trusted checkpoint of size > i.

Pure: the caller passes the bytes and the roster.
"""

from __future__ import annotations

from dataclasses import dataclass

from protocol.checkpoint import SignedCheckpoint, open_checkpoint, parse_signed_checkpoint
from protocol.errors import ProtocolError, RosterError, SignatureError
from protocol.roster import Roster
from protocol.roster_members import Member


class UntrustedCheckpointError(SignatureError):
    """A checkpoint signed only by a compromised key, at a size beyond where it was trusted."""

    def __init__(self, origin: str, size: int, last_trusted: int) -> None:
        self.origin = origin
        self.size = size
        self.last_trusted = last_trusted
        super().__init__(
            f"checkpoint of {origin} at {size} is signed only by a key declared compromised "
            f"beyond size {last_trusted}"
        )


@dataclass(frozen=True, slots=True)
class Compromise:
    """A member's log past a compromise: sizes above `last_trusted` need a successor key."""

    last_trusted: int
    successor: bool

    def flags(self, index: int) -> bool:
        """Whether the entry at `index` stands beyond the compromise with no successor key."""
        return not self.successor and index >= self.last_trusted


def compromise_of(member: Member) -> Compromise | None:
    """Where the member's earliest compromised key stops being trusted, if it has one."""
    keys = member.checkpoint_keys
    ends = [k.last_size for k in keys if k.compromised and k.last_size is not None]
    if not ends:
        return None
    last = min(ends)
    successor = any(not k.compromised and k.first_size > last for k in keys)
    return Compromise(last, successor)


def open_trusted(raw: bytes, roster: Roster, origin: str) -> SignedCheckpoint:
    """The checkpoint, if it is trusted under `roster`.

    Raises UntrustedCheckpointError when only a compromised key beyond its end signed it, and
    another ProtocolError when it is malformed, of another log, or not validly signed at all.
    """
    parsed = parse_signed_checkpoint(raw)
    cp = parsed.checkpoint
    if cp.origin != origin:
        raise RosterError(f"a checkpoint of {cp.origin!r} where one of {origin!r} was expected")
    try:
        return open_checkpoint(raw, roster.checkpoint_key(origin, cp.size))
    except ProtocolError as invalid:
        for key in roster.member_by_origin(origin).checkpoint_keys:
            if not key.compromised or key.last_size is None or cp.size <= key.last_size:
                continue
            try:
                open_checkpoint(raw, key.public)
            except ProtocolError:
                continue
            raise UntrustedCheckpointError(origin, cp.size, key.last_size) from invalid
        raise
