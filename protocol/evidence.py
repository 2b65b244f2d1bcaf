"""Equivocation evidence: what proves, to anyone holding the roster, that one origin signed two
checkpoints that cannot both be true. Self-contained and pure: bytes and roster in, verdict out.

Encoding (canonical msgpack, protocol.codec), an array of five:

    [1, first, second, prefix_root, proof]

- `first`, `second`: signed checkpoint notes of one origin, each carrying exactly one signature
  line, the origin's, valid under the roster's key for that checkpoint's size; the smaller
  first, and at one size the one whose bytes sort first (so one pair has one encoding).
- Same size: the roots differ; `prefix_root` is empty and `proof` is [].
- first.size < second.size (first.size >= 1): `prefix_root` is the 32-byte root that second's
  tree has at first.size, and `proof` the RFC 9162 consistency proof from first.size to
  second.size in second's tree, so that verify_consistency(first.size, second.size,
  prefix_root, second.root, proof) holds; and prefix_root differs from first.root.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol import codec, merkle
from protocol.checkpoint import (
    SignedCheckpoint,
    open_checkpoint,
    origin_signed,
    parse_signed_checkpoint,
)
from protocol.errors import DecodeError, ProofError, ValidationError
from protocol.merkle import HASH_SIZE
from protocol.roster import Roster

EVIDENCE_VERSION = 1
#: Bounds of the strict decoder: two checkpoints (one signature line each) and a proof.
MAX_CHECKPOINT_BYTES = 16 * 1024
MAX_PROOF = 64
MAX_EVIDENCE_BYTES = 2 * MAX_CHECKPOINT_BYTES + (MAX_PROOF + 1) * (HASH_SIZE + 2) + 64


@dataclass(frozen=True, slots=True)
class Equivocation:
    """Verified evidence that `origin` signed `first` and `second`, which cannot both be true."""

    origin: str
    first: SignedCheckpoint
    second: SignedCheckpoint
    prefix_root: bytes
    proof: tuple[bytes, ...]
    #: The canonical encoding, exactly as verified.
    raw: bytes

    @property
    def detail(self) -> str:
        a, b = self.first.checkpoint, self.second.checkpoint
        if a.size == b.size:
            return f"{self.origin} signed two different roots at size {a.size}"
        return (
            f"{self.origin} signed a checkpoint at {a.size} "
            f"that its checkpoint at {b.size} does not extend"
        )


def encode_evidence(
    first: bytes, second: bytes, prefix_root: bytes = b"", proof: Sequence[bytes] = ()
) -> bytes:
    """The canonical encoding; `first` and `second` must already carry the origin's line only
    (protocol.checkpoint.origin_signed), the smaller first."""
    return codec.encode([EVIDENCE_VERSION, first, second, prefix_root, list(proof)])


def decode_evidence(raw: bytes) -> tuple[bytes, bytes, bytes, tuple[bytes, ...]]:
    """The four fields, strictly decoded (canonical form, bounds); nothing verified yet."""
    items = codec.as_list(
        codec.decode(raw, max_bytes=MAX_EVIDENCE_BYTES, max_items=MAX_PROOF + 8), "evidence", 5
    )
    if codec.as_int(items[0], "evidence version") != EVIDENCE_VERSION:
        raise DecodeError("evidence: unsupported version")
    first = codec.as_bytes(items[1], "evidence first", MAX_CHECKPOINT_BYTES)
    second = codec.as_bytes(items[2], "evidence second", MAX_CHECKPOINT_BYTES)
    prefix_root = codec.as_bytes(items[3], "evidence prefix root", HASH_SIZE)
    hashes = codec.as_list(items[4], "evidence proof")
    if len(hashes) > MAX_PROOF:
        raise DecodeError("evidence proof too long")
    proof = tuple(codec.as_bytes(h, "evidence proof hash", HASH_SIZE, HASH_SIZE) for h in hashes)
    return first, second, prefix_root, proof


def verify_evidence(roster: Roster, raw: bytes) -> Equivocation:
    """Check evidence with the roster alone; ProtocolError (DecodeError, SignatureError,
    RosterError, ProofError, ValidationError) says why it proves nothing."""
    first_raw, second_raw, prefix_root, proof = decode_evidence(raw)
    first = _opened(roster, first_raw)
    second = _opened(roster, second_raw)
    a, b = first.checkpoint, second.checkpoint
    if a.origin != b.origin:
        raise ValidationError("evidence checkpoints are of two different logs")
    if (a.size, first.raw) >= (b.size, second.raw):
        raise ValidationError("evidence: the smaller checkpoint comes first")
    if a.size == b.size:
        if prefix_root or proof:
            raise ValidationError("evidence at one size carries no proof")
        if a.root == b.root:
            raise ValidationError("the two checkpoints agree: no equivocation")
    else:
        if a.size == 0:
            raise ValidationError("evidence: every tree extends the empty one")
        if len(prefix_root) != HASH_SIZE:
            raise ValidationError("evidence at two sizes needs the 32-byte prefix root")
        if prefix_root == a.root:
            raise ValidationError(
                "the larger tree's prefix is the smaller checkpoint: no equivocation"
            )
        try:
            merkle.verify_consistency(a.size, b.size, prefix_root, b.root, proof)
        except ProofError as e:
            raise ProofError(f"evidence proof does not hold: {e}") from e
    return Equivocation(a.origin, first, second, prefix_root, proof, raw)


def _opened(roster: Roster, raw: bytes) -> SignedCheckpoint:
    parsed = parse_signed_checkpoint(raw)
    if len(parsed.note.signatures) != 1:
        raise ValidationError("an evidence checkpoint carries the origin's signature line only")
    cp = parsed.checkpoint
    return open_checkpoint(raw, roster.checkpoint_key(cp.origin, cp.size))


def evidence_of(
    roster: Roster, one: bytes, other: bytes, prefix_root: bytes = b"", proof: Sequence[bytes] = ()
) -> Equivocation:
    """Verified evidence from two signed checkpoints of one origin, in either order, whatever
    other lines they carry (only the origin's signature line is kept)."""
    a, b = (_origin_line_only(roster, raw) for raw in (one, other))
    if (a.checkpoint.size, a.raw) > (b.checkpoint.size, b.raw):
        a, b = b, a
    return verify_evidence(roster, encode_evidence(a.raw, b.raw, prefix_root, proof))


def _origin_line_only(roster: Roster, raw: bytes) -> SignedCheckpoint:
    cp = parse_signed_checkpoint(raw).checkpoint
    return origin_signed(raw, roster.checkpoint_key(cp.origin, cp.size))
