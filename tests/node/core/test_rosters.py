"""The node's roster keeper over a real store: it takes only a valid next version, refuses
expired, rolled-back, under-signed and duplicate-key rosters, and keeps what it accepted across
a restart."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from node.core.rosters import RosterKeeper
from protocol.errors import ExpiredError, RollbackError, RosterError
from protocol.roster import AdminKey, SignedRoster
from protocol.signing import SigningKey
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


def _versions(chain: list[bytes]) -> list[int]:
    return [SignedRoster.decode(raw).roster.version for raw in chain]


async def test_two_peers_offering_the_same_roster_at_once_store_it_once(
    store_factory: StoreFactory,
) -> None:
    roster, signed, admins = make_roster(make_members(2))
    store = store_factory()
    await store.open()
    keeper = RosterKeeper(store, lambda: NOW_MS)
    await keeper.load(signed.encode())
    told: list[int] = []
    keeper.listeners.append(lambda previous: told.append(previous.version))
    v2 = _signed(dataclasses.replace(roster, version=2, issued_ms=NOW_MS), admins[0])

    accepted = await asyncio.gather(keeper.offer(v2), keeper.offer(v2))

    assert sorted(accepted) == [False, True]
    assert _versions(keeper.chain) == [1, 2] and keeper.after(1) == [v2]
    assert told == [1]
    await store.close()


async def test_a_restarted_node_holds_one_roster_a_version(store_factory: StoreFactory) -> None:
    roster, signed, admins = make_roster(make_members(2))
    v2 = _signed(dataclasses.replace(roster, version=2, issued_ms=NOW_MS), admins[0])
    store = store_factory()
    await store.open()
    for raw in (v2, v2, signed.encode()):
        await store.save_roster(SignedRoster.decode(raw).roster.version, raw)
    keeper = RosterKeeper(store, lambda: NOW_MS)
    await keeper.load(signed.encode())
    assert _versions(keeper.chain) == [1, 2]
    await store.close()


async def test_a_node_set_up_from_a_later_roster_keeps_the_earlier_ones_that_chain_to_it(
    store_factory: StoreFactory,
) -> None:
    roster, v1, admins = make_roster(make_members(2))
    v2 = _signed(dataclasses.replace(roster, version=2, issued_ms=NOW_MS), admins[0])
    v3 = _signed(dataclasses.replace(roster, version=3, issued_ms=NOW_MS), admins[0])
    store = store_factory()
    await store.open()
    keeper = RosterKeeper(store, lambda: NOW_MS)
    await keeper.load(v3)
    assert keeper.first_version == 3

    # A made-up version 2 (signed by a stranger) does not chain to our version 3.
    stranger = SigningKey.generate()
    forged = dataclasses.replace(roster, version=2, admins=(AdminKey("x", stranger.public),))
    with pytest.raises(RosterError, match="threshold"):
        await keeper.adopt_earlier([v1.encode(), _signed(forged, stranger), v3])
    assert keeper.first_version == 3

    assert await keeper.adopt_earlier([v3, v2, v1.encode()]) == 2
    assert keeper.chain == [v1.encode(), v2, v3] and keeper.roster.version == 3
    assert await keeper.adopt_earlier([v1.encode(), v2, v3]) == 0
    await store.close()

    store = store_factory()
    await store.open()
    restarted = RosterKeeper(store, lambda: NOW_MS)
    await restarted.load(v3)
    assert restarted.chain == [v1.encode(), v2, v3]
    await store.close()


async def test_an_expired_roster_in_force_still_loads_and_takes_its_signed_successor(
    store_factory: StoreFactory,
) -> None:
    roster, signed, admins = make_roster(make_members(2))
    late = roster.expires_ms + DAY_MS
    store = store_factory()
    await store.open()
    keeper = RosterKeeper(store, lambda: late)
    await keeper.load(signed.encode())
    assert keeper.expired() and keeper.roster.version == 1

    stale = dataclasses.replace(roster, version=2, issued_ms=NOW_MS)  # expired as well
    with pytest.raises(ExpiredError):
        await keeper.offer(_signed(stale, admins[0]))
    renewed = dataclasses.replace(stale, expires_ms=late + DAY_MS)
    assert await keeper.offer(_signed(renewed, admins[0])) is True
    assert not keeper.expired() and keeper.roster.version == 2
    await store.close()
