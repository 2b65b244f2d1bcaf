"""Key and token files of a node: signing keys and the operator token, made once and never
logged (the files themselves are written and read by node.credentials.secret_files).

Private keys are kept in the signed-note signer key text form
("PRIVATE+KEY+<name>+<key id>+<base64>") that Go's golang.org/x/mod/sumdb/note also reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from node.credentials.request_auth import new_token
from node.credentials.secret_files import read_secret, write_secret
from node.errors import ConfigError
from protocol.errors import DecodeError
from protocol.note import parse_signer_key, signer_key_text
from protocol.signing import SigningKey


def create_key(path: Path, name: str) -> SigningKey:
    key = SigningKey.generate()
    write_secret(path, signer_key_text(name, key))
    return key


def load_key(path: Path) -> tuple[str, SigningKey]:
    try:
        return parse_signer_key(read_secret(path))
    except DecodeError as e:
        raise ConfigError(f"{path} is not a signer key: {e}") from e


def create_token(path: Path) -> str:
    token = new_token()
    write_secret(path, token)
    return token


@dataclass(frozen=True, slots=True, repr=False)
class NodeKeys:
    """The checkpoint key (signs our log) and the node key (authenticates us to peers)."""

    checkpoint: SigningKey
    node: SigningKey
    token: str

    def __repr__(self) -> str:
        return "NodeKeys(...)"
