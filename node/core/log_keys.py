"""Our log's checkpoint keys through a rotation: the key in use, and the next one while the
admins have not yet named it in the roster.

The roster decides which key signs which sizes. `begin_rotation` makes a new key beside the
current one (keys/checkpoint.next.key, mode 0600) and freezes signing at the current size, so
no checkpoint beyond it is signed with a key about to be retired; the admins then publish a
roster in which the old key ends at that size and the new one takes over. Once the roster names
the new key, it becomes keys/checkpoint.key and the old one is kept as checkpoint.<n>.old.key.
"""

from __future__ import annotations

import json
from pathlib import Path

from node.credentials.key_files import create_key, load_key
from node.errors import ConfigError
from protocol.errors import RosterError
from protocol.roster import Roster
from protocol.signing import SigningKey

NEXT_KEY = "checkpoint.next.key"
ROTATION = "rotation.json"


class CheckpointKeys:
    def __init__(self, origin: str, current: SigningKey, keys_dir: Path | None) -> None:
        self.origin = origin
        self.current = current
        self._dir = keys_dir
        self.next: SigningKey | None = None
        self.frozen_at: int | None = None
        if keys_dir is not None and (keys_dir / NEXT_KEY).exists():
            _, self.next = load_key(keys_dir / NEXT_KEY)
            self.frozen_at = int(json.loads((keys_dir / ROTATION).read_text())["after_size"])

    def for_size(self, roster: Roster, size: int) -> SigningKey | None:
        """The installed key the roster names for a checkpoint of `size`, if we may use it."""
        try:
            public = roster.checkpoint_key(self.origin, size)
        except RosterError:
            return None
        if self.next is not None and public == self.next.public:
            self._promote()
            return self.current
        if public == self.current.public:
            if self.frozen_at is not None and size > self.frozen_at:
                return None  # the admins are about to name our next key for these sizes
            return self.current
        return None

    def begin_rotation(self, signed_size: int) -> SigningKey:
        if self._dir is None:
            raise ConfigError("this node has no key directory to rotate keys in")
        if self.next is None:
            self.next = create_key(self._dir / NEXT_KEY, self.origin)
        self.frozen_at = signed_size
        (self._dir / ROTATION).write_text(json.dumps({"after_size": signed_size}) + "\n")
        return self.next

    def _promote(self) -> None:
        assert self.next is not None
        if self._dir is not None:
            n = len(list(self._dir.glob("checkpoint.*.old.key")))
            (self._dir / "checkpoint.key").rename(self._dir / f"checkpoint.{n}.old.key")
            (self._dir / NEXT_KEY).rename(self._dir / "checkpoint.key")
            (self._dir / ROTATION).unlink(missing_ok=True)
        self.current, self.next, self.frozen_at = self.next, None, None
