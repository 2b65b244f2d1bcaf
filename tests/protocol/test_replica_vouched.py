"""A replica recognises checkpoint bodies it verified and found consistent with its entries:
the N peers of a sync round offer each checkpoint N times over, and only new bytes are opened."""

from __future__ import annotations

from dataclasses import replace

import pytest

from protocol import replica as replica_module
from protocol.checkpoint import parse_signed_checkpoint
from protocol.cosignature import cosign
from protocol.errors import SignatureError
from protocol.note import Note, add_signatures
from protocol.replica import CheckpointStatus, LogReplica
from protocol.writer import LogWriter
from tests.protocol.test_replica import entries, grow
from tests.support import NOW_MS, make_members, make_roster


@pytest.fixture
def held() -> tuple[object, ...]:
    """A replica holding 4 entries under `new`, and `old`, the checkpoint at 2."""
    members = make_members(3)
    roster, _, _ = make_roster(members)
    writer = LogWriter(members[0].origin, members[0].checkpoint_key)
    old = grow(writer, entries(2))
    new = grow(writer, entries(2, salt=2))
    replica = LogReplica(members[0].origin)
    plan = replica.verify_entries(0, entries(2) + entries(2, salt=2), new, [], roster)
    replica.commit(plan)
    prefix = {i: dict(plan.nodes)[i] for i in replica.prefix_ids(2)}
    return roster, members, replica, old, new, prefix


def _opened(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    calls: list[bytes] = []
    real = replica_module.open_witnessed

    def counting(raw, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(raw)
        return real(raw, *args, **kwargs)

    monkeypatch.setattr(replica_module, "open_witnessed", counting)
    return calls


def test_a_stale_checkpoint_checked_once_needs_no_prefix_nodes_again(held, monkeypatch) -> None:
    roster, _, replica, old, _, prefix = held
    assert replica.accept_checkpoint(old, roster, prefix)[0] is CheckpointStatus.STALE
    opened = _opened(monkeypatch)
    assert replica.prefix_ids(2) == []
    assert replica.accept_checkpoint(old, roster)[0] is CheckpointStatus.STALE
    assert opened == []


def test_a_known_checkpoint_with_other_cosignatures_is_not_opened_again(held, monkeypatch) -> None:
    roster, members, replica, _, new, _ = held
    assert replica.accept_checkpoint(new, roster)[0] is CheckpointStatus.KNOWN
    opened = _opened(monkeypatch)
    body = parse_signed_checkpoint(new).checkpoint.body()
    line = cosign(body, members[1].member_id, members[1].node_key, NOW_MS // 1000)
    status, signed = replica.accept_checkpoint(add_signatures(new, [line]), roster)
    assert status is CheckpointStatus.KNOWN and signed.raw == new  # the copy held
    assert opened == []


def test_a_known_body_under_a_bad_origin_line_is_still_refused(held) -> None:
    roster, _, replica, _, new, _ = held
    assert replica.accept_checkpoint(new, roster)[0] is CheckpointStatus.KNOWN
    parsed = parse_signed_checkpoint(new)
    origin_line = parsed.note.signatures[0]
    bad = replace(origin_line, signature=bytes(64))
    with pytest.raises(SignatureError):
        replica.accept_checkpoint(Note(parsed.note.text, (bad,)).encode(), roster)


def test_a_new_roster_opens_known_bodies_again(held, monkeypatch) -> None:
    roster, members, replica, old, new, prefix = held
    replica.accept_checkpoint(new, roster)
    replica.accept_checkpoint(old, roster, prefix)
    newer_roster = make_roster(members)[0]  # another roster object: trust is checked anew
    opened = _opened(monkeypatch)
    assert replica.accept_checkpoint(new, newer_roster)[0] is CheckpointStatus.KNOWN
    # The stale body's consistency with our entries was checked before; its signature is
    # checked again under the new roster, without the prefix nodes.
    assert replica.accept_checkpoint(old, newer_roster)[0] is CheckpointStatus.STALE
    assert len(opened) == 2


def test_a_checkpoint_our_entries_reached_is_recognised_once_we_passed_it(monkeypatch) -> None:
    members = make_members(2)
    roster, _, _ = make_roster(members)
    writer = LogWriter(members[0].origin, members[0].checkpoint_key)
    old = grow(writer, entries(2))
    new = grow(writer, entries(2, salt=2))
    replica = LogReplica(members[0].origin)
    replica.commit(replica.verify_entries(0, entries(2), old, [], roster))
    replica.commit(replica.verify_entries(2, entries(2, salt=2), new, [], roster))
    opened = _opened(monkeypatch)
    assert replica.prefix_ids(2) == []  # no stored nodes to read: its root was ours
    assert replica.accept_checkpoint(old, roster)[0] is CheckpointStatus.STALE
    assert opened == []
