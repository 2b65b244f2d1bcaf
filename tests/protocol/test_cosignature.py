"""protocol.cosignature: C2SP tlog-cosignature/v1 lines, verification, distinct-key counting."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest

from protocol import cosignature, note
from protocol.checkpoint import Checkpoint, open_checkpoint, open_witnessed, sign_checkpoint
from protocol.cosignature import (
    ALG_COSIGNATURE,
    Cosignature,
    VerifiedLines,
    cosign,
    cosignature_message,
    cosigner_verifier,
    valid_cosigners,
    verified_cosignatures,
    verify_cosignature,
)
from protocol.errors import SignatureError
from protocol.note import NoteSignature, Verifier, add_signatures, key_id, parse_note, verify_note
from protocol.signing import SigningKey, verify

LOG = SigningKey(hashlib.sha256(b"cosig log key").digest())
W1 = SigningKey(hashlib.sha256(b"witness one").digest())
W2 = SigningKey(hashlib.sha256(b"witness two").digest())
W3 = SigningKey(hashlib.sha256(b"witness three").digest())
BODY = Checkpoint("example.com/log", 5, hashlib.sha256(b"r").digest()).body()
TS = 1_700_000_000


def test_message_and_line_layout() -> None:
    assert cosignature_message(BODY, TS) == b"cosignature/v1\ntime 1700000000\n" + BODY.encode()
    sig = cosign(BODY, "w1.example", W1, TS)
    assert sig.key_id == hashlib.sha256(b"w1.example\n\x04" + W1.public).digest()[:4]
    assert sig.key_id == key_id("w1.example", W1.public, ALG_COSIGNATURE)
    assert sig.signature[:8] == struct.pack(">Q", TS)
    assert verify(W1.public, cosignature_message(BODY, TS), sig.signature[8:])
    blob = base64.b64decode(sig.line().split(" ")[2])
    assert len(blob) == 4 + 8 + 64


def test_verify_round_trip() -> None:
    sig = cosign(BODY, "w1.example", W1, TS)
    assert verify_cosignature(BODY, sig, "w1.example", W1.public) == Cosignature("w1.example", TS)


def test_verify_failures() -> None:
    sig = cosign(BODY, "w1.example", W1, TS)
    with pytest.raises(SignatureError):
        verify_cosignature(BODY, sig, "w2.example", W1.public)
    with pytest.raises(SignatureError):
        verify_cosignature(BODY, sig, "w1.example", W2.public)
    with pytest.raises(SignatureError):
        verify_cosignature(BODY.replace("\n5\n", "\n6\n"), sig, "w1.example", W1.public)
    later = NoteSignature(sig.name, sig.key_id, struct.pack(">Q", TS + 1) + sig.signature[8:])
    with pytest.raises(SignatureError):
        verify_cosignature(BODY, later, "w1.example", W1.public)
    short = NoteSignature(sig.name, sig.key_id, sig.signature[:-1])
    with pytest.raises(SignatureError):
        verify_cosignature(BODY, short, "w1.example", W1.public)


def test_note_signature_is_not_a_cosignature() -> None:
    # Same key and name but algorithm 0x01: a different key id, so it is refused.
    signed = sign_checkpoint(Checkpoint("w1.example", 5, hashlib.sha256(b"r").digest()), W1)
    plain = parse_note(signed.raw).signatures[0]
    with pytest.raises(SignatureError):
        verify_cosignature(signed.checkpoint.body(), plain, "w1.example", W1.public)


def test_cosigned_checkpoint_still_opens_and_verifier_text() -> None:
    signed = sign_checkpoint(Checkpoint("example.com/log", 5, hashlib.sha256(b"r").digest()), LOG)
    raw = add_signatures(signed.raw, [cosign(BODY, "w1.example", W1, TS)])
    assert open_checkpoint(raw, LOG.public).checkpoint.size == 5
    note = parse_note(raw)
    assert verify_cosignature(BODY, note.signatures[1], "w1.example", W1.public).timestamp == TS
    # An Ed25519 note verifier never accepts a cosignature key.
    with pytest.raises(SignatureError):
        verify_note(raw, cosigner_verifier("w1.example", W1.public))
    text = cosigner_verifier("w1.example", W1.public).text()
    assert Verifier.parse(text) == Verifier("w1.example", W1.public, ALG_COSIGNATURE)


def test_valid_cosigners_counts_distinct_keys() -> None:
    sigs = [
        cosign(BODY, "w1", W1, TS),
        cosign(BODY, "w1", W1, TS + 5),  # the same witness twice
        cosign(BODY, "w1-alias", W1, TS),  # another name for the same key
        cosign(BODY, "w2", W2, TS),
        cosign(BODY, "w3", W3, TS),
        cosign(BODY, "unknown", SigningKey.generate(), TS),
    ]
    witnesses = {"w1": W1.public, "w1-alias": W1.public, "w2": W2.public}
    got = valid_cosigners(BODY, sigs, witnesses)
    assert len(got) == 2
    assert "w2" in got
    assert got & {"w1", "w1-alias"}


def test_valid_cosigners_skips_bad_and_forged() -> None:
    forged = cosign(BODY, "w2", W1, TS)  # named w2, signed with w1's key
    wrong_body = cosign(BODY.replace("\n5\n", "\n6\n"), "w3", W3, TS)
    got = valid_cosigners(BODY, [forged, wrong_body], {"w2": W2.public, "w3": W3.public})
    assert got == set()


def _forged(name: str, public: bytes, n: int) -> list[NoteSignature]:
    """Lines carrying a real witness's name and key id whose signatures are random bytes."""
    kid = key_id(name, public, ALG_COSIGNATURE)
    return [NoteSignature(name, kid, struct.pack(">Q", TS) + bytes([i]) * 64) for i in range(n)]


def test_only_lines_that_verify_are_kept_one_per_witness_key() -> None:
    witnesses = {"w1.example": W1.public, "w2.example": W2.public, "alias": W1.public}
    honest1 = cosign(BODY, "w1.example", W1, TS)
    again1 = cosign(BODY, "w1.example", W1, TS + 1)
    alias = cosign(BODY, "alias", W1, TS)
    honest2 = cosign(BODY, "w2.example", W2, TS)
    lines = [*_forged("w1.example", W1.public, 5), honest1, again1, alias, honest2]
    assert verified_cosignatures(BODY, lines, witnesses) == [honest1, honest2]
    assert verified_cosignatures(BODY, _forged("w2.example", W2.public, 98), witnesses) == []


def test_a_checkpoint_opened_keeps_only_the_origin_signature_and_verified_cosignatures() -> None:
    signed = sign_checkpoint(Checkpoint("example.com/log", 5, bytes(32)), LOG)
    body = signed.checkpoint.body()
    honest = cosign(body, "w1.example", W1, TS)
    junk = _forged("w2.example", W2.public, 97)
    stranger = cosign(body, "stranger", W3, TS)
    raw = add_signatures(signed.raw, [*junk, honest, stranger])
    witnesses = {"w1.example": W1.public, "w2.example": W2.public}
    opened = open_witnessed(raw, LOG.public, witnesses)
    assert opened.note.signatures == (signed.note.signatures[0], honest)
    assert opened.raw == add_signatures(signed.raw, [honest])
    assert open_witnessed(opened.raw, LOG.public, witnesses).raw is opened.raw
    # Room is left for every honest witness, however many lines the offer carried.
    assert open_checkpoint(
        add_signatures(opened.raw, [cosign(body, "w2.example", W2, TS)]), LOG.public
    )


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count Ed25519 verifications of note signatures and cosignatures."""
    calls = [0]

    def counted(public: bytes, message: bytes, signature: bytes) -> bool:
        calls[0] += 1
        return verify(public, message, signature)

    monkeypatch.setattr(cosignature, "verify", counted)
    monkeypatch.setattr(note, "verify", counted)
    return calls


def test_copies_of_one_checkpoint_verify_each_signature_line_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Regression: every peer offers each log's checkpoint at every sync round, each copy with
    # the cosignatures it collected; every line was verified again each time (N^3 a round).
    signed = sign_checkpoint(Checkpoint("example.com/log", 5, bytes(32)), LOG)
    body = signed.checkpoint.body()
    witnesses = {"w1.example": W1.public, "w2.example": W2.public}
    c1, c2 = cosign(body, "w1.example", W1, TS), cosign(body, "w2.example", W2, TS)
    copies = [add_signatures(signed.raw, lines) for lines in ([c1], [c2], [c1, c2], [c2, c1])]
    fresh = [open_witnessed(raw, LOG.public, witnesses) for raw in copies]
    calls = _counting(monkeypatch)
    known = VerifiedLines()
    assert [open_witnessed(raw, LOG.public, witnesses, known) for raw in copies] == fresh
    assert calls[0] == 3  # the origin's line and each cosignature, once


def test_a_remembered_line_vouches_only_for_its_own_bytes_key_and_body() -> None:
    known = VerifiedLines()
    good = cosign(BODY, "w1.example", W1, TS)
    assert verified_cosignatures(BODY, [good], {"w1.example": W1.public}, known) == [good]
    forged = _forged("w1.example", W1.public, 1)
    assert verified_cosignatures(BODY, forged, {"w1.example": W1.public}, known) == []
    # The same line under another key, or over another body, is verified (and fails).
    assert verified_cosignatures(BODY, [good], {"w1.example": W2.public}, known) == []
    other = BODY.replace("\n5\n", "\n6\n")
    assert verified_cosignatures(other, [good], {"w1.example": W1.public}, known) == []


def test_verified_lines_stay_bounded() -> None:
    known = VerifiedLines(limit=3)
    lines = [cosign(BODY, "w1.example", W1, TS + i) for i in range(10)]
    for line in lines:
        known.add(BODY, W1.public, line)
    assert sum(known.has(BODY, W1.public, line) for line in lines) <= 3
