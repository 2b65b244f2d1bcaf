"""protocol.tlogproof: c2sp.org/tlog-proof@v1 format, parse, verify, and tampering."""

from __future__ import annotations

import base64
import hashlib

import pytest

from protocol import merkle
from protocol.errors import DecodeError, ProofError, ProtocolError, SignatureError
from protocol.merkle import NodeId
from protocol.signing import SigningKey
from protocol.tlogproof import (
    HEADER,
    MAX_PROOF_HASHES,
    TlogProof,
    format_tlog_proof,
    parse_tlog_proof,
)
from protocol.writer import LogWriter

KEY = SigningKey(hashlib.sha256(b"tlog-proof test key").digest())
ORIGIN = "example.com/log"
ENTRIES = [f"entry {i}".encode() for i in range(13)]


def _log() -> tuple[LogWriter, dict[NodeId, bytes]]:
    writer = LogWriter(ORIGIN, KEY)
    plan = writer.plan(ENTRIES)
    writer.commit(plan)
    return writer, dict(plan.nodes)


WRITER, NODES = _log()
CHECKPOINT = WRITER.sign().raw


def _proof(index: int, extra: bytes | None = None) -> bytes:
    hashes = merkle.inclusion_proof(index, len(ENTRIES), NODES)
    return format_tlog_proof(index, hashes, CHECKPOINT, extra)


def test_layout() -> None:
    raw = _proof(5, b"hi")
    head, _, note = raw.partition(b"\n\n")
    lines = head.decode().split("\n")
    assert lines[0] == HEADER
    assert lines[1] == "extra " + base64.b64encode(b"hi").decode()
    assert lines[2] == "index 5"
    hashes = merkle.inclusion_proof(5, len(ENTRIES), NODES)
    assert lines[3:] == [base64.b64encode(h).decode() for h in hashes]
    assert note == CHECKPOINT


@pytest.mark.parametrize("index", range(len(ENTRIES)))
def test_round_trip_and_verify_every_index(index: int) -> None:
    parsed = parse_tlog_proof(_proof(index))
    assert parsed.index == index
    assert parsed.extra is None
    assert parsed.checkpoint_raw == CHECKPOINT
    signed = parsed.verify(ENTRIES[index], KEY.public)
    assert signed.checkpoint.size == len(ENTRIES)
    assert signed.checkpoint.root == WRITER.root


def test_extra_round_trips() -> None:
    assert parse_tlog_proof(_proof(3, b"\x00extra")).extra == b"\x00extra"
    assert parse_tlog_proof(_proof(3, b"")).extra == b""


def test_single_entry_log_has_no_hashes() -> None:
    writer = LogWriter(ORIGIN, KEY)
    writer.commit(writer.plan([b"only"]))
    raw = format_tlog_proof(0, [], writer.sign().raw)
    assert raw.startswith(f"{HEADER}\nindex 0\n\n".encode())
    parse_tlog_proof(raw).verify(b"only", KEY.public)


def test_tampering_is_caught() -> None:
    good = parse_tlog_proof(_proof(6))
    with pytest.raises(ProofError):
        good.verify(ENTRIES[7], KEY.public)  # another entry
    with pytest.raises(ProofError):
        TlogProof(7, good.proof, good.checkpoint_raw).verify(ENTRIES[6], KEY.public)
    flipped = (bytes([good.proof[0][0] ^ 1]) + good.proof[0][1:], *good.proof[1:])
    with pytest.raises(ProofError):
        TlogProof(6, flipped, good.checkpoint_raw).verify(ENTRIES[6], KEY.public)
    with pytest.raises(ProofError):
        TlogProof(6, good.proof[:-1], good.checkpoint_raw).verify(ENTRIES[6], KEY.public)
    with pytest.raises(ProofError):
        TlogProof(6, (*good.proof, good.proof[0]), good.checkpoint_raw).verify(
            ENTRIES[6], KEY.public
        )
    with pytest.raises(SignatureError):
        good.verify(ENTRIES[6], SigningKey.generate().public)
    forged = good.checkpoint_raw.replace(b"\n13\n", b"\n12\n")
    with pytest.raises(SignatureError):
        TlogProof(6, good.proof, forged).verify(ENTRIES[6], KEY.public)


def test_index_beyond_size_is_a_proof_error() -> None:
    good = parse_tlog_proof(_proof(6))
    for index in (13, 2**63 - 1):
        with pytest.raises(ProofError):
            TlogProof(index, good.proof, good.checkpoint_raw).verify(ENTRIES[6], KEY.public)


HASH = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    "head",
    [
        "",
        "c2sp.org/tlog-proof@v2\nindex 1",
        f"{HEADER}",
        f"{HEADER}\nextra !!\nindex 1",
        f"{HEADER}\nindex 1\nextra AA==",
        f"{HEADER}\nindex",
        f"{HEADER}\nindex ",
        f"{HEADER}\nindex 01",
        f"{HEADER}\nindex -1",
        f"{HEADER}\nindex 1 ",
        f"{HEADER}\nindex {2**63}",
        f"{HEADER}\nindex {'7' * 5000}",
        f"{HEADER}\nindex 1\n{HASH.rstrip('=')}",
        f"{HEADER}\nindex 1\n{base64.b64encode(bytes(31)).decode()}",
        f"{HEADER}\nindex 1\n{HASH} ",
        f"{HEADER}\nindex 1\n" + "\n".join([HASH] * (MAX_PROOF_HASHES + 1)),
    ],
)
def test_malformed_heads(head: str) -> None:
    raw = head.encode() + b"\n\n" + CHECKPOINT
    with pytest.raises(DecodeError):
        parse_tlog_proof(raw)


def test_no_checkpoint_or_not_utf8() -> None:
    with pytest.raises(DecodeError):
        parse_tlog_proof(f"{HEADER}\nindex 1\n".encode())
    with pytest.raises(DecodeError):
        parse_tlog_proof(f"{HEADER}\nindex 1\n\n".encode() + b"\xff")


def test_malformed_checkpoint_fails_on_verify() -> None:
    parsed = parse_tlog_proof(f"{HEADER}\nindex 0\n\nnot a note\n".encode())
    with pytest.raises(ProtocolError):
        parsed.verify(ENTRIES[0], KEY.public)
