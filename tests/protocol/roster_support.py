"""Shared fixtures of the roster tests: three members, three admins, and small builders."""

from __future__ import annotations

import dataclasses

from protocol.roster import AdminKey, Roster, SignedRoster
from protocol.signing import SigningKey
from tests.support import NOW_MS, make_members, make_roster

MEMBERS = make_members(3)
ADMINS = [SigningKey.generate() for _ in range(3)]


def first_roster(threshold: int = 2) -> tuple[Roster, SignedRoster]:
    roster, signed, _ = make_roster(MEMBERS, ADMINS, threshold=threshold)
    return roster, signed


def signed_by(roster: Roster, *keys: SigningKey) -> SignedRoster:
    signed = SignedRoster(roster.encode(), ())
    for key in keys:
        signed = signed.with_signature(key)
    return signed


def next_version(roster: Roster, **changes: object) -> Roster:
    fields: dict[str, object] = {"version": roster.version + 1, "issued_ms": NOW_MS}
    fields.update(changes)
    return dataclasses.replace(roster, **fields)  # type: ignore[arg-type]


def admin_keys(keys: list[SigningKey]) -> tuple[AdminKey, ...]:
    return tuple(AdminKey(f"admin-{i}", k.public) for i, k in enumerate(keys))
