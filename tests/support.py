"""Shared test helpers: a small consortium's roster and keys, built in memory."""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol.roster import AdminKey, Roster, SignedRoster
from protocol.roster_members import CheckpointKey, Member
from protocol.signing import SigningKey

NOW_MS = 1_800_000_000_000
DAY_MS = 86_400_000


@dataclass
class TestMember:
    member_id: str
    origin: str
    checkpoint_key: SigningKey = field(default_factory=SigningKey.generate)
    node_key: SigningKey = field(default_factory=SigningKey.generate)

    def member(self, endpoint: str = "") -> Member:
        return Member(
            member_id=self.member_id,
            display_name=self.member_id.title(),
            origin=self.origin,
            checkpoint_keys=(CheckpointKey(self.checkpoint_key.public),),
            node_key=self.node_key.public,
            endpoints=(endpoint,) if endpoint else (),
            roles=("member",),
        )


def make_members(n: int) -> list[TestMember]:
    return [TestMember(f"m{i}", f"test.hashmesh/m{i}") for i in range(n)]


def make_roster(
    members: list[TestMember],
    admins: list[SigningKey] | None = None,
    version: int = 1,
    threshold: int = 1,
) -> tuple[Roster, SignedRoster, list[SigningKey]]:
    admins = admins or [SigningKey.generate()]
    roster = Roster(
        consortium="test",
        version=version,
        issued_ms=NOW_MS - DAY_MS,
        expires_ms=NOW_MS + 365 * DAY_MS,
        admins=tuple(AdminKey(f"admin{i}", k.public) for i, k in enumerate(admins)),
        threshold=threshold,
        witness_quorum=0,
        taxonomy=("glorification", "terrorist-attack"),
        members=tuple(m.member() for m in members),
    )
    signed = SignedRoster(roster.encode(), ())
    for key in admins[:threshold]:
        signed = signed.with_signature(key)
    return roster, signed, admins
