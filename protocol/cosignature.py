"""C2SP tlog-cosignature/v1: a witness's Ed25519 statement that it saw a checkpoint consistent.

Signed message: "cosignature/v1\\ntime <unix seconds>\\n" followed by the checkpoint body.
Signature line: `— <witness name> base64(key id || uint64 BE timestamp || signature)`, key id
computed with algorithm byte 0x04. Time is passed in; nothing here reads a clock.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from protocol.errors import SignatureError
from protocol.note import NoteSignature, Verifier, key_id
from protocol.signing import SIGNATURE_SIZE, SigningKey, verify

ALG_COSIGNATURE = 0x04


def cosignature_message(body: str, timestamp: int) -> bytes:
    return f"cosignature/v1\ntime {timestamp}\n".encode() + body.encode()


def cosigner_verifier(name: str, public: bytes) -> Verifier:
    return Verifier(name, public, ALG_COSIGNATURE)


def cosign(body: str, name: str, key: SigningKey, timestamp: int) -> NoteSignature:
    """A cosignature line over a checkpoint body at `timestamp` (unix seconds)."""
    sig = key.sign(cosignature_message(body, timestamp))
    kid = key_id(name, key.public, ALG_COSIGNATURE)
    return NoteSignature(name, kid, struct.pack(">Q", timestamp) + sig)


@dataclass(frozen=True, slots=True)
class Cosignature:
    witness: str
    timestamp: int


def verify_cosignature(body: str, sig: NoteSignature, name: str, public: bytes) -> Cosignature:
    if sig.name != name or sig.key_id != key_id(name, public, ALG_COSIGNATURE):
        raise SignatureError("cosignature is not by this witness")
    if len(sig.signature) != 8 + SIGNATURE_SIZE:
        raise SignatureError("cosignature has the wrong length")
    (timestamp,) = struct.unpack(">Q", sig.signature[:8])
    if not verify(public, cosignature_message(body, timestamp), sig.signature[8:]):
        raise SignatureError(f"bad cosignature by {name}")
    return Cosignature(name, timestamp)


class VerifiedLines:
    """Signature lines found valid over one note body, so the same bytes are not verified
    again: a log's checkpoint is offered by every peer at every sync round, each copy carrying
    the cosignatures that peer collected, and at N members verifying each copy's lines anew is
    N^3 Ed25519 verifications a round. A line is remembered with the key it verified under and
    the body it covers; only the latest body's lines are kept, at most `limit` of them."""

    __slots__ = ("_body", "_limit", "_lines")

    def __init__(self, limit: int = 1024) -> None:
        self._body: str | None = None
        self._limit = limit
        self._lines: set[tuple[bytes, bytes, bytes]] = set()

    def has(self, body: str, public: bytes, sig: NoteSignature) -> bool:
        return body == self._body and (public, sig.key_id, sig.signature) in self._lines

    def add(self, body: str, public: bytes, sig: NoteSignature) -> None:
        if body != self._body or len(self._lines) >= self._limit:
            self._body, self._lines = body, set()
        self._lines.add((public, sig.key_id, sig.signature))


def verified_cosignatures(
    body: str,
    signatures: Iterable[NoteSignature],
    witnesses: Mapping[str, bytes],
    known: VerifiedLines | None = None,
) -> list[NoteSignature]:
    """The lines among `signatures` that are valid cosignatures of `body` by a witness (name ->
    public key): the first valid line of each witness key, in order; every other line dropped.
    Lines `known` already found valid over `body` are not verified again.

    A line that merely carries a witness's name is not kept: only one that verifies. Two names
    sharing one key count once, so no witness can fill a note's signature limit.
    """
    seen_keys: set[bytes] = set()
    kept: list[NoteSignature] = []
    for sig in signatures:
        public = witnesses.get(sig.name)
        if public is None or public in seen_keys:
            continue
        if known is None or not known.has(body, public, sig):
            try:
                verify_cosignature(body, sig, sig.name, public)
            except SignatureError:
                continue
            if known is not None:
                known.add(body, public, sig)
        seen_keys.add(public)
        kept.append(sig)
    return kept


def valid_cosigners(
    body: str, signatures: Iterable[NoteSignature], witnesses: Mapping[str, bytes]
) -> set[str]:
    """Names of the witnesses (name -> public key) with a valid cosignature among `signatures`.

    Counted by distinct public key: two names sharing one key count once.
    """
    return {sig.name for sig in verified_cosignatures(body, signatures, witnesses)}
