"""C2SP tlog-checkpoint bodies (origin, size, base64 root, extension lines) as signed notes.

The checkpoint's signature line is made with the log's origin as key name, so any
golang.org/x/mod/sumdb/note verifier built from the roster's key checks it unchanged.
We verify the exact bytes received (SignedCheckpoint.raw), never a re-encoding, and keep them
less any signature line that does not verify (open_witnessed).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass

from protocol.cosignature import VerifiedLines, verified_cosignatures
from protocol.errors import DecodeError
from protocol.merkle import HASH_SIZE
from protocol.note import (
    Note,
    Verifier,
    b64,
    check_name,
    parse_note,
    sign_note,
    unb64,
    verified_signature,
    verify_note,
)
from protocol.signing import SigningKey

MAX_SIZE = (1 << 63) - 1
MAX_EXTENSIONS = 16
_MAX_DIGITS = len(str(MAX_SIZE))


def parse_decimal(text: str, what: str, limit: int = MAX_SIZE) -> int:
    """A canonical non-negative decimal (ASCII digits, no sign or leading zero) up to `limit`."""
    if not text.isascii() or not text.isdigit():
        raise DecodeError(f"{what} is not a decimal number")
    if len(text) > 1 and text[0] == "0":
        raise DecodeError(f"{what} has leading zeros")
    # Bound the length first: int() of thousands of digits is slow, and refused by Python.
    if len(text) > _MAX_DIGITS or int(text) > limit:
        raise DecodeError(f"{what} too large")
    return int(text)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def body(self) -> str:
        lines = [self.origin, str(self.size), b64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        if not text.endswith("\n"):
            raise DecodeError("checkpoint body must end in a newline")
        lines = text[:-1].split("\n")
        if len(lines) < 3:
            raise DecodeError("checkpoint body needs origin, size and root")
        origin, size_text, root_text, *ext = lines
        if not origin:
            raise DecodeError("empty checkpoint origin")
        size = parse_decimal(size_text, "checkpoint size", MAX_SIZE)
        root = unb64(root_text, "checkpoint root")
        if len(root) != HASH_SIZE:
            raise DecodeError("checkpoint root is not 32 bytes")
        if len(ext) > MAX_EXTENSIONS or any(not line for line in ext):
            raise DecodeError("bad checkpoint extension lines")
        return cls(origin, size, root, tuple(ext))


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    """A checkpoint with the exact note bytes it arrived in."""

    raw: bytes
    note: Note
    checkpoint: Checkpoint


#: Checkpoints up to this size are parsed once for every time their bytes come again: a sync
#: round offers each checkpoint from every peer, and each is read on several paths.
PARSED_KEPT_MAX_BYTES = 4096


def parse_signed_checkpoint(raw: bytes) -> SignedCheckpoint:
    """Parse without verifying (to find its origin and size). DecodeError on malformation."""
    if len(raw) <= PARSED_KEPT_MAX_BYTES:
        return _parsed_kept(raw)
    return _parse_signed_checkpoint(raw)


def _parse_signed_checkpoint(raw: bytes) -> SignedCheckpoint:
    note = parse_note(raw)
    return SignedCheckpoint(raw, note, Checkpoint.parse(note.text))


# The same bytes always parse to the same (frozen) result; a failure is not kept.
_parsed_kept = functools.lru_cache(maxsize=4096)(_parse_signed_checkpoint)


def sign_checkpoint(cp: Checkpoint, key: SigningKey) -> SignedCheckpoint:
    check_name(cp.origin)
    raw = sign_note(cp.body(), cp.origin, key)
    return SignedCheckpoint(raw, parse_note(raw), cp)


def checkpoint_verifier(origin: str, public: bytes) -> Verifier:
    return Verifier(origin, public)


def open_checkpoint(raw: bytes, public: bytes) -> SignedCheckpoint:
    """Parse and require a valid signature by the origin's key `public`."""
    parsed = parse_signed_checkpoint(raw)
    note = verify_note(raw, checkpoint_verifier(parsed.checkpoint.origin, public))
    return SignedCheckpoint(raw, note, parsed.checkpoint)


def open_witnessed(
    raw: bytes,
    public: bytes,
    witnesses: Mapping[str, bytes],
    known: VerifiedLines | None = None,
) -> SignedCheckpoint:
    """Open a checkpoint and keep only the lines that verify: the origin's first valid
    signature, then the first valid cosignature of each witness (name -> key, see
    protocol.cosignature). Any other line, whatever name it carries, is dropped, so what a
    node stores and serves is what it verified. Unchanged bytes if nothing was dropped. Lines
    `known` already found valid over this body are not verified again."""
    parsed = parse_signed_checkpoint(raw)
    cp = parsed.checkpoint
    body = cp.body()
    verifier = checkpoint_verifier(cp.origin, public)
    own = next(
        (
            s
            for s in parsed.note.by_key(verifier.name, verifier.key_id)
            if known is not None and known.has(body, public, s)
        ),
        None,
    )
    if own is None:
        own = verified_signature(parsed.note, verifier)
        if known is not None:
            known.add(body, public, own)
    others = [s for s in parsed.note.signatures if s is not own]
    kept = (own, *verified_cosignatures(body, others, witnesses, known))
    if kept == parsed.note.signatures:
        return parsed
    note = Note(parsed.note.text, kept)
    return SignedCheckpoint(note.encode(), note, cp)


def origin_signed(raw: bytes, public: bytes) -> SignedCheckpoint:
    """Open a checkpoint and keep the origin's valid signature line only (for evidence)."""
    return open_witnessed(raw, public, {})
