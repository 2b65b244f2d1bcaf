"""protocol.roster: threshold signatures by distinct keys, updates, rollback, expiry, key ranges."""

from __future__ import annotations

import dataclasses

import pytest

from protocol import codec
from protocol.errors import DecodeError, ExpiredError, RollbackError, RosterError
from protocol.roster import (
    SIGNING_CONTEXT,
    AdminKey,
    Roster,
    SignedRoster,
    check_fresh,
    signing_message,
    verify_chain,
    verify_genesis,
    verify_link,
    verify_update,
    walk_chain,
)
from protocol.roster_members import CheckpointKey, Member
from protocol.signing import SigningKey, verify
from tests.protocol.roster_support import (
    ADMINS,
    MEMBERS,
    admin_keys,
    first_roster,
    next_version,
    signed_by,
)
from tests.support import DAY_MS, NOW_MS, make_members

# Genesis and the threshold.


def test_genesis_two_of_three() -> None:
    roster, _ = first_roster()
    assert verify_genesis(signed_by(roster, ADMINS[0], ADMINS[2]), NOW_MS) == roster
    with pytest.raises(RosterError):
        verify_genesis(signed_by(roster, ADMINS[1]), NOW_MS)
    with pytest.raises(RosterError):
        verify_genesis(signed_by(roster), NOW_MS)


def test_same_key_signing_twice_counts_once() -> None:
    roster, _ = first_roster()
    once = signed_by(roster, ADMINS[0])
    assert once.with_signature(ADMINS[0]) == once  # with_signature does not repeat a key
    twice = SignedRoster(once.body, once.signatures * 2)
    assert SignedRoster.decode(twice.encode()) == twice  # well-formed ...
    assert twice.signers(roster.admins) == {ADMINS[0].public}
    with pytest.raises(RosterError):  # ... but one signer is not two
        verify_genesis(twice, NOW_MS)


def test_admin_key_listed_twice_is_invalid() -> None:
    roster, _ = first_roster()
    doubled = (*roster.admins, AdminKey("alias", ADMINS[0].public))
    with pytest.raises(RosterError):
        dataclasses.replace(roster, admins=doubled)
    # And such a roster is refused when decoded too.
    fields = codec.decode(roster.encode())
    assert isinstance(fields, list)
    fields[5] = [[a.name, a.public] for a in doubled]
    with pytest.raises(DecodeError):
        Roster.decode(codec.encode(fields))


def test_non_admin_and_forged_signatures_do_not_count() -> None:
    roster, _ = first_roster()
    outsider = SigningKey.generate()
    signed = signed_by(roster, ADMINS[0], outsider)
    with pytest.raises(RosterError):
        verify_genesis(signed, NOW_MS)
    # A signature claimed for ADMINS[1] but made by another key.
    forged_sig = (ADMINS[1].public, outsider.sign(signing_message(roster.encode())))
    forged = SignedRoster(roster.encode(), (*signed_by(roster, ADMINS[0]).signatures, forged_sig))
    with pytest.raises(RosterError):
        verify_genesis(forged, NOW_MS)
    # A valid signature over other bytes (no context string) does not count either.
    bare = (ADMINS[1].public, ADMINS[1].sign(roster.encode()))
    with pytest.raises(RosterError):
        verify_genesis(
            SignedRoster(roster.encode(), (*signed_by(roster, ADMINS[0]).signatures, bare)), NOW_MS
        )


def test_signing_message_has_context() -> None:
    _, signed = first_roster()
    assert signing_message(b"x") == SIGNING_CONTEXT + b"x"
    pub, sig = signed.signatures[0]
    assert verify(pub, SIGNING_CONTEXT + signed.body, sig)


def test_impossible_thresholds() -> None:
    roster, _ = first_roster()
    for threshold in (0, 4):
        with pytest.raises(RosterError):
            dataclasses.replace(roster, threshold=threshold)
    with pytest.raises(RosterError):
        dataclasses.replace(roster, admins=())


# Updates.


def test_update_needs_threshold_of_old_and_new_admins() -> None:
    genesis, _ = first_roster()
    new_keys = [ADMINS[0], SigningKey.generate(), SigningKey.generate()]
    v2 = next_version(genesis, admins=admin_keys(new_keys))
    # Two old admins, but only one of the new set (ADMINS[0] is in both).
    with pytest.raises(RosterError):
        verify_update(genesis, signed_by(v2, ADMINS[0], ADMINS[1]), NOW_MS)
    # Two new admins but only one old one.
    with pytest.raises(RosterError):
        verify_update(genesis, signed_by(v2, ADMINS[0], new_keys[1], new_keys[2]), NOW_MS)
    # No old admin at all.
    with pytest.raises(RosterError):
        verify_update(genesis, signed_by(v2, new_keys[1], new_keys[2]), NOW_MS)
    both = signed_by(v2, ADMINS[0], ADMINS[1], new_keys[1])
    assert verify_update(genesis, both, NOW_MS) == v2


def test_admin_rotation_and_threshold_change_over_a_chain() -> None:
    genesis, g_signed = first_roster()
    k4, k5 = SigningKey.generate(), SigningKey.generate()
    # v2: replace ADMINS[2] by k4, raise the threshold to 3 of 3.
    v2 = next_version(genesis, admins=admin_keys([ADMINS[0], ADMINS[1], k4]), threshold=3)
    v2_signed = signed_by(v2, ADMINS[0], ADMINS[1], k4)
    assert verify_update(genesis, v2_signed, NOW_MS) == v2
    # v3: drop to one admin k5, threshold 1. Needs all three of v2's admins.
    v3 = next_version(v2, admins=admin_keys([k5]), threshold=1)
    with pytest.raises(RosterError):
        verify_update(v2, signed_by(v3, ADMINS[0], ADMINS[1], k5), NOW_MS)
    v3_signed = signed_by(v3, ADMINS[0], ADMINS[1], k4, k5)
    assert verify_update(v2, v3_signed, NOW_MS) == v3
    # The removed admin ADMINS[2] can no longer sign anything alone.
    v4 = next_version(v3)
    with pytest.raises(RosterError):
        verify_update(v3, signed_by(v4, ADMINS[2]), NOW_MS)
    assert verify_update(v3, signed_by(v4, k5), NOW_MS) == v4
    chain = [v2_signed.encode(), v3_signed.encode(), signed_by(v4, k5).encode()]
    assert verify_chain(g_signed.encode(), chain, NOW_MS) == v4


def test_rollback_and_replay_are_refused() -> None:
    genesis, _ = first_roster()
    v2 = next_version(genesis)
    v2_signed = signed_by(v2, ADMINS[0], ADMINS[1])
    trusted = verify_update(genesis, v2_signed, NOW_MS)
    with pytest.raises(RollbackError):
        verify_update(trusted, v2_signed, NOW_MS)  # the same version again
    with pytest.raises(RollbackError):
        verify_update(trusted, signed_by(genesis, ADMINS[0], ADMINS[1]), NOW_MS)
    with pytest.raises(RollbackError):
        verify_chain(
            signed_by(genesis, *ADMINS).encode(), [v2_signed.encode(), v2_signed.encode()], NOW_MS
        )


def test_version_skip_is_refused() -> None:
    genesis, _ = first_roster()
    v3 = next_version(genesis, version=3)
    with pytest.raises(RosterError) as info:
        verify_update(genesis, signed_by(v3, *ADMINS), NOW_MS)
    assert not isinstance(info.value, RollbackError)


def test_other_consortium_is_refused() -> None:
    genesis, _ = first_roster()
    other = next_version(genesis, consortium="other")
    with pytest.raises(RosterError):
        verify_update(genesis, signed_by(other, *ADMINS), NOW_MS)


# Expiry.


def test_expiry() -> None:
    genesis, signed = first_roster()
    check_fresh(genesis, genesis.expires_ms - 1)
    with pytest.raises(ExpiredError):
        check_fresh(genesis, genesis.expires_ms)
    with pytest.raises(ExpiredError):
        verify_genesis(signed, genesis.expires_ms + 1)
    v2 = next_version(genesis, expires_ms=NOW_MS + DAY_MS)
    v2_signed = signed_by(v2, ADMINS[0], ADMINS[1])
    assert verify_update(genesis, v2_signed, NOW_MS) == v2
    with pytest.raises(ExpiredError):
        verify_update(genesis, v2_signed, NOW_MS + 2 * DAY_MS)
    # A chain only needs its newest roster fresh: an expired genesis is fine behind it.
    late = genesis.expires_ms + 1
    v2b = next_version(genesis, expires_ms=late + DAY_MS)
    chain = [signed_by(v2b, ADMINS[0], ADMINS[1]).encode()]
    assert verify_chain(signed.encode(), chain, late) == v2b
    with pytest.raises(ExpiredError):
        verify_chain(signed.encode(), [], late)


def test_trusting_a_roster_now_requires_a_reference_time() -> None:
    genesis, signed = first_roster()
    v2_signed = signed_by(next_version(genesis), ADMINS[0], ADMINS[1])
    with pytest.raises(TypeError):
        verify_genesis(signed)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        verify_update(genesis, v2_signed)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        verify_chain(signed.encode(), [v2_signed.encode()])  # type: ignore[call-arg]


def test_a_chain_link_holds_after_both_ends_expired_but_a_roster_to_trust_now_must_be_fresh() -> (
    None
):
    genesis, signed = first_roster()
    v2 = next_version(genesis, expires_ms=genesis.expires_ms)
    v2_signed = signed_by(v2, ADMINS[0], ADMINS[1])
    late = genesis.expires_ms + DAY_MS
    assert verify_link(genesis, v2_signed) == v2
    assert walk_chain([signed.encode(), v2_signed.encode()]) == [genesis, v2]
    with pytest.raises(ExpiredError):
        verify_update(genesis, v2_signed, late)
    with pytest.raises(ExpiredError):
        verify_chain(signed.encode(), [v2_signed.encode()], late)
    with pytest.raises(RollbackError, match="not newer"):  # a chain holds one roster a version
        walk_chain([signed.encode(), v2_signed.encode(), v2_signed.encode()])
    with pytest.raises(RosterError):
        walk_chain([])


def test_expiry_must_follow_issue() -> None:
    genesis, _ = first_roster()
    with pytest.raises(RosterError):
        dataclasses.replace(genesis, expires_ms=genesis.issued_ms)


# Membership and checkpoint keys.


def test_checkpoint_key_rotation_by_size() -> None:
    old, new = SigningKey.generate(), SigningKey.generate()
    member = dataclasses.replace(
        MEMBERS[0].member(),
        checkpoint_keys=(CheckpointKey(old.public, 0, 99), CheckpointKey(new.public, 100)),
    )
    roster, _ = first_roster()
    roster = dataclasses.replace(roster, members=(member, *roster.members[1:]))
    origin = member.origin
    assert roster.checkpoint_key(origin, 0) == old.public
    assert roster.checkpoint_key(origin, 99) == old.public
    assert roster.checkpoint_key(origin, 100) == new.public
    assert roster.checkpoint_key(origin, 10**12) == new.public
    assert Roster.decode(roster.encode()) == roster
    with pytest.raises(RosterError):
        roster.checkpoint_key("unknown.example/log", 1)


def test_compromised_key() -> None:
    bad, fresh = SigningKey.generate(), SigningKey.generate()
    member = dataclasses.replace(
        MEMBERS[0].member(),
        checkpoint_keys=(CheckpointKey(bad.public, 0, 50, compromised=True),),
    )
    roster, _ = first_roster()
    roster = dataclasses.replace(roster, members=(member, *roster.members[1:]))
    assert member.valid_size_limit() == 50
    assert roster.checkpoint_key(member.origin, 50) == bad.public
    with pytest.raises(RosterError):
        roster.checkpoint_key(member.origin, 51)
    assert Roster.decode(roster.encode()).members[0].checkpoint_keys[0].compromised
    # A compromised key must say up to where it was trusted, or it would cover every size.
    with pytest.raises(RosterError):
        dataclasses.replace(
            roster,
            members=(
                dataclasses.replace(
                    member, checkpoint_keys=(CheckpointKey(bad.public, compromised=True),)
                ),
            ),
        )
    # Rotated to a fresh key after the compromise.
    rotated = dataclasses.replace(
        member,
        checkpoint_keys=(*member.checkpoint_keys, CheckpointKey(fresh.public, 51)),
    )
    roster = dataclasses.replace(roster, members=(rotated, *roster.members[1:]))
    assert roster.checkpoint_key(member.origin, 51) == fresh.public


@pytest.mark.parametrize(
    "change",
    [
        {"member_id": "Upper"},
        {"member_id": "m0\n"},
        {"member_id": ""},
        {"origin": "has space"},
        {"origin": "has+plus"},
        {"origin": "ctl\x01"},
        {"roles": ()},
        {"roles": ("owner",)},
        {"checkpoint_keys": ()},
        {"checkpoint_keys": (CheckpointKey(bytes(32), 10, 9),)},
    ],
)
def test_bad_members(change: dict[str, object]) -> None:
    roster, _ = first_roster()
    member: Member = dataclasses.replace(roster.members[0], **change)  # type: ignore[arg-type]
    with pytest.raises(RosterError):
        dataclasses.replace(roster, members=(member, *roster.members[1:]))


def test_duplicate_members() -> None:
    roster, _ = first_roster()
    m0, m1 = roster.members[0], roster.members[1]
    for dup in (
        dataclasses.replace(m1, member_id=m0.member_id),
        dataclasses.replace(m1, origin=m0.origin),
        dataclasses.replace(m1, node_key=m0.node_key),
    ):
        with pytest.raises(RosterError):
            dataclasses.replace(roster, members=(m0, dup))


def test_lookups() -> None:
    roster, _ = first_roster()
    m = roster.members[1]
    assert roster.member(m.member_id) == m
    assert roster.member_by_origin(m.origin) == m
    assert roster.member_by_node_key(m.node_key) == m
    assert roster.origins() == tuple(x.origin for x in roster.members)
    with pytest.raises(RosterError):
        roster.member("nobody")


def test_a_compromised_key_limits_the_log_unless_a_successor_key_takes_over() -> None:
    old, new = SigningKey.generate().public, SigningKey.generate().public
    member = make_members(1)[0].member()
    bare = dataclasses.replace(
        member, checkpoint_keys=(CheckpointKey(old, 0, 10, compromised=True),)
    )
    assert bare.valid_size_limit() == 10
    rotated = dataclasses.replace(
        member,
        checkpoint_keys=(CheckpointKey(old, 0, 10, compromised=True), CheckpointKey(new, 11)),
    )
    assert rotated.valid_size_limit() is None
