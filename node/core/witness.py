"""Witnessing: this node cosigns the checkpoints of other members' logs that it verified, and
collects the cosignatures other members made, so that a split view is caught as soon as two
honest nodes compare (C2SP tlog-cosignature/v1, Ed25519, with our node key).

A checkpoint is cosigned only once its replica reached it: every entry verified against it,
consistent with all we saw before (protocol.replica guarantees that). Cosignatures arriving
with a checkpoint we hold are checked against the roster's member node keys and only those
that verify, one a witness, are merged into our copy, which is what we serve at once and
save within SAVE_DELAY_S (the
replica keeps only verified lines too: protocol.checkpoint.open_witnessed). The cosigner name
is the member id.

What a node shows peers of a checkpoint (its checkpoint vector, its pushes and relay offers)
is the *wire copy*: the origin's signature and this node's own cosignature only, never the
cosignatures it collected. Every member collects each other member's cosignature straight
from that member's vector, so every line still reaches every node, once, where carrying all
collected lines sent each one N times over (at 27 members, three quarters of a crisis's
bytes). The copy with everything collected is what auditors and proofs get (`served`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from node.errors import StoreError
from node.store.base import Store
from protocol.checkpoint import Checkpoint, SignedCheckpoint, parse_signed_checkpoint
from protocol.cosignature import VerifiedLines, cosign, valid_cosigners, verified_cosignatures
from protocol.errors import DecodeError
from protocol.note import MAX_SIGNATURES, Note, NoteSignature
from protocol.roster import Roster
from protocol.signing import SigningKey

log = logging.getLogger(__name__)

#: Seconds between saves of the cosigned copies merged since the last save.
SAVE_DELAY_S = 0.5


def witness_keys(roster: Roster, origin: str) -> dict[str, bytes]:
    """Who may cosign `origin`'s checkpoints: every other member, by id, with its node key."""
    return {m.member_id: m.node_key for m in roster.members if m.origin != origin}


class Witness:
    """Owns the cosigned copies of the checkpoints this node serves."""

    def __init__(
        self,
        member_id: str,
        origin: str,
        node_key: SigningKey,
        store: Store,
        roster: Callable[[], Roster],
        clock: Callable[[], int],
    ) -> None:
        self._member_id = member_id
        self._origin = origin
        self._key = node_key
        self._store = store
        self._roster = roster
        self._clock = clock
        # Cosignature lines on copies of our own checkpoint already verified: every peer
        # serves a copy at every sync round (protocol/cosignature.py, VerifiedLines).
        self._verified_lines = VerifiedLines()
        self._copies: dict[str, SignedCheckpoint] = {}
        #: origin -> (checkpoint, its wire copy): the origin's line and our own, if we cosigned.
        self._wire: dict[str, tuple[Checkpoint, bytes]] = {}
        #: Logs whose cosigned copy changed since it was saved (run_saver).
        self._unsaved: set[str] = set()
        self._to_save = asyncio.Event()

    def served(self, signed: SignedCheckpoint | None) -> SignedCheckpoint | None:
        """Our cosigned copy of `signed` if we have one of the same checkpoint."""
        if signed is None:
            return None
        copy = self._copies.get(signed.checkpoint.origin)
        if copy is not None and copy.checkpoint == signed.checkpoint:
            return copy
        return signed

    def wire_copy(self, signed: SignedCheckpoint) -> bytes:
        """What we show peers of `signed`: its origin's signature line (the first; the replica
        and our own log keep it first) and our cosignature if we made one, nothing else."""
        cp = signed.checkpoint
        kept = self._wire.get(cp.origin)
        if kept is not None and kept[0] == cp:
            return kept[1]
        # Our line may be in a copy collected or stored before a restart (verified lines only).
        sigs = (self.served(signed) or signed).note.signatures
        kept_lines = sigs[:1] + tuple(s for s in sigs[1:] if s.name == self._member_id)[:1]
        if kept_lines == signed.note.signatures:
            return signed.raw
        return self._keep_wire(signed, kept_lines)

    def _keep_wire(self, signed: SignedCheckpoint, lines: tuple[NoteSignature, ...]) -> bytes:
        """The wire copy of `signed` with these signature lines, kept for its log."""
        raw = Note(signed.note.text, lines).encode()
        self._wire[signed.checkpoint.origin] = (signed.checkpoint, raw)
        return raw

    def cosigners(self, signed: SignedCheckpoint | None) -> set[str]:
        served = self.served(signed)
        if served is None:
            return set()
        origin = served.checkpoint.origin
        return valid_cosigners(
            served.checkpoint.body(),
            served.note.signatures,
            witness_keys(self._roster(), origin),
        )

    async def reached(self, signed: SignedCheckpoint) -> None:
        """Our replica of another member's log now holds exactly `signed`: cosign it."""
        origin = signed.checkpoint.origin
        if origin == self._origin:
            return
        line = cosign(signed.checkpoint.body(), self._member_id, self._key, self._clock() // 1000)
        self._keep_wire(signed, (signed.note.signatures[0], line))
        self._merge(signed, [line])

    async def offered(self, current: SignedCheckpoint | None, raw: bytes) -> None:
        """Merge the valid cosignatures that a copy of our current checkpoint carries."""
        if current is None:
            return
        try:
            other = parse_signed_checkpoint(raw)
        except DecodeError:
            return
        if other.checkpoint != current.checkpoint:
            return
        origin = current.checkpoint.origin
        copy = self.served(current) or current
        held = set(copy.note.signatures)
        # Only lines that verify, one a witness key: a line merely carrying a witness's name
        # is never stored or served (junk under a real name would fill the note's limit).
        # Lines our copy holds already were verified when merged.
        lines = verified_cosignatures(
            other.checkpoint.body(),
            [s for s in other.note.signatures if s not in held],
            witness_keys(self._roster(), origin),
            self._verified_lines,
        )
        if lines:
            self._merge(current, lines)

    def _merge(self, base: SignedCheckpoint, lines: list[NoteSignature]) -> None:
        """Add `lines` (verified) to our copy of `base`; it is served at once and saved by
        the saver (`run_saver`) within SAVE_DELAY_S. Nothing here awaits, so merges of one
        log never interleave."""
        origin = base.checkpoint.origin
        copy = self.served(base) or base
        have = {(s.name, s.key_id) for s in copy.note.signatures}
        new = [s for s in lines if (s.name, s.key_id) not in have]
        room = MAX_SIGNATURES - len(copy.note.signatures)
        if len(new) > room:
            log.warning("%s: no room for %d more cosignatures", origin, len(new) - room)
            new = new[:room]
        if not new:
            return
        note = Note(copy.note.text, copy.note.signatures + tuple(new))
        self._copies[origin] = SignedCheckpoint(note.encode(), note, copy.checkpoint)
        self._unsaved.add(origin)
        self._to_save.set()
        log.debug(
            "%s at %d: %d cosignatures", origin, copy.checkpoint.size, len(note.signatures) - 1
        )

    async def run_saver(self, delay_s: float = SAVE_DELAY_S) -> None:
        """Save the cosigned copies merged since the last save, at most every `delay_s`,
        until cancelled: a sync round merges a line from every peer into every log's copy,
        and one write a log a round replaces one a line."""
        while True:
            await self._to_save.wait()
            await asyncio.sleep(delay_s)
            await self.save_unsaved()

    async def save_unsaved(self) -> None:
        """Save every copy merged and not saved yet (the saver, and once more at stop)."""
        self._to_save.clear()
        while self._unsaved:
            origin = self._unsaved.pop()
            copy = self._copies[origin]
            try:
                await self._store.save_checkpoint(origin, copy.checkpoint.size, copy.raw)
            except StoreError as e:
                # Served from memory meanwhile; the next save tries again.
                log.warning("%s: cosigned checkpoint not saved: %s", origin, e)
                self._unsaved.add(origin)
                self._to_save.set()
                return
