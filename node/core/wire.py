"""Bodies of the peer API: canonical msgpack arrays (through protocol.codec), strictly decoded.

checkpoints response  [1, roster_version, [[origin, checkpoint], ...]]
                      (GET /v1/checkpoints?known=<hex>: the checkpoints whose digest, the first
                      8 bytes of SHA-256 of their bytes, the asker listed are left out)
entries response      [1, checkpoint, start, [entry, ...], [proof hash, ...]]
push request          [1, origin, checkpoint, start, [entry, ...]]
push response         [1, status, size]
rosters response      [1, [signed roster, ...]]
proof response        [1, [hash, ...]]
evidence response     [1, [evidence, ...]]   (each as protocol/evidence.py encodes it)
evidence offer result [1, status]            ("held" or "known")
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from protocol import codec
from protocol.errors import DecodeError
from protocol.evidence import MAX_EVIDENCE_BYTES

WIRE_VERSION = 1
MAX_CHECKPOINT = 16 * 1024
MAX_ORIGIN = 128
MAX_ENTRY = 1 << 20
MAX_PROOF = 64
#: Bytes of a checkpoint's digest in the `known` query of GET /v1/checkpoints.
KNOWN_DIGEST = 8
#: Digests a `known` query may list (as many logs as a vector may carry).
MAX_KNOWN = 4096
#: Bodies at least this large travel deflated (Content-Encoding: deflate, docs/protocol.md):
#: pushes sent, checkpoint vectors answered; below it deflate saves less than it costs.
DEFLATE_MIN_BYTES = 512


@dataclass(frozen=True, slots=True)
class CheckpointVector:
    roster_version: int
    checkpoints: tuple[tuple[str, bytes], ...]


@dataclass(frozen=True, slots=True)
class EntriesPage:
    checkpoint: bytes
    start: int
    entries: tuple[bytes, ...]
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Push:
    origin: str
    checkpoint: bytes
    start: int
    entries: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class PushResult:
    status: str
    size: int


def _body(raw: bytes, name: str, length: int, max_bytes: int, max_items: int) -> list[codec.Value]:
    items = codec.as_list(codec.decode(raw, max_bytes=max_bytes, max_items=max_items), name, length)
    if codec.as_int(items[0], f"{name} version") != WIRE_VERSION:
        raise DecodeError(f"{name}: unsupported version")
    return items


def encode_vector(v: CheckpointVector) -> bytes:
    cps: list[codec.Value] = [[o, c] for o, c in v.checkpoints]
    return codec.encode([WIRE_VERSION, v.roster_version, cps])


def decode_vector(raw: bytes, max_bytes: int, max_logs: int = 4096) -> CheckpointVector:
    items = _body(raw, "checkpoints", 3, max_bytes, max_logs)
    pairs = []
    for i, pair in enumerate(codec.as_list(items[2], "checkpoints")):
        o, c = codec.as_list(pair, f"checkpoints[{i}]", 2)
        pairs.append(
            (codec.as_str(o, "origin", MAX_ORIGIN), codec.as_bytes(c, "cp", MAX_CHECKPOINT))
        )
    return CheckpointVector(codec.as_int(items[1], "roster_version"), tuple(pairs))


def checkpoint_digest(raw: bytes) -> bytes:
    """A checkpoint's bytes named in a `known` query: the first 8 bytes of their SHA-256."""
    return hashlib.sha256(raw).digest()[:KNOWN_DIGEST]


def encode_known(digests: Iterable[bytes]) -> str:
    """The `known` query value: the digests in hex, one after another, sorted."""
    return "".join(sorted(d.hex() for d in digests))


def decode_known(text: str) -> frozenset[bytes]:
    """The digests of a `known` query value, strictly: lower-case hex, whole digests, at
    most MAX_KNOWN of them."""
    width = 2 * KNOWN_DIGEST
    if len(text) % width or len(text) > width * MAX_KNOWN:
        raise DecodeError(f"known: a list of at most {MAX_KNOWN} digests of {width} hex digits")
    if text.strip("0123456789abcdef"):
        raise DecodeError("known: lower-case hex digits only")
    return frozenset(bytes.fromhex(text[i : i + width]) for i in range(0, len(text), width))


def without_known(v: CheckpointVector, known: frozenset[bytes]) -> CheckpointVector:
    """The vector less the checkpoints whose digest is in `known` (the asker holds them)."""
    if not known:
        return v
    kept = tuple((o, c) for o, c in v.checkpoints if checkpoint_digest(c) not in known)
    return CheckpointVector(v.roster_version, kept)


def encode_page(p: EntriesPage) -> bytes:
    entries: list[codec.Value] = list(p.entries)
    proof: list[codec.Value] = list(p.proof)
    return codec.encode([WIRE_VERSION, p.checkpoint, p.start, entries, proof])


def decode_page(raw: bytes, max_bytes: int, max_entries: int) -> EntriesPage:
    items = _body(raw, "entries", 5, max_bytes, max(max_entries, MAX_PROOF))
    entries = codec.as_list(items[3], "entries")
    if len(entries) > max_entries:
        raise DecodeError(f"entries: more than {max_entries}")
    proof = codec.as_list(items[4], "proof")
    if len(proof) > MAX_PROOF:
        raise DecodeError("proof: too long")
    return EntriesPage(
        codec.as_bytes(items[1], "checkpoint", MAX_CHECKPOINT),
        codec.as_int(items[2], "start", 0, 2**63 - 1),
        tuple(codec.as_bytes(e, "entry", MAX_ENTRY) for e in entries),
        tuple(codec.as_bytes(h, "proof hash", 32, exact=32) for h in proof),
    )


def encode_push(p: Push) -> bytes:
    entries: list[codec.Value] = list(p.entries)
    return codec.encode([WIRE_VERSION, p.origin, p.checkpoint, p.start, entries])


def decode_push(raw: bytes, max_bytes: int, max_entries: int) -> Push:
    items = _body(raw, "push", 5, max_bytes, max_entries)
    entries = codec.as_list(items[4], "entries")
    return Push(
        codec.as_str(items[1], "origin", MAX_ORIGIN),
        codec.as_bytes(items[2], "checkpoint", MAX_CHECKPOINT),
        codec.as_int(items[3], "start", 0, 2**63 - 1),
        tuple(codec.as_bytes(e, "entry", MAX_ENTRY) for e in entries),
    )


def encode_push_result(r: PushResult) -> bytes:
    return codec.encode([WIRE_VERSION, r.status, r.size])


def decode_push_result(raw: bytes) -> PushResult:
    items = _body(raw, "push result", 3, 1024, 4)
    return PushResult(codec.as_str(items[1], "status", 32), codec.as_int(items[2], "size"))


def encode_rosters(rosters: list[bytes]) -> bytes:
    items: list[codec.Value] = list(rosters)
    return codec.encode([WIRE_VERSION, items])


def decode_rosters(raw: bytes, max_bytes: int) -> list[bytes]:
    items = _body(raw, "rosters", 2, max_bytes, 1024)
    return [codec.as_bytes(r, "roster", max_bytes) for r in codec.as_list(items[1], "rosters")]


def encode_proof(proof: list[bytes]) -> bytes:
    items: list[codec.Value] = list(proof)
    return codec.encode([WIRE_VERSION, items])


def decode_proof(raw: bytes) -> list[bytes]:
    items = _body(raw, "proof", 2, 4096, MAX_PROOF)
    hashes = codec.as_list(items[1], "proof")
    return [codec.as_bytes(h, "proof hash", 32, exact=32) for h in hashes]


def encode_evidence_list(evidence: list[bytes]) -> bytes:
    items: list[codec.Value] = list(evidence)
    return codec.encode([WIRE_VERSION, items])


def decode_evidence_list(raw: bytes, max_bytes: int, max_items: int = 4096) -> list[bytes]:
    items = _body(raw, "evidence", 2, max_bytes, max_items)
    listed = codec.as_list(items[1], "evidence")
    return [codec.as_bytes(e, "evidence", MAX_EVIDENCE_BYTES) for e in listed]


def encode_evidence_result(status: str) -> bytes:
    return codec.encode([WIRE_VERSION, status])


def decode_evidence_result(raw: bytes) -> str:
    items = _body(raw, "evidence result", 2, 256, 4)
    return codec.as_str(items[1], "status", 32)
