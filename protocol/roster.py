"""The consortium roster: who is a member, with which keys, signed by a threshold of admins.

Modelled on TUF root metadata. Version N+1 is valid only if signed by a threshold of version
N's admins and by a threshold of its own; signatures are counted by distinct public key, never
by key id or name, and an admin key listed twice makes a roster invalid. Rollback is refused;
expiry is a property of the roster a chain ends at, checked against a reference time the
caller must pass (`verify_genesis`, `verify_update`, `verify_chain`, `check_fresh`): the links
of a chain (`verify_link`, `walk_chain`) hold whatever the time.

Layouts (msgpack arrays, see docs/protocol.md):
  roster  [1, consortium, version, issued_ms, expires_ms, admins, threshold, witness_quorum,
           taxonomy, members, pdq_threshold, resign_period_ms(, act_agreement)]
           act_agreement is present only when it is not 1, so rosters without it keep
           their bytes and stay readable by nodes that predate it
  admin   [name, public_key]
  member, ckey: protocol/roster_members.py
  signed  [1, roster_bytes, [[public_key, signature], ...]]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from protocol import codec
from protocol.errors import DecodeError, ExpiredError, RollbackError, RosterError
from protocol.roster_members import MAX_NAME, Member, check_member, decode_member, encode_member
from protocol.signing import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, SigningKey, verify

ROSTER_VERSION = 1
SIGNING_CONTEXT = b"hashmesh roster v1\n"
MAX_MEMBERS = 4096
MAX_ADMINS = 64
#: Labels modelled on the industry's shared taxonomy for terrorist and violent-extremist content.
DEFAULT_TAXONOMY: tuple[str, ...] = (
    "terrorist-attack",
    "attack-livestream",
    "perpetrator-manifesto",
    "glorification",
    "recruitment",
    "instruction",
    "threat",
    "designated-organisation",
)


@dataclass(frozen=True, slots=True)
class AdminKey:
    name: str
    public: bytes


@dataclass(frozen=True, slots=True)
class Roster:
    consortium: str
    version: int
    issued_ms: int
    expires_ms: int
    admins: tuple[AdminKey, ...]
    threshold: int
    witness_quorum: int
    taxonomy: tuple[str, ...]
    members: tuple[Member, ...]
    pdq_threshold: int = 31
    resign_period_ms: int = 0
    #: The consortium's default for its members' match policy: act on a hash when at least
    #: this many members stand behind it (docs/matching.md); a node may ask for more.
    act_agreement: int = 1

    def __post_init__(self) -> None:
        _check_roster(self)

    def member(self, member_id: str) -> Member:
        for m in self.members:
            if m.member_id == member_id:
                return m
        raise RosterError(f"no member {member_id!r} in roster version {self.version}")

    def member_by_origin(self, origin: str) -> Member:
        for m in self.members:
            if m.origin == origin and m.writes:
                return m
        raise RosterError(f"no member writes log {origin!r} in roster version {self.version}")

    def member_by_node_key(self, public: bytes) -> Member:
        for m in self.members:
            if m.node_key == public:
                return m
        raise RosterError("no member holds this node key")

    def origins(self) -> tuple[str, ...]:
        return tuple(m.origin for m in self.members if m.writes)

    def checkpoint_key(self, origin: str, size: int) -> bytes:
        """The key that signs `origin`'s checkpoints of `size` (the newest that covers it)."""
        member = self.member_by_origin(origin)
        for key in reversed(member.checkpoint_keys):
            if key.covers(size):
                return key.public
        raise RosterError(f"no key of {origin!r} is valid for size {size}")

    def encode(self) -> bytes:
        agreement: list[codec.Value] = [self.act_agreement] if self.act_agreement != 1 else []
        return codec.encode(
            [
                ROSTER_VERSION,
                self.consortium,
                self.version,
                self.issued_ms,
                self.expires_ms,
                [[a.name, a.public] for a in self.admins],
                self.threshold,
                self.witness_quorum,
                list(self.taxonomy),
                [encode_member(m) for m in self.members],
                self.pdq_threshold,
                self.resign_period_ms,
                *agreement,
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> Roster:
        f = codec.as_list(codec.decode(data), "roster")
        if len(f) not in (12, 13):
            raise DecodeError(f"roster: expected 12 or 13 items, got {len(f)}")
        if len(f) == 13 and f[12] == 1:
            raise DecodeError("roster: act_agreement 1 is the default and is left out")
        if codec.as_int(f[0], "roster version tag") != ROSTER_VERSION:
            raise DecodeError("unknown roster layout version")
        admins = tuple(
            AdminKey(
                codec.as_str(a[0], "admin name", MAX_NAME),
                codec.as_bytes(a[1], "admin key", PUBLIC_KEY_SIZE, PUBLIC_KEY_SIZE),
            )
            for a in (codec.as_list(x, "admin", 2) for x in codec.as_list(f[5], "admins"))
        )
        try:
            return cls(
                consortium=codec.as_str(f[1], "consortium", MAX_NAME),
                version=codec.as_int(f[2], "version"),
                issued_ms=codec.as_int(f[3], "issued_ms"),
                expires_ms=codec.as_int(f[4], "expires_ms"),
                admins=admins,
                threshold=codec.as_int(f[6], "threshold"),
                witness_quorum=codec.as_int(f[7], "witness_quorum"),
                taxonomy=codec.as_str_list(f[8], "taxonomy", 256, 64),
                members=tuple(decode_member(m) for m in codec.as_list(f[9], "members")),
                pdq_threshold=codec.as_int(f[10], "pdq_threshold", 0, 256),
                resign_period_ms=codec.as_int(f[11], "resign_period_ms"),
                act_agreement=codec.as_int(f[12], "act_agreement", 1, MAX_MEMBERS)
                if len(f) == 13
                else 1,
            )
        except RosterError as e:
            raise DecodeError(f"invalid roster: {e}") from e


def _check_roster(r: Roster) -> None:
    if not r.admins or len(r.admins) > MAX_ADMINS:
        raise RosterError("a roster needs between 1 and 64 admin keys")
    if len({a.public for a in r.admins}) != len(r.admins):
        raise RosterError("an admin key is listed twice")
    if not 1 <= r.threshold <= len(r.admins):
        raise RosterError(f"threshold {r.threshold} of {len(r.admins)} admins is impossible")
    if r.version < 1 or r.expires_ms <= r.issued_ms:
        raise RosterError("roster version must be >= 1 and expiry after issue")
    if len(r.members) > MAX_MEMBERS:
        raise RosterError("too many members")
    if not 1 <= r.act_agreement <= MAX_MEMBERS:
        raise RosterError(f"act_agreement is between 1 and {MAX_MEMBERS}")
    writers = [m for m in r.members if m.writes]
    if r.witness_quorum > len(writers):
        raise RosterError("witness quorum larger than the number of members")
    seen: dict[str, set[object]] = {"id": set(), "origin": set(), "node": set()}
    for m in r.members:
        check_member(m)
        for kind, value in (("id", m.member_id), ("node", m.node_key)):
            if value in seen[kind]:
                raise RosterError(f"member {m.member_id!r}: {kind} used twice")
            seen[kind].add(value)
        if m.writes:
            if m.origin in seen["origin"]:
                raise RosterError(f"log origin {m.origin!r} used twice")
            seen["origin"].add(m.origin)


def signing_message(body: bytes) -> bytes:
    """What an admin signs: a context string, then the roster's exact bytes."""
    return SIGNING_CONTEXT + body


@dataclass(frozen=True, slots=True)
class SignedRoster:
    """A roster's exact bytes with admin signatures, each named by its public key."""

    body: bytes
    signatures: tuple[tuple[bytes, bytes], ...]

    @property
    def roster(self) -> Roster:
        return Roster.decode(self.body)

    def with_signature(self, key: SigningKey) -> SignedRoster:
        if any(pub == key.public for pub, _ in self.signatures):
            return self
        sig = (key.public, key.sign(signing_message(self.body)))
        return replace(self, signatures=(*self.signatures, sig))

    def encode(self) -> bytes:
        sigs: list[codec.Value] = [[p, s] for p, s in self.signatures]
        return codec.encode([ROSTER_VERSION, self.body, sigs])

    @classmethod
    def decode(cls, data: bytes) -> SignedRoster:
        f = codec.as_list(codec.decode(data), "signed roster", 3)
        if codec.as_int(f[0], "signed roster version tag") != ROSTER_VERSION:
            raise DecodeError("unknown signed roster layout version")
        body = codec.as_bytes(f[1], "roster body", codec.MAX_BYTES)
        sigs = []
        for item in codec.as_list(f[2], "signatures"):
            pair = codec.as_list(item, "signature", 2)
            sigs.append(
                (
                    codec.as_bytes(pair[0], "signer", PUBLIC_KEY_SIZE, PUBLIC_KEY_SIZE),
                    codec.as_bytes(pair[1], "signature", SIGNATURE_SIZE, SIGNATURE_SIZE),
                )
            )
        signed = cls(body, tuple(sigs))
        signed.roster  # noqa: B018  # a signed roster whose body does not decode is not one
        return signed

    def signers(self, admins: tuple[AdminKey, ...]) -> set[bytes]:
        """The distinct admin public keys (of `admins`) with a valid signature here."""
        allowed = {a.public for a in admins}
        message = signing_message(self.body)
        return {pub for pub, sig in self.signatures if pub in allowed and verify(pub, message, sig)}


def _require_threshold(signed: SignedRoster, roster: Roster, whose: str) -> None:
    count = len(signed.signers(roster.admins))
    if count < roster.threshold:
        raise RosterError(
            f"roster signed by {count} of {whose} admins, threshold is {roster.threshold}"
        )


def check_fresh(roster: Roster, now_ms: int) -> None:
    if now_ms >= roster.expires_ms:
        raise ExpiredError(f"roster version {roster.version} expired")


def verify_self_signed(signed: SignedRoster) -> Roster:
    """The first roster of a chain: a threshold of its own admins signed it. No time."""
    roster = signed.roster
    _require_threshold(signed, roster, "its own")
    return roster


def verify_link(trusted: Roster, candidate: SignedRoster) -> Roster:
    """Roster N+1 signed by a threshold of N's admins and of its own. No time: a link stays
    valid after either end expires (as python-tuf walks root versions)."""
    new = candidate.roster
    if new.version <= trusted.version:
        raise RollbackError(f"roster version {new.version} is not newer than {trusted.version}")
    if new.version != trusted.version + 1:
        raise RosterError(f"roster version {new.version} skips from {trusted.version}")
    if new.consortium != trusted.consortium:
        raise RosterError("roster belongs to another consortium")
    _require_threshold(candidate, trusted, f"version {trusted.version}'s")
    _require_threshold(candidate, new, "its own")
    return new


def walk_chain(chain: Sequence[bytes]) -> list[Roster]:
    """Every roster of `chain` (a self-signed first one, then each next version), in order.
    No time: the caller checks the last one's expiry (`check_fresh`) or reports it."""
    if not chain:
        raise RosterError("an empty roster chain")
    rosters = [verify_self_signed(SignedRoster.decode(chain[0]))]
    for raw in chain[1:]:
        rosters.append(verify_link(rosters[-1], SignedRoster.decode(raw)))
    return rosters


def verify_genesis(signed: SignedRoster, now_ms: int) -> Roster:
    """A pinned first roster to trust now: self-signed by a threshold and fresh at `now_ms`."""
    roster = verify_self_signed(signed)
    check_fresh(roster, now_ms)
    return roster


def verify_update(trusted: Roster, candidate: SignedRoster, now_ms: int) -> Roster:
    """Roster N+1 to trust now: a valid link from N and fresh at `now_ms`."""
    new = verify_link(trusted, candidate)
    check_fresh(new, now_ms)
    return new


def verify_chain(genesis: bytes, updates: Sequence[bytes], now_ms: int) -> Roster:
    """Walk from a pinned genesis through every update; only the last must be fresh."""
    roster = walk_chain([genesis, *updates])[-1]
    check_fresh(roster, now_ms)
    return roster
