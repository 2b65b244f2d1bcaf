"""Setting up members and consortia on disk: `init` for one member, and whole local consortia
for the demo and the multi-process tests.

`init_member` writes a member's keys (mode 0600), its configuration and a join request that an
admin turns into a roster entry. `build_consortium` does this for N members on 127.0.0.1 and
signs a first roster with freshly made admin keys, pinned into every member's directory.
"""

from __future__ import annotations

import base64
import json
import random
import socket
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from node.config import NodeConfig
from node.credentials.key_files import create_key, create_token
from node.credentials.secret_files import write_secret
from node.errors import ConfigError
from protocol.note import signer_key_text
from protocol.roster import DEFAULT_TAXONOMY, AdminKey, Roster, SignedRoster
from protocol.roster_members import CheckpointKey, Member
from protocol.signing import SigningKey

JOIN_REQUEST = "join-request.json"
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class JoinRequest:
    """What a new member hands to the admins: its public keys, log origin and endpoint."""

    member_id: str
    display_name: str
    origin: str
    checkpoint_key: bytes
    node_key: bytes
    endpoints: tuple[str, ...]
    contact: str = ""
    roles: tuple[str, ...] = ("member",)

    def to_json(self) -> str:
        return json.dumps(
            {
                "type": "hashmesh-join-request-v1",
                "member_id": self.member_id,
                "display_name": self.display_name,
                "origin": self.origin,
                "checkpoint_key": base64.b64encode(self.checkpoint_key).decode(),
                "node_key": base64.b64encode(self.node_key).decode(),
                "endpoints": list(self.endpoints),
                "contact": self.contact,
                "roles": list(self.roles),
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> JoinRequest:
        try:
            data: dict[str, Any] = json.loads(text)
            if data.get("type") != "hashmesh-join-request-v1":
                raise ConfigError("not a hashmesh join request")
            return cls(
                member_id=str(data["member_id"]),
                display_name=str(data["display_name"]),
                origin=str(data["origin"]),
                checkpoint_key=base64.b64decode(data["checkpoint_key"], validate=True),
                node_key=base64.b64decode(data["node_key"], validate=True),
                endpoints=tuple(str(e) for e in data["endpoints"]),
                contact=str(data.get("contact", "")),
                roles=tuple(str(r) for r in data.get("roles", ["member"])),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise ConfigError(f"malformed join request: {e}") from e

    def member(self) -> Member:
        return Member(
            member_id=self.member_id,
            display_name=self.display_name,
            origin=self.origin,
            checkpoint_keys=(CheckpointKey(self.checkpoint_key),),
            node_key=self.node_key,
            endpoints=self.endpoints,
            roles=self.roles,
            contact=self.contact,
        )


def init_member(
    config: NodeConfig, display_name: str = "", contact: str = "", role: str = "member"
) -> JoinRequest:
    """Create a member's keys, configuration and join request in `config.directory`."""
    if (config.directory / "hashmesh.toml").exists():
        raise ConfigError(f"{config.directory} already holds a node")
    config.directory.mkdir(parents=True, exist_ok=True)
    checkpoint = create_key(config.checkpoint_key_path, config.origin)
    node = create_key(config.node_key_path, config.member_id)
    create_token(config.token_path)
    config.save()
    host = f"[{config.peer_host}]" if ":" in config.peer_host else config.peer_host
    request = JoinRequest(
        member_id=config.member_id,
        display_name=display_name or config.member_id,
        origin=config.origin,
        checkpoint_key=checkpoint.public,
        node_key=node.public,
        endpoints=(f"http://{host}:{config.peer_port}",),
        contact=contact,
        roles=(role,),
    )
    (config.directory / JOIN_REQUEST).write_text(request.to_json() + "\n")
    return request


def free_port(host: str = "127.0.0.1") -> int:
    """A port free now, below the kernel's ephemeral range (32768 and up on Linux), and never
    one this process was given before.

    Ports the OS hands out for port 0 come from the ephemeral range, where a running node's
    outgoing connections may take one before the node meant to listen on it starts. A port
    is only bound when its node starts, so two picks before then must not return the same one.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while len(_GIVEN_PORTS) < _PORT_HIGH - _PORT_LOW:
        port = _PORTS.randrange(_PORT_LOW, _PORT_HIGH)
        if port in _GIVEN_PORTS:
            continue
        with socket.socket(family) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _GIVEN_PORTS.add(port)
        return port
    raise ConfigError(f"every port from {_PORT_LOW} to {_PORT_HIGH} was given out already")


_PORTS = random.Random()  # noqa: S311  # spreading ports, not a secret
_PORT_LOW, _PORT_HIGH = 20_000, 32_000
_GIVEN_PORTS: set[int] = set()  # every port free_port returned in this process


@dataclass(frozen=True, slots=True)
class Consortium:
    root: Path
    configs: tuple[NodeConfig, ...]
    admin_key_paths: tuple[Path, ...]
    roster: bytes


def make_roster(
    name: str,
    admins: list[SigningKey],
    threshold: int,
    members: list[Member],
    now_ms: int,
    valid_days: float = 365.0,
    witness_quorum: int = 0,
    taxonomy: tuple[str, ...] = DEFAULT_TAXONOMY,
) -> Roster:
    return Roster(
        consortium=name,
        version=1,
        issued_ms=now_ms,
        expires_ms=now_ms + int(valid_days * DAY_MS),
        admins=tuple(AdminKey(f"admin-{i + 1}", k.public) for i, k in enumerate(admins)),
        threshold=threshold,
        witness_quorum=witness_quorum,
        taxonomy=taxonomy,
        members=tuple(members),
    )


def build_consortium(
    root: Path,
    n: int,
    now_ms: int,
    admins: int = 1,
    threshold: int = 1,
    witness_quorum: int = 0,
    valid_days: float = 365.0,
    auditors: int = 0,
    roster_act_agreement: int = 1,
    **settings: Any,
) -> Consortium:
    """N members (and `auditors` auditors) on 127.0.0.1 with free ports, one signed roster
    pinned in each directory; `roster_act_agreement` is the roster's act_agreement, the
    other `settings` are node settings."""
    admin_keys = [SigningKey.generate() for _ in range(admins)]
    admin_paths = []
    for i, key in enumerate(admin_keys):
        path = root / "admins" / f"admin-{i + 1}.key"
        write_secret(path, signer_key_text(f"admin-{i + 1}", key))
        admin_paths.append(path)
    configs = []
    members = []
    names = [(f"member{i + 1}", "member") for i in range(n)]
    names += [(f"auditor{i + 1}", "auditor") for i in range(auditors)]
    for member_id, role in names:
        config = NodeConfig(
            member_id=member_id,
            origin=f"demo.hashmesh/{member_id}",
            directory=root / member_id,
            peer_port=free_port(),
            operator_port=free_port(),
        )
        config = replace(config, **settings)
        title = member_id.replace("member", "Platform ").replace("auditor", "Auditor ")
        members.append(init_member(config, display_name=title, role=role).member())
        configs.append(config)
    roster = make_roster("demo", admin_keys, threshold, members, now_ms, valid_days, witness_quorum)
    roster = replace(roster, act_agreement=roster_act_agreement)
    signed = SignedRoster(roster.encode(), ())
    for key in admin_keys[:threshold]:
        signed = signed.with_signature(key)
    raw = signed.encode()
    for config in configs:
        config.roster_path.write_bytes(raw)
    return Consortium(root, tuple(configs), tuple(admin_paths), raw)
