"""Checkpoints signed by a key later declared compromised: the rule of protocol.trust, and how
the offline audit (protocol.audit) and provenance bundles (protocol.bundle) follow it."""

from __future__ import annotations

import dataclasses

import pytest

from protocol import merkle
from protocol.audit import LogAudit
from protocol.bundle import ProvenanceBundle, verify_bundle
from protocol.checkpoint import Checkpoint, sign_checkpoint
from protocol.entries import Add, encode_entry
from protocol.errors import ProtocolError
from protocol.roster import Roster, SignedRoster
from protocol.roster_members import CheckpointKey
from protocol.signing import SigningKey
from protocol.tlogproof import format_tlog_proof
from protocol.trust import UntrustedCheckpointError, compromise_of, open_trusted
from tests.protocol.merkle_support import all_nodes
from tests.support import NOW_MS, make_members, make_roster

MEMBERS = make_members(2)
ADMIN = SigningKey.generate()
OLD = MEMBERS[0].checkpoint_key
NEW = SigningKey.generate()
ORIGIN = MEMBERS[0].origin
ENTRIES = [encode_entry(Add(NOW_MS + i, "md5", bytes([i]) * 16)) for i in range(4)]
LEAVES = [merkle.leaf_hash(e) for e in ENTRIES]
NODES = all_nodes(LEAVES)


def checkpoint(size: int, key: SigningKey) -> bytes:
    return sign_checkpoint(Checkpoint(ORIGIN, size, merkle.tree_hash(size, NODES)), key).raw


def rosters(*keys: CheckpointKey) -> tuple[list[bytes], Roster]:
    """The genesis and, if keys are given, a version 2 giving member 0 those keys."""
    genesis, signed, _ = make_roster(MEMBERS, [ADMIN])
    if not keys:
        return [signed.encode()], genesis
    m0 = dataclasses.replace(genesis.members[0], checkpoint_keys=keys)
    v2 = dataclasses.replace(genesis, version=2, members=(m0, *genesis.members[1:]))
    return [signed.encode(), SignedRoster(v2.encode(), ()).with_signature(ADMIN).encode()], v2


COMPROMISED = CheckpointKey(OLD.public, 0, 2, compromised=True)
REKEYED = (COMPROMISED, CheckpointKey(NEW.public, 3))


def bundle(chain: list[bytes], index: int, size: int, key: SigningKey = OLD) -> bytes:
    path = merkle.inclusion_proof(index, size, NODES)
    text = format_tlog_proof(index, path, checkpoint(size, key), ENTRIES[index])
    return ProvenanceBundle(text, tuple(chain)).encode()


def audit(roster: Roster, *checkpoints: bytes) -> LogAudit:
    log = LogAudit(ORIGIN, roster, list(checkpoints))
    log.feed(ENTRIES)
    return log


def test_a_compromised_key_vouches_for_sizes_up_to_its_last_trusted_size_only() -> None:
    _, roster = rosters(COMPROMISED)
    assert open_trusted(checkpoint(2, OLD), roster, ORIGIN).checkpoint.size == 2
    with pytest.raises(UntrustedCheckpointError, match="beyond size 2"):
        open_trusted(checkpoint(4, OLD), roster, ORIGIN)
    with pytest.raises(ProtocolError) as forged:
        open_trusted(checkpoint(4, SigningKey.generate()), roster, ORIGIN)
    assert not isinstance(forged.value, UntrustedCheckpointError)
    compromise = compromise_of(roster.members[0])
    assert compromise is not None and compromise.flags(2) and not compromise.flags(1)
    assert compromise_of(roster.members[1]) is None


def test_entries_before_a_compromise_stay_provable_with_a_checkpoint_no_larger_than_it() -> None:
    chain, _ = rosters(COMPROMISED)
    assert verify_bundle(bundle(chain, 1, 2), chain[0]).index == 1
    with pytest.raises(UntrustedCheckpointError):
        verify_bundle(bundle(chain, 1, 4), chain[0])


def test_after_a_rekey_the_new_key_proves_entries_past_the_compromise() -> None:
    chain, _ = rosters(*REKEYED)
    assert verify_bundle(bundle(chain, 3, 4, NEW), chain[0]).index == 3
    assert verify_bundle(bundle(chain, 0, 2), chain[0]).index == 0
    with pytest.raises(UntrustedCheckpointError):
        verify_bundle(bundle(chain, 3, 4), chain[0])


def test_an_honest_checkpoint_signed_before_the_compromise_is_reported_not_failed() -> None:
    _, roster = rosters(*REKEYED)
    report = audit(roster, checkpoint(2, OLD), checkpoint(4, OLD), checkpoint(4, NEW)).finish()
    assert report.ok, report.problems
    assert report.untrusted_checkpoints == (4,)
    assert report.checkpoints_checked == 2 and report.unvouched_entries == 0


def test_entries_past_a_compromise_with_no_trusted_checkpoint_are_reported_not_failed() -> None:
    _, roster = rosters(COMPROMISED)
    report = audit(roster, checkpoint(2, OLD), checkpoint(4, OLD)).finish()
    assert report.ok, report.problems
    assert report.unvouched_entries == 2 and report.untrusted_checkpoints == (4,)
    assert any("vouched for by no trusted checkpoint" in n for n in report.notices)


def test_a_checkpoint_signed_by_no_key_of_the_member_still_fails_the_audit() -> None:
    _, roster = rosters(*REKEYED)
    report = audit(roster, checkpoint(2, OLD), checkpoint(4, SigningKey.generate())).finish()
    assert not report.ok and "checkpoint at 4" in report.problems[0]
