"""The roster's canonical encoding: round trips, strict decoding, and the documented example."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import pytest

from protocol import codec
from protocol.errors import DecodeError
from protocol.roster import AdminKey, Roster, SignedRoster, verify_genesis
from protocol.roster_members import CheckpointKey, Member
from protocol.signing import SigningKey
from tests.protocol.roster_support import (
    first_roster,
    signed_by,
)

# Decoding.


def test_round_trip() -> None:
    roster, signed = first_roster()
    assert Roster.decode(roster.encode()) == roster
    assert SignedRoster.decode(signed.encode()) == signed
    assert signed.roster == roster


def test_a_roster_asking_for_agreement_round_trips_and_one_without_keeps_its_bytes() -> None:
    roster, _ = first_roster()
    assert len(codec.decode(roster.encode())) == 12  # type: ignore[arg-type]
    strict = dataclasses.replace(roster, act_agreement=2)
    assert Roster.decode(strict.encode()).act_agreement == 2
    assert strict.encode()[1:] == roster.encode()[1:] + b"\x02"  # one more item: 2
    items = codec.decode(roster.encode())
    assert isinstance(items, list)
    with pytest.raises(DecodeError, match="default"):
        Roster.decode(codec.encode([*items, 1]))  # 1 is the default: never written
    with pytest.raises(DecodeError):
        Roster.decode(codec.encode([*items, 0]))


def test_decode_strictness() -> None:
    roster, signed = first_roster()
    with pytest.raises(DecodeError):
        Roster.decode(roster.encode() + b"\x00")
    with pytest.raises(DecodeError):
        SignedRoster.decode(signed.encode() + b"\x00")
    with pytest.raises(DecodeError):
        Roster.decode(roster.encode()[:-1])
    pub, sig = signed.signatures[0]
    bads: list[codec.Value] = [
        [pub[:31], sig],
        [pub + b"x", sig],
        [pub, sig[:63]],
        [pub, sig + b"x"],
        [pub],
    ]
    for bad in bads:
        with pytest.raises(DecodeError):
            SignedRoster.decode(codec.encode([1, signed.body, [bad]]))
    with pytest.raises(DecodeError):
        SignedRoster.decode(codec.encode([2, signed.body, []]))
    with pytest.raises(DecodeError):
        SignedRoster.decode(codec.encode([1, b"not a roster", []]))
    with pytest.raises(DecodeError):
        SignedRoster.decode(codec.encode([1, signed.body, [], None]))


def _roster_fields() -> list[codec.Value]:
    roster, _ = first_roster()
    fields = codec.decode(roster.encode())
    assert isinstance(fields, list)
    return fields


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (0, 2),  # layout version
        (2, 0),  # roster version 0
        (2, "1"),
        (5, [["a", bytes(31)]]),  # admin key of the wrong length
        (5, [["a"]]),
        (6, 0),
        (10, 300),  # pdq threshold out of range
        (9, [[1]]),
    ],
)
def test_decode_rejects_bad_fields(index: int, value: codec.Value) -> None:
    fields = _roster_fields()
    fields[index] = value
    with pytest.raises(DecodeError):
        Roster.decode(codec.encode(fields))


def test_decode_rejects_wrong_member_key_lengths() -> None:
    fields = _roster_fields()
    members = fields[9]
    assert isinstance(members, list)
    member = members[0]
    assert isinstance(member, list)
    member[4] = bytes(33)  # node key
    with pytest.raises(DecodeError):
        Roster.decode(codec.encode(fields))
    member[4] = bytes(32)
    member[3] = [[bytes(31), 0, None, 0]]
    with pytest.raises(DecodeError):
        Roster.decode(codec.encode(fields))
    member[3] = [[bytes(32), 0, None, 2]]  # compromised flag is 0 or 1
    with pytest.raises(DecodeError):
        Roster.decode(codec.encode(fields))
    member[3] = [[bytes(32), 0, None, 1]]  # compromised without last_size
    with pytest.raises(DecodeError):
        Roster.decode(codec.encode(fields))


def test_documented_example_matches_the_code() -> None:
    """docs/protocol.md (the roster section) shows these bytes; keep it true."""

    def key(seed: str) -> SigningKey:
        return SigningKey(hashlib.sha256(seed.encode()).digest())

    a1, a2 = key("doc admin 1"), key("doc admin 2")
    roster = Roster(
        consortium="example",
        version=1,
        issued_ms=1767225600000,
        expires_ms=1798761600000,
        admins=(AdminKey("alice", a1.public), AdminKey("bob", a2.public)),
        threshold=2,
        witness_quorum=1,
        taxonomy=("glorification",),
        members=(
            Member(
                "acme",
                "Acme",
                "acme.example/log",
                (CheckpointKey(key("doc checkpoint key").public),),
                key("doc node key").public,
                ("https://node.acme.example",),
                ("member",),
                "trust@acme.example",
            ),
        ),
    )
    whole = (Path(__file__).parents[2] / "docs/protocol.md").read_text()
    start = whole.index("\n## The roster\n")
    doc = whole[start : whole.index("\n## ", start + 1)]
    rows = re.findall(r"^    [0-9a-f]{4}  ([0-9a-f]+)$", doc, re.MULTILINE)
    assert bytes.fromhex("".join(rows)) == roster.encode()
    signed = signed_by(roster, a1, a2)
    assert len(signed.encode()) == 493
    assert verify_genesis(SignedRoster.decode(signed.encode()), roster.issued_ms) == roster
    assert signed.signatures[0][1].hex()[:16] in doc
