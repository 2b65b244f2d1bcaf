"""Fuzzing the decoders: arbitrary bytes give a value or a ProtocolError, never another exception.

HASHMESH_FUZZ_EXAMPLES sets the number of examples per test (default 200), e.g.
`HASHMESH_FUZZ_EXAMPLES=20000 .venv/bin/python -m pytest -q tests/protocol/test_fuzz.py`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
from collections.abc import Callable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol.checkpoint import Checkpoint, parse_signed_checkpoint, sign_checkpoint
from protocol.entries import Add, decode_entry, encode_entry
from protocol.errors import ProtocolError
from protocol.note import parse_note
from protocol.roster import SignedRoster
from protocol.signing import SigningKey
from protocol.tlogproof import format_tlog_proof, parse_tlog_proof
from tests.support import make_members, make_roster

EXAMPLES = int(os.environ.get("HASHMESH_FUZZ_EXAMPLES", "200"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

KEY = SigningKey(hashlib.sha256(b"fuzz key").digest())
CHECKPOINT = sign_checkpoint(Checkpoint("fuzz.example/log", 3, bytes(32)), KEY).raw
PROOF = format_tlog_proof(1, [bytes(32), hashlib.sha256(b"x").digest()], CHECKPOINT)
ENTRY = encode_entry(Add(1_700_000_000_000, "sha256", bytes(32), ("glorification",)))
ROSTER = make_roster(make_members(2))[1].encode()


def _decoders() -> dict[str, Callable[[bytes], object]]:
    return {
        "entry": decode_entry,
        "roster": SignedRoster.decode,
        "note": parse_note,
        "checkpoint": parse_signed_checkpoint,
        "tlog-proof": parse_tlog_proof,
    }


def _only_protocol_errors(decode: Callable[[bytes], object], data: bytes) -> None:
    # ProtocolError is the one allowed failure; anything else escapes and fails the test.
    with contextlib.suppress(ProtocolError):
        decode(data)


def _mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """Valid input with a few bytes flipped, cut, or inserted: reaches deeper than noise."""

    @st.composite
    def mutate(draw: st.DrawFn) -> bytes:
        data = bytearray(seed)
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.sampled_from(["flip", "cut", "insert"]))
            pos = draw(st.integers(0, len(data)))
            if op == "flip" and pos < len(data):
                data[pos] ^= draw(st.integers(1, 255))
            elif op == "cut":
                del data[pos : pos + draw(st.integers(1, 8))]
            else:
                data[pos:pos] = draw(st.binary(min_size=1, max_size=8))
        return bytes(data)

    return mutate()


# Text-shaped noise: the note and proof parsers reject random binary at the first check.
_TEXTISH = st.text(
    alphabet=st.sampled_from(list("\n \u2014+=/Aa019index c2sp.org/tlog-proof@v1\t\x00\u00e9")),
    max_size=300,
).map(str.encode)


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    for decode in _decoders().values():
        _only_protocol_errors(decode, data)


@FUZZ
@given(_TEXTISH)
def test_random_text(data: bytes) -> None:
    for decode in _decoders().values():
        _only_protocol_errors(decode, data)


@FUZZ
@given(_mutated(ENTRY))
def test_mutated_entries(data: bytes) -> None:
    _only_protocol_errors(decode_entry, data)


@FUZZ
@given(_mutated(ROSTER))
def test_mutated_rosters(data: bytes) -> None:
    _only_protocol_errors(SignedRoster.decode, data)


@FUZZ
@given(_mutated(CHECKPOINT))
def test_mutated_checkpoints(data: bytes) -> None:
    _only_protocol_errors(parse_note, data)
    _only_protocol_errors(parse_signed_checkpoint, data)


@FUZZ
@given(_mutated(PROOF))
def test_mutated_tlog_proofs(data: bytes) -> None:
    _only_protocol_errors(parse_tlog_proof, data)


@FUZZ
@given(st.lists(st.binary(min_size=0, max_size=40), max_size=6), st.integers(0, 2**64))
def test_structured_proof_heads(hashes: list[bytes], index: int) -> None:
    head = "c2sp.org/tlog-proof@v1\nindex " + str(index) + "\n"
    head += "".join(base64.b64encode(h).decode() + "\n" for h in hashes)
    _only_protocol_errors(parse_tlog_proof, head.encode() + b"\n" + CHECKPOINT)


def test_seeds_are_valid() -> None:
    """The mutation seeds decode, so the mutated tests start from the accepting path."""
    decode_entry(ENTRY)
    SignedRoster.decode(ROSTER)
    parse_signed_checkpoint(CHECKPOINT)
    parse_tlog_proof(PROOF)
