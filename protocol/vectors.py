"""Deterministic test vectors: a small sample log with checkpoints, tlog-proofs and consistency
proofs, for other implementations (tests/interop checks them with Go's sumdb packages).

`build_vectors()` is pure and returns {relative path: bytes}. Run as
`python -m protocol.vectors DIR` to write them under DIR: `main()` is the one place in
`protocol/` that touches the disk, and only when the module is run as a program.

Files (sizes and pairs are listed in CHECKPOINT_SIZES, PROOF_INDICES, CONSISTENCY_PAIRS):
  verifier.key             the log's note verifier key (name+keyid+base64(0x01||key))
  witness.key              a witness's cosignature verifier key (algorithm 0x04)
  checkpoint.N             the signed checkpoint of size N (the largest also cosigned)
  entries/I.bin            the canonical bytes of entry I
  proofs/I.tlog-proof      c2sp.org/tlog-proof@v1 of entry I against the largest checkpoint
  consistency.M.N          the RFC 9162 consistency proof from size M to N, base64, one a line
"""

from __future__ import annotations

import hashlib
import sys

from protocol import merkle
from protocol.checkpoint import SignedCheckpoint
from protocol.cosignature import cosign, cosigner_verifier
from protocol.entries import Add, Confirm, Dispute, Entry, EntryRef, Retract, encode_entry
from protocol.merkle import NodeId
from protocol.note import Verifier, add_signatures, b64
from protocol.signing import SigningKey
from protocol.tlogproof import format_tlog_proof
from protocol.writer import LogWriter

ORIGIN = "example.hashmesh/vectors"
#: Another member's log, whose entries the sample log's confirmations are about.
PEER_ORIGIN = "example.hashmesh/peer"
WITNESS = "example.hashmesh/witness"
LOG_KEY = SigningKey(hashlib.sha256(b"hashmesh test vectors: log key").digest())
WITNESS_KEY = SigningKey(hashlib.sha256(b"hashmesh test vectors: witness key").digest())
BASE_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
COSIGN_TIME = 1_767_229_200  # unix seconds, one hour later
ENTRY_COUNT = 20
CHECKPOINT_SIZES = (1, 7, 8, 13, 20)
PROOF_INDICES = (0, 1, 6, 7, 8, 12, 13, 19)
CONSISTENCY_PAIRS = ((1, 7), (1, 20), (7, 8), (7, 20), (8, 13), (8, 20), (13, 20))


def sample_entries() -> list[Entry]:
    """ENTRY_COUNT entries of every kind, with values derived from their index."""
    entries: list[Entry] = []
    for i in range(ENTRY_COUNT):
        ts = BASE_MS + i * 60_000
        digest = hashlib.sha256(f"sample content {i}".encode()).digest()
        if i % 10 == 5:
            entries.append(Retract(ts, EntryRef(ORIGIN, i - 2), "submitted by mistake"))
        elif i % 10 == 9:
            entries.append(Dispute(ts, EntryRef(ORIGIN, i - 1), "wrong-label", "news footage"))
        elif i % 10 == 7:
            reason = "also-removed" if i < 10 else "reviewed"
            entries.append(Confirm(ts, EntryRef(PEER_ORIGIN, i), reason, "same video"))
        elif i % 3 == 0:
            entries.append(Add(ts, "pdq", digest, ("glorification",), f"incident-{i // 4}"))
        elif i % 3 == 1:
            entries.append(Add(ts, "sha256", digest, ("terrorist-attack",), None, b"ref"))
        else:
            entries.append(Add(ts, "url", f"https://example.com/post/{i}", ("recruitment",)))
    return entries


def build_vectors() -> dict[str, bytes]:
    """Every vector file, by path relative to the output directory."""
    raws = [encode_entry(e) for e in sample_entries()]
    writer = LogWriter(ORIGIN, LOG_KEY)
    nodes: dict[NodeId, bytes] = {}
    checkpoints: dict[int, SignedCheckpoint] = {}
    for raw in raws:
        plan = writer.plan([raw])
        nodes.update(plan.nodes)
        writer.commit(plan)
        if writer.size in CHECKPOINT_SIZES:
            checkpoints[writer.size] = writer.sign()

    out: dict[str, bytes] = {
        "verifier.key": (Verifier(ORIGIN, LOG_KEY.public).text() + "\n").encode(),
        "witness.key": (cosigner_verifier(WITNESS, WITNESS_KEY.public).text() + "\n").encode(),
    }
    largest = max(CHECKPOINT_SIZES)
    for size, signed in checkpoints.items():
        raw = signed.raw
        if size == largest:
            cosig = cosign(signed.checkpoint.body(), WITNESS, WITNESS_KEY, COSIGN_TIME)
            raw = add_signatures(raw, [cosig])
        out[f"checkpoint.{size}"] = raw
    for index, raw in enumerate(raws):
        out[f"entries/{index}.bin"] = raw
    for index in PROOF_INDICES:
        proof = merkle.inclusion_proof(index, largest, nodes)
        out[f"proofs/{index}.tlog-proof"] = format_tlog_proof(
            index, proof, out[f"checkpoint.{largest}"]
        )
    for old, new in CONSISTENCY_PAIRS:
        proof = merkle.consistency_proof(old, new, nodes)
        out[f"consistency.{old}.{new}"] = "".join(b64(h) + "\n" for h in proof).encode()
    return out


def main(argv: list[str]) -> int:
    """Write build_vectors() under the directory argv[0]: the only I/O in protocol/."""
    # Imported here: protocol/ modules import nothing that touches the disk at module level.
    from pathlib import Path  # noqa: PLC0415

    if len(argv) != 1:
        print("usage: python -m protocol.vectors DIR", file=sys.stderr)
        return 2
    root = Path(argv[0])
    for relative, data in sorted(build_vectors().items()):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
