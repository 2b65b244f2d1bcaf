"""Checks made cheaper keep their meaning: key names by one regex, checkpoints parsed once for
bytes that come again."""

from __future__ import annotations

import pytest

from protocol.checkpoint import Checkpoint, parse_signed_checkpoint, sign_checkpoint
from protocol.errors import DecodeError
from protocol.note import check_name
from protocol.signing import SigningKey


def _old_rule(name: str) -> bool:
    """The rule as first written, one character at a time."""
    control = any(ord(c) < 0x20 or ord(c) == 0x7F for c in name)
    return bool(name) and "+" not in name and not any(c.isspace() for c in name) and not control


def test_key_names_are_judged_as_before_for_every_character_up_to_u3100() -> None:
    for code in range(0x3100):
        name = f"member{chr(code)}x"
        try:
            check_name(name)
            accepted = True
        except DecodeError:
            accepted = False
        assert accepted == _old_rule(name), hex(code)
    with pytest.raises(DecodeError):
        check_name("")


def test_the_same_checkpoint_bytes_parse_to_the_same_result_and_bad_bytes_fail_each_time() -> None:
    signed = sign_checkpoint(Checkpoint("example.org/log", 7, bytes(32)), SigningKey.generate())
    first = parse_signed_checkpoint(bytes(signed.raw))
    again = parse_signed_checkpoint(bytes(signed.raw))
    assert first == again == signed
    bad = signed.raw.replace(b"\n7\n", b"\n07\n")
    for _ in range(2):
        with pytest.raises(DecodeError):
            parse_signed_checkpoint(bad)
