"""protocol.note: C2SP signed notes, key ids, verifier and signer key texts, strict parsing."""

from __future__ import annotations

import base64
import hashlib

import pytest

from protocol.errors import DecodeError, ProtocolError, SignatureError
from protocol.note import (
    ALG_ED25519,
    MAX_SIGNATURES,
    Verifier,
    add_signatures,
    key_id,
    parse_note,
    parse_signer_key,
    sign_note,
    signer_key_text,
    verify_note,
)
from protocol.signing import SigningKey

KEY = SigningKey(hashlib.sha256(b"note test key").digest())
OTHER = SigningKey(hashlib.sha256(b"another note test key").digest())
NAME = "example.com/log"
TEXT = "hello\nworld\n"


def test_key_id_is_sha256_of_name_newline_alg_key() -> None:
    want = hashlib.sha256(NAME.encode() + b"\n\x01" + KEY.public).digest()[:4]
    assert key_id(NAME, KEY.public) == want
    assert key_id(NAME, KEY.public, 0x04) != want


def test_sign_then_verify_and_exact_layout() -> None:
    raw = sign_note(TEXT, NAME, KEY)
    text, _, sig_line = raw.decode().partition("\n\n")
    assert text + "\n" == TEXT
    assert sig_line.startswith("\u2014 example.com/log ") and sig_line.endswith("\n")
    blob = base64.b64decode(sig_line.split(" ")[2])
    assert blob[:4] == key_id(NAME, KEY.public)
    assert len(blob) == 4 + 64
    note = verify_note(raw, Verifier(NAME, KEY.public))
    assert note.text == TEXT
    assert note.encode() == raw


def test_verifier_text_round_trip_with_plus_in_base64() -> None:
    # Keys whose base64 holds '+' must still parse (the key text is split at two '+' only).
    for i in range(64):
        key = SigningKey(hashlib.sha256(f"k{i}".encode()).digest())
        verifier = Verifier(NAME, key.public)
        assert Verifier.parse(verifier.text()) == verifier
        name, parsed = parse_signer_key(signer_key_text(NAME, key))
        assert (name, parsed.seed) == (NAME, key.seed)


def test_verifier_text_layout() -> None:
    text = Verifier(NAME, KEY.public).text()
    name, kid, key = text.split("+", 2)
    assert name == NAME
    assert kid == key_id(NAME, KEY.public).hex()
    assert base64.b64decode(key) == bytes([ALG_ED25519]) + KEY.public


@pytest.mark.parametrize(
    "text",
    [
        "no-plus-at-all",
        "a+b",
        "bad name+00000000+" + base64.b64encode(b"\x01" + bytes(32)).decode(),
        f"{NAME}+00000000+" + base64.b64encode(b"\x01" + KEY.public).decode(),  # wrong id
        f"{NAME}+{key_id(NAME, KEY.public).hex()}+" + base64.b64encode(KEY.public).decode(),
        f"{NAME}+{key_id(NAME, KEY.public).hex()}+!!!!",
    ],
)
def test_bad_verifier_texts(text: str) -> None:
    with pytest.raises(DecodeError):
        Verifier.parse(text)


def test_bad_signer_keys() -> None:
    good = signer_key_text(NAME, KEY)
    with pytest.raises(DecodeError):
        parse_signer_key(good.replace("PRIVATE+KEY", "PUBLIC+KEY"))
    with pytest.raises(DecodeError):
        parse_signer_key(
            signer_key_text(NAME, OTHER).replace(
                key_id(NAME, OTHER.public).hex(), key_id(NAME, KEY.public).hex()
            )
        )
    with pytest.raises(DecodeError):
        signer_key_text("bad name", KEY)


def test_wrong_key_and_wrong_name_fail() -> None:
    raw = sign_note(TEXT, NAME, KEY)
    with pytest.raises(SignatureError):
        verify_note(raw, Verifier(NAME, OTHER.public))
    with pytest.raises(SignatureError):
        verify_note(raw, Verifier("example.com/other", KEY.public))
    with pytest.raises(SignatureError):
        verify_note(raw, Verifier(NAME, KEY.public, 0x04))


def test_signature_with_wrong_key_id_is_ignored() -> None:
    raw = sign_note(TEXT, NAME, KEY).decode()
    head, line = raw.rsplit("\n\u2014 ", 1)
    name, blob = line.rstrip("\n").split(" ")
    data = bytearray(base64.b64decode(blob))
    data[0] ^= 0xFF
    forged = f"{head}\n\u2014 {name} {base64.b64encode(bytes(data)).decode()}\n".encode()
    parse_note(forged)  # well formed
    with pytest.raises(SignatureError):
        verify_note(forged, Verifier(NAME, KEY.public))


def test_tampered_text_or_signature_fails() -> None:
    raw = sign_note(TEXT, NAME, KEY)
    with pytest.raises(SignatureError):
        verify_note(raw.replace(b"hello", b"hellO"), Verifier(NAME, KEY.public))
    text, sig = raw.decode().split("\u2014 ")
    name, blob = sig.rstrip("\n").split(" ")
    data = bytearray(base64.b64decode(blob))
    data[-1] ^= 1
    bad = f"{text}\u2014 {name} {base64.b64encode(bytes(data)).decode()}\n".encode()
    with pytest.raises(SignatureError):
        verify_note(bad, Verifier(NAME, KEY.public))


def test_any_valid_signature_among_several_is_enough() -> None:
    raw = sign_note(TEXT, "other.example/log", OTHER)
    other = parse_note(sign_note(TEXT, NAME, KEY)).signatures
    both = add_signatures(raw, list(other))
    note = verify_note(both, Verifier(NAME, KEY.public))
    assert [s.name for s in note.signatures] == ["other.example/log", NAME]
    verify_note(both, Verifier("other.example/log", OTHER.public))
    # Adding the same signature again changes nothing.
    assert add_signatures(both, list(other)) == both


def _sig_line(name: str = NAME, blob: bytes | None = None) -> str:
    blob = blob if blob is not None else b"\x00" * 68
    return f"\u2014 {name} {base64.b64encode(blob).decode()}\n"


GOOD_SIG = _sig_line()
B64_68 = base64.b64encode(b"\x00" * 68).decode()
# The same 68 bytes with a set bit in the padding: decodable, but not the canonical form.
B64_68_LOOSE = B64_68[:-2] + "B="


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"hello\n",  # no blank line, no signatures
        b"hello\n\n",  # blank line but no signatures
        ("hello\n" + GOOD_SIG).encode(),  # no blank line
        ("hello\n\n" + GOOD_SIG.rstrip("\n")).encode(),  # no final newline
        ("hello\n\n" + GOOD_SIG + "\n").encode(),  # trailing blank line
        ("hello\n\n" + GOOD_SIG.replace("\u2014", "-")).encode(),  # ASCII dash
        ("hello\n\n\u2014 " + NAME + " !!!!\n").encode(),  # bad base64
        ("hello\n\n\u2014 " + NAME + " " + B64_68.rstrip("=") + "\n").encode(),  # no padding
        ("hello\n\n\u2014 " + NAME + " " + B64_68_LOOSE + "\n").encode(),  # non-canonical
        ("hello\n\n\u2014 " + NAME + " AAAAAA==\n").encode(),  # shorter than key id + 1
        ("hello\n\n\u2014 " + NAME + "  " + B64_68 + "\n").encode(),  # two spaces
        ("hello\n\n\u2014 " + NAME + " " + B64_68 + " x\n").encode(),  # three fields
        ("hello\n\n" + _sig_line("a+b")).encode(),  # '+' in name
        ("hello\n\n" + _sig_line("a\u00a0b")).encode(),  # a Unicode space in name
        ("hello\n\n" + _sig_line("")).encode(),  # empty name
        ("hel\x01lo\n\n" + GOOD_SIG).encode(),  # control character in text
        ("hello\r\n\n" + GOOD_SIG).encode(),  # carriage return
        ("hello\t\n\n" + GOOD_SIG).encode(),  # tab
        ("hello\n\n" + _sig_line("a\x7fb")).encode(),  # DEL in a signature name
        ("hello\n\n" + GOOD_SIG.replace("\n", "\x0b\n")).encode(),  # control char in a sig line
        b"hello\xff\n\n" + GOOD_SIG.encode(),  # not UTF-8
        ("hello\n\n" + GOOD_SIG * (MAX_SIGNATURES + 1)).encode(),
    ],
)
def test_malformed_notes_raise_decode_error(raw: bytes) -> None:
    with pytest.raises(DecodeError):
        parse_note(raw)
    with pytest.raises(ProtocolError):
        verify_note(raw, Verifier(NAME, KEY.public))


def test_blank_line_inside_text_splits_at_the_last_one() -> None:
    note = parse_note(("a\n\nb\n\n" + GOOD_SIG).encode())
    assert note.text == "a\n\nb\n"
    assert len(note.signatures) == 1


def test_sign_note_refuses_bad_text_and_names() -> None:
    for text in ("no newline", "tab\there\n", "nul\x00\n"):
        with pytest.raises(DecodeError):
            sign_note(text, NAME, KEY)
    for name in ("", "with space", "with+plus", "tab\tname", "ctl\x01name"):
        with pytest.raises(DecodeError):
            sign_note(TEXT, name, KEY)


def test_unicode_text_and_name_are_fine() -> None:
    raw = sign_note("caf\u00e9 \u2603\n", "\u00e9xample/log", KEY)
    assert verify_note(raw, Verifier("\u00e9xample/log", KEY.public)).text == "caf\u00e9 \u2603\n"
