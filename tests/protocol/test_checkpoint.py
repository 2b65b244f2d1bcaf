"""protocol.checkpoint: C2SP tlog-checkpoint bodies, signing with the origin as key name."""

from __future__ import annotations

import base64
import hashlib

import pytest

from protocol.checkpoint import (
    MAX_SIZE,
    Checkpoint,
    open_checkpoint,
    parse_decimal,
    parse_signed_checkpoint,
    sign_checkpoint,
)
from protocol.errors import DecodeError, SignatureError
from protocol.note import Verifier, sign_note, verify_note
from protocol.signing import SigningKey

KEY = SigningKey(hashlib.sha256(b"checkpoint test key").digest())
OTHER = SigningKey(hashlib.sha256(b"other checkpoint test key").digest())
ORIGIN = "example.com/log"
ROOT = hashlib.sha256(b"root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()


def test_body_layout_and_round_trip() -> None:
    cp = Checkpoint(ORIGIN, 42, ROOT, ("ext one", "ext-two"))
    assert cp.body() == f"{ORIGIN}\n42\n{ROOT_B64}\next one\next-two\n"
    assert Checkpoint.parse(cp.body()) == cp


def test_sign_and_open() -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), KEY)
    opened = open_checkpoint(signed.raw, KEY.public)
    assert opened.checkpoint == Checkpoint(ORIGIN, 7, ROOT)
    assert opened.raw == signed.raw
    # The signature line is an ordinary signed-note signature by the origin's key.
    verify_note(signed.raw, Verifier(ORIGIN, KEY.public))
    with pytest.raises(SignatureError):
        open_checkpoint(signed.raw, OTHER.public)


def test_signature_by_another_name_does_not_count() -> None:
    body = Checkpoint(ORIGIN, 7, ROOT).body()
    raw = sign_note(body, "someone.else/log", KEY)
    assert parse_signed_checkpoint(raw).checkpoint.origin == ORIGIN
    with pytest.raises(SignatureError):
        open_checkpoint(raw, KEY.public)


def test_tampered_size_fails() -> None:
    signed = sign_checkpoint(Checkpoint(ORIGIN, 7, ROOT), KEY)
    with pytest.raises(SignatureError):
        open_checkpoint(signed.raw.replace(b"\n7\n", b"\n8\n", 1), KEY.public)


def test_empty_log_and_largest_size() -> None:
    for size in (0, MAX_SIZE):
        cp = Checkpoint(ORIGIN, size, ROOT)
        assert Checkpoint.parse(cp.body()).size == size


@pytest.mark.parametrize(
    "body",
    [
        f"{ORIGIN}\n7\n{ROOT_B64}",  # no trailing newline
        f"{ORIGIN}\n7\n",  # no root
        f"\n7\n{ROOT_B64}\n",  # empty origin
        f"{ORIGIN}\n07\n{ROOT_B64}\n",  # leading zero
        f"{ORIGIN}\n00\n{ROOT_B64}\n",
        f"{ORIGIN}\n-7\n{ROOT_B64}\n",
        f"{ORIGIN}\n+7\n{ROOT_B64}\n",
        f"{ORIGIN}\n 7\n{ROOT_B64}\n",
        f"{ORIGIN}\n7.0\n{ROOT_B64}\n",
        f"{ORIGIN}\n0x7\n{ROOT_B64}\n",
        f"{ORIGIN}\n\u0667\n{ROOT_B64}\n",  # an Arabic-Indic digit seven
        f"{ORIGIN}\n\n{ROOT_B64}\n",
        f"{ORIGIN}\n{MAX_SIZE + 1}\n{ROOT_B64}\n",
        f"{ORIGIN}\n{'9' * 5000}\n{ROOT_B64}\n",  # beyond Python's int-from-str digit limit
        f"{ORIGIN}\n7\n{base64.b64encode(ROOT[:31]).decode()}\n",
        f"{ORIGIN}\n7\n{base64.b64encode(ROOT + b'x').decode()}\n",
        f"{ORIGIN}\n7\n{ROOT_B64.rstrip('=')}\n",
        f"{ORIGIN}\n7\n{ROOT.hex()}\n",
        f"{ORIGIN}\n7\n{ROOT_B64}\n\nafter a blank line\n",
        f"{ORIGIN}\n7\n{ROOT_B64}\n" + "x\n" * 17,  # too many extension lines
    ],
)
def test_malformed_bodies(body: str) -> None:
    with pytest.raises(DecodeError):
        Checkpoint.parse(body)


def test_malformed_body_in_a_well_signed_note() -> None:
    raw = sign_note(f"{ORIGIN}\n07\n{ROOT_B64}\n", ORIGIN, KEY)
    with pytest.raises(DecodeError):
        parse_signed_checkpoint(raw)
    with pytest.raises(DecodeError):
        open_checkpoint(raw, KEY.public)


def test_parse_decimal() -> None:
    assert parse_decimal("0", "n") == 0
    assert parse_decimal("10", "n", 10) == 10
    for text in ("", "01", "11", "1e3", "\u00b2"):
        with pytest.raises(DecodeError):
            parse_decimal(text, "n", 10)


def test_sign_checkpoint_refuses_bad_origin() -> None:
    with pytest.raises(DecodeError):
        sign_checkpoint(Checkpoint("bad origin", 1, ROOT), KEY)
