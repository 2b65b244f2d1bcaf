"""Provenance bundles: everything an auditor needs, offline, to check who added an entry.

A bundle is JSON: {"type": "hashmesh-provenance-v1", "tlog_proof": <C2SP tlog-proof text whose
`extra` line carries the entry's exact bytes, and whose checkpoint carries the cosignatures>,
"rosters": [base64 signed rosters, the consortium's first version first]}. Checking it needs
the pinned first roster (or trusting the bundle's, whose SHA-256 is reported).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass

from protocol.checkpoint import parse_signed_checkpoint
from protocol.cosignature import valid_cosigners
from protocol.entries import Entry, decode_entry
from protocol.errors import DecodeError, RosterError
from protocol.roster import Roster, walk_chain
from protocol.tlogproof import TlogProof, parse_tlog_proof
from protocol.trust import open_trusted

BUNDLE_TYPE = "hashmesh-provenance-v1"
MAX_BUNDLE_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class ProvenanceBundle:
    tlog_proof: bytes
    rosters: tuple[bytes, ...]

    def encode(self) -> bytes:
        data = {
            "type": BUNDLE_TYPE,
            "tlog_proof": self.tlog_proof.decode(),
            "rosters": [base64.b64encode(r).decode() for r in self.rosters],
        }
        return (json.dumps(data, indent=2) + "\n").encode()

    @classmethod
    def decode(cls, raw: bytes) -> ProvenanceBundle:
        if len(raw) > MAX_BUNDLE_BYTES:
            raise DecodeError("bundle too large")
        try:
            data = json.loads(raw)
            if not isinstance(data, dict) or data.get("type") != BUNDLE_TYPE:
                raise DecodeError("not a hashmesh provenance bundle")
            rosters = tuple(base64.b64decode(r, validate=True) for r in data["rosters"])
            proof = str(data["tlog_proof"]).encode()
        except (ValueError, KeyError, TypeError, binascii.Error) as e:
            raise DecodeError(f"malformed bundle: {e}") from e
        if not rosters:
            raise DecodeError("bundle carries no roster")
        return cls(proof, rosters)


@dataclass(frozen=True, slots=True)
class Provenance:
    entry: Entry
    entry_bytes: bytes
    origin: str
    index: int
    member_id: str
    display_name: str
    checkpoint_size: int
    roster_version: int
    genesis_sha256: str
    cosigners: tuple[str, ...]
    witness_quorum: int

    @property
    def witnessed(self) -> bool:
        return len(self.cosigners) >= self.witness_quorum


def verify_bundle(raw: bytes, pinned_genesis: bytes | None = None) -> Provenance:
    """Check a bundle completely; raises a ProtocolError on any failure."""
    bundle = ProvenanceBundle.decode(raw)
    genesis = bundle.rosters[0]
    if pinned_genesis is not None and genesis != pinned_genesis:
        raise RosterError("the bundle's first roster is not the pinned one")
    # No reference time: a bundle is evidence of what was logged under the rosters of its day.
    rosters = walk_chain(bundle.rosters)
    proof: TlogProof = parse_tlog_proof(bundle.tlog_proof)
    if proof.extra is None:
        raise DecodeError("the proof does not carry the entry (no extra line)")
    origin = parse_signed_checkpoint(proof.checkpoint_raw).checkpoint.origin
    roster = _latest_with(rosters, origin)
    member = roster.member_by_origin(origin)
    # Only a trusted checkpoint proves anything: one signed by a key declared compromised
    # counts only up to the size where that key was last trusted (protocol.trust).
    trusted = open_trusted(proof.checkpoint_raw, roster, origin)
    signed = proof.verify(proof.extra, roster.checkpoint_key(origin, trusted.checkpoint.size))
    entry = decode_entry(proof.extra)
    witnesses = {m.member_id: m.node_key for m in roster.members if m.origin != origin}
    cosigners = valid_cosigners(signed.checkpoint.body(), signed.note.signatures, witnesses)
    return Provenance(
        entry=entry,
        entry_bytes=proof.extra,
        origin=origin,
        index=proof.index,
        member_id=member.member_id,
        display_name=member.display_name,
        checkpoint_size=signed.checkpoint.size,
        roster_version=roster.version,
        genesis_sha256=hashlib.sha256(genesis).hexdigest(),
        cosigners=tuple(sorted(cosigners)),
        witness_quorum=roster.witness_quorum,
    )


def _latest_with(rosters: list[Roster], origin: str) -> Roster:
    for roster in reversed(rosters):
        if origin in roster.origins():
            return roster
    raise RosterError(f"no roster in the bundle lists the log {origin!r}")
