"""The node's roster keeper over a real store: it takes only a valid next version, refuses
expired, rolled-back, under-signed and duplicate-key rosters, and keeps what it accepted across
a restart."""

from __future__ import annotations

import dataclasses

import pytest

from node.rosters import RosterKeeper
from protocol.errors import ExpiredError, RollbackError, RosterError
from protocol.roster import AdminKey, SignedRoster
from tests.node.conftest import StoreFactory
from tests.support import DAY_MS, NOW_MS, make_members, make_roster


def _signed(roster: object, *keys: object) -> bytes:
    signed = SignedRoster(roster.encode(), ())  # type: ignore[attr-defined]
    for key in keys:
        signed = signed.with_signature(key)  # type: ignore[arg-type]
    return signed.encode()


async def test_only_a_valid_next_version_is_kept_and_survives_a_restart(
    store_factory: StoreFactory,
) -> None:
    members = make_members(2)
    roster, signed, admins = make_roster(members)
    store = store_factory()
    await store.open()
    keeper = RosterKeeper(store, lambda: NOW_MS)
    await keeper.load(signed.encode())
    v2 = dataclasses.replace(roster, version=2, issued_ms=NOW_MS)

    expired = dataclasses.replace(v2, issued_ms=NOW_MS - 9 * DAY_MS, expires_ms=NOW_MS - DAY_MS)
    with pytest.raises(ExpiredError):
        await keeper.offer(_signed(expired, admins[0]))
    with pytest.raises(RosterError, match="threshold"):
        await keeper.offer(_signed(v2))  # no signature at all
    with pytest.raises(RosterError, match="listed twice"):  # an admin key twice: no roster
        dataclasses.replace(v2, admins=(*v2.admins, AdminKey("again", admins[0].public)))

    assert await keeper.offer(_signed(v2, admins[0])) is True
    assert await keeper.offer(_signed(v2, admins[0])) is False  # the same again: known
    with pytest.raises(RollbackError):
        await keeper.offer(_signed(dataclasses.replace(v2, pdq_threshold=20), admins[0]))
    await store.close()

    store = store_factory()
    await store.open()
    restarted = RosterKeeper(store, lambda: NOW_MS)
    await restarted.load(signed.encode())
    assert restarted.roster.version == 2
    await store.close()
