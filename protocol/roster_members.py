"""The members a consortium roster lists (protocol/roster.py): each member's id, log origin,
checkpoint keys over ranges of its log's sizes, node key, endpoints and roles, with their
encoding and the checks a member must pass.

Layouts (msgpack arrays, inside a roster; see docs/protocol.md):
  member  [member_id, display_name, origin, checkpoint_keys, node_key, endpoints, roles, contact]
  ckey    [public_key, first_size, last_size|nil, compromised(0|1)]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from protocol import codec
from protocol.errors import DecodeError, RosterError
from protocol.note import check_name
from protocol.signing import PUBLIC_KEY_SIZE

MAX_NAME = 128
ROLES = ("member", "auditor")
MAX_SIZE = (1 << 63) - 1
_MEMBER_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


@dataclass(frozen=True, slots=True)
class CheckpointKey:
    """A log key, valid for checkpoints whose size lies in [first_size, last_size].

    A rotated-out key has last_size set to where its successor took over. A compromised key
    signs nothing valid beyond last_size, and entries beyond it are not valid either.
    """

    public: bytes
    first_size: int = 0
    last_size: int | None = None
    compromised: bool = False

    def covers(self, size: int) -> bool:
        return self.first_size <= size and (self.last_size is None or size <= self.last_size)


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    display_name: str
    origin: str
    checkpoint_keys: tuple[CheckpointKey, ...]
    node_key: bytes
    endpoints: tuple[str, ...] = ()
    roles: tuple[str, ...] = ("member",)
    contact: str = ""

    @property
    def writes(self) -> bool:
        return "member" in self.roles

    def valid_size_limit(self) -> int | None:
        """The size beyond which this member's log is not valid, if any.

        A key declared compromised from size N is trusted for nothing beyond N. The log stays
        valid beyond N only where an uncompromised successor key (rotated in after N) takes over.
        """
        limits = [k.last_size for k in self.checkpoint_keys if k.compromised]
        limit = min((x for x in limits if x is not None), default=None)
        if limit is None:
            return None
        successors = [k for k in self.checkpoint_keys if not k.compromised and k.first_size > limit]
        return None if successors else limit


def encode_member(m: Member) -> list[codec.Value]:
    keys: list[codec.Value] = [
        [k.public, k.first_size, k.last_size, int(k.compromised)] for k in m.checkpoint_keys
    ]
    return [
        m.member_id,
        m.display_name,
        m.origin,
        keys,
        m.node_key,
        list(m.endpoints),
        list(m.roles),
        m.contact,
    ]


def decode_member(value: codec.Value) -> Member:
    f = codec.as_list(value, "member", 8)
    keys = []
    for item in codec.as_list(f[3], "checkpoint keys"):
        k = codec.as_list(item, "checkpoint key", 4)
        last = None if k[2] is None else codec.as_int(k[2], "last_size", 0, MAX_SIZE)
        keys.append(
            CheckpointKey(
                codec.as_bytes(k[0], "checkpoint key", PUBLIC_KEY_SIZE, PUBLIC_KEY_SIZE),
                codec.as_int(k[1], "first_size", 0, MAX_SIZE),
                last,
                bool(codec.as_int(k[3], "compromised", 0, 1)),
            )
        )
    return Member(
        member_id=codec.as_str(f[0], "member id", 64),
        display_name=codec.as_str(f[1], "display name", MAX_NAME),
        origin=codec.as_str(f[2], "origin", MAX_NAME),
        checkpoint_keys=tuple(keys),
        node_key=codec.as_bytes(f[4], "node key", PUBLIC_KEY_SIZE, PUBLIC_KEY_SIZE),
        endpoints=codec.as_str_list(f[5], "endpoints", 8, 256),
        roles=codec.as_str_list(f[6], "roles", 4, 16),
        contact=codec.as_str(f[7], "contact", 256),
    )


def check_member(m: Member) -> None:
    if not _MEMBER_ID.fullmatch(m.member_id):
        raise RosterError(f"bad member id {m.member_id!r}")
    if not m.roles or any(role not in ROLES for role in m.roles):
        raise RosterError(f"member {m.member_id!r}: roles must be among {ROLES}")
    if m.writes:
        try:
            check_name(m.origin)  # the origin names the checkpoint key in signed notes
        except DecodeError as e:
            raise RosterError(f"member {m.member_id!r}: bad log origin") from e
        if not m.checkpoint_keys:
            raise RosterError(f"member {m.member_id!r} has no checkpoint key")
    for k in m.checkpoint_keys:
        if k.last_size is not None and k.last_size < k.first_size:
            raise RosterError(f"member {m.member_id!r}: key range is empty")
        # Without an end, a compromised key would still cover every size (see `covers`).
        if k.compromised and k.last_size is None:
            raise RosterError(f"member {m.member_id!r}: a compromised key needs a last_size")
