"""Local hashing of files (interim: exact hashes only; PDQ and vPDQ arrive with matching)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from node.errors import NodeError

LOW_QUALITY = 50


def hash_file(path: Path, vpdq_fps: float = 1.0) -> list[tuple[str, bytes, int | None]]:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise NodeError(f"cannot read {path}: {e}") from e
    return [
        ("md5", hashlib.md5(data, usedforsecurity=False).digest(), None),
        ("sha256", hashlib.sha256(data).digest(), None),
    ]
