"""The witness's wire copy: peers are shown a checkpoint with its origin's signature and this
node's own cosignature only, while auditors get every cosignature collected."""

from __future__ import annotations

import asyncio
from typing import Any

from node.core.witness import Witness
from node.errors import StoreError
from protocol.checkpoint import SignedCheckpoint, parse_signed_checkpoint
from protocol.cosignature import cosign
from protocol.entries import Add, encode_entry
from protocol.note import add_signatures
from protocol.writer import LogWriter
from tests.support import NOW_MS, make_members, make_roster


class _Saved:
    """A store that keeps the checkpoints the witness saves (all it asks of one)."""

    def __init__(self) -> None:
        self.saved: list[tuple[str, int, bytes]] = []

    async def save_checkpoint(self, origin: str, size: int, raw: bytes) -> None:
        self.saved.append((origin, size, raw))


def _setup() -> tuple[Witness, SignedCheckpoint, list[Any], _Saved]:
    members = make_members(4)
    roster = make_roster(members)[0]
    origin, me = members[0], members[1]
    writer = LogWriter(origin.origin, origin.checkpoint_key)
    writer.commit(writer.plan([encode_entry(Add(NOW_MS, "md5", b"\x01" * 16))]))
    signed = writer.sign()
    store = _Saved()
    witness = Witness(
        me.member_id,
        me.origin,
        me.node_key,
        store,
        lambda: roster,
        lambda: NOW_MS,  # type: ignore[arg-type]
    )
    return witness, signed, members, store


def _names(raw: bytes) -> list[str]:
    return [s.name for s in parse_signed_checkpoint(raw).note.signatures]


def test_wire_copy_leaves_out_cosignatures_collected_from_others() -> None:
    witness, signed, members, _ = _setup()
    body = signed.checkpoint.body()
    others = [cosign(body, m.member_id, m.node_key, NOW_MS // 1000) for m in members[2:]]
    carrying = parse_signed_checkpoint(add_signatures(signed.raw, others))
    assert _names(witness.wire_copy(carrying)) == [members[0].origin]
    assert witness.wire_copy(signed) == signed.raw  # nothing to leave out: the same bytes


def test_wire_copy_carries_our_own_cosignature_once_we_cosigned() -> None:
    witness, signed, members, store = _setup()
    me = members[1].member_id

    async def cosign_and_save() -> None:
        await witness.reached(signed)
        await witness.save_unsaved()

    asyncio.run(cosign_and_save())
    shown = witness.wire_copy(signed)
    assert _names(shown) == [members[0].origin, me]
    assert witness.cosigners(parse_signed_checkpoint(shown)) == {me}
    # The same line is in the copy we store and serve auditors.
    assert _names(store.saved[-1][2]) == [members[0].origin, me]


def test_offered_cosignatures_reach_auditors_but_not_the_wire_copy() -> None:
    witness, signed, members, _ = _setup()
    body = signed.checkpoint.body()
    asyncio.run(witness.reached(signed))
    other = cosign(body, members[2].member_id, members[2].node_key, NOW_MS // 1000)
    asyncio.run(witness.offered(signed, add_signatures(signed.raw, [other])))  # from a peer
    served = witness.served(signed)
    assert served is not None
    assert _names(served.raw) == [members[0].origin, members[1].member_id, members[2].member_id]
    assert _names(witness.wire_copy(signed)) == [members[0].origin, members[1].member_id]


def test_wire_copy_finds_our_line_in_a_copy_stored_before_a_restart() -> None:
    witness, signed, members, _ = _setup()
    body = signed.checkpoint.body()
    lines = [cosign(body, m.member_id, m.node_key, NOW_MS // 1000) for m in members[2:3]]
    lines.append(cosign(body, members[1].member_id, members[1].node_key, NOW_MS // 1000))
    stored = parse_signed_checkpoint(add_signatures(signed.raw, lines))  # as loaded at start
    assert _names(witness.wire_copy(stored)) == [members[0].origin, members[1].member_id]


def test_merges_between_saves_are_saved_once_with_every_line() -> None:
    witness, signed, members, store = _setup()
    body = signed.checkpoint.body()

    async def merge_then_save() -> None:
        await witness.reached(signed)
        for m in members[2:]:
            line = cosign(body, m.member_id, m.node_key, NOW_MS // 1000)
            await witness.offered(signed, add_signatures(signed.raw, [line]))
        assert store.saved == []  # served from memory until the saver runs
        await witness.save_unsaved()

    asyncio.run(merge_then_save())
    assert len(store.saved) == 1
    assert _names(store.saved[0][2]) == [members[0].origin, *(m.member_id for m in members[1:])]


def test_a_copy_the_store_failed_to_save_is_saved_at_the_next_try() -> None:
    witness, signed, _, store = _setup()
    failures = [StoreError("disk full")]

    async def failing_once(origin: str, size: int, raw: bytes) -> None:
        if failures:
            raise failures.pop()
        store.saved.append((origin, size, raw))

    store.save_checkpoint = failing_once  # type: ignore[method-assign]

    async def cosign_and_save_twice() -> None:
        await witness.reached(signed)
        await witness.save_unsaved()
        assert store.saved == []
        await witness.save_unsaved()

    asyncio.run(cosign_and_save_twice())
    assert [s[1] for s in store.saved] == [signed.checkpoint.size]
