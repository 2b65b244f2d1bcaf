"""Secret files of a node (its operator token, webhook secrets, key files' text): written once
with mode 0600 and never overwritten, read back as text. Plain file I/O, so that reading the
operator token (every CLI command that talks to the node) loads no cryptography.
"""

from __future__ import annotations

import os
from pathlib import Path

from node.errors import ConfigError


def write_secret(path: Path, text: str) -> None:
    """Create `path` readable by its owner only; refuse to overwrite an existing secret."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as e:
        raise ConfigError(f"{path} exists already; refusing to overwrite a key") from e
    with os.fdopen(fd, "w") as f:
        f.write(text + "\n")


def read_secret(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e}") from e
