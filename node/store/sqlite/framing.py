"""The messages between the node and its SQLite writer process (node/store/sqlite/writer.py
describes the protocol): an 8-byte big-endian length and a `marshal` of plain values.

A module of its own so that the writer process imports only what it uses (no asyncio).
"""

from __future__ import annotations

import marshal
import struct
from typing import IO

from node.errors import StoreError

_LENGTH = struct.Struct("!Q")


def send(stream: IO[bytes], message: object) -> None:
    """Write one message (OSError, e.g. BrokenPipeError, if the other end is gone)."""
    try:
        frame = marshal.dumps(message)  # type: ignore[arg-type]  # plain values: checked here
    except ValueError as e:  # a tuple subclass, say: nothing is written
        raise StoreError(f"a message to or from the SQLite writer holds {e}") from e
    stream.write(_LENGTH.pack(len(frame)))
    stream.write(frame)
    stream.flush()


def receive(stream: IO[bytes]) -> object:
    """The next message; EOFError if the stream ends, even partway through one."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the stream ended")
    (length,) = _LENGTH.unpack(head)
    frame = stream.read(length)
    if len(frame) < length:
        raise EOFError("the stream ended inside a message")
    try:
        return marshal.loads(frame)  # noqa: S302  # our own child's or parent's message
    except (EOFError, TypeError, ValueError) as e:  # not what `send` wrote
        raise ValueError(f"a malformed message: {e}") from e
