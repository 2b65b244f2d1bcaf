"""C2SP tlog-proof@v1: an offline-verifiable proof that an entry is in a checkpointed log.

c2sp.org/tlog-proof@v1
extra <base64>          (optional)
index <decimal>
<base64 inclusion-proof hash>   (zero or more)
<blank line>
<signed checkpoint note, with any cosignatures>
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from protocol import merkle
from protocol.checkpoint import SignedCheckpoint, open_checkpoint, parse_decimal
from protocol.errors import DecodeError, ProofError
from protocol.note import b64, unb64

HEADER = "c2sp.org/tlog-proof@v1"
MAX_PROOF_HASHES = 64


@dataclass(frozen=True, slots=True)
class TlogProof:
    index: int
    proof: tuple[bytes, ...]
    checkpoint_raw: bytes
    extra: bytes | None = None

    def verify(self, entry: bytes, public: bytes) -> SignedCheckpoint:
        """Check the checkpoint's signature and the entry's inclusion. Returns the checkpoint."""
        signed = open_checkpoint(self.checkpoint_raw, public)
        cp = signed.checkpoint
        # An index past the tree is a bad proof, not a caller's bug (merkle's ValidationError).
        if self.index >= cp.size:
            raise ProofError(f"tlog-proof index {self.index} is not below size {cp.size}")
        merkle.verify_inclusion(self.index, cp.size, merkle.leaf_hash(entry), self.proof, cp.root)
        return signed


def format_tlog_proof(
    index: int, proof: Sequence[bytes], checkpoint_raw: bytes, extra: bytes | None = None
) -> bytes:
    lines = [HEADER]
    if extra is not None:
        lines.append(f"extra {b64(extra)}")
    lines.append(f"index {index}")
    lines.extend(b64(h) for h in proof)
    return ("\n".join(lines) + "\n\n").encode() + checkpoint_raw


def parse_tlog_proof(raw: bytes) -> TlogProof:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError("tlog-proof is not UTF-8") from e
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise DecodeError("tlog-proof has no checkpoint")
    lines = head.split("\n")
    if lines[0] != HEADER:
        raise DecodeError("not a c2sp.org/tlog-proof@v1")
    rest = lines[1:]
    extra = None
    if rest and rest[0].startswith("extra "):
        extra = unb64(rest[0][len("extra ") :], "tlog-proof extra")
        rest = rest[1:]
    if not rest or not rest[0].startswith("index "):
        raise DecodeError("tlog-proof has no index line")
    index = parse_decimal(rest[0][len("index ") :], "tlog-proof index")
    hashes = rest[1:]
    if len(hashes) > MAX_PROOF_HASHES:
        raise DecodeError("tlog-proof has too many hashes")
    proof = []
    for line in hashes:
        value = unb64(line, "tlog-proof hash")
        if len(value) != merkle.HASH_SIZE:
            raise DecodeError("tlog-proof hash is not 32 bytes")
        proof.append(value)
    return TlogProof(index, tuple(proof), note.encode(), extra)
