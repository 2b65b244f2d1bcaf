"""C2SP signed notes (c2sp.org/signed-note) with Ed25519 keys, as golang.org/x/mod/sumdb/note.

A note is UTF-8 text: a body of newline-terminated lines, a blank line, then one or more
signature lines `— <name> <base64(key id || signature)>`. A signature covers the body bytes.
A key id is the first four bytes of SHA-256(name || 0x0A || algorithm byte || public key);
Ed25519 note signatures use algorithm 0x01, C2SP cosignatures 0x04 (see protocol.cosignature).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass

from protocol.errors import DecodeError, SignatureError
from protocol.signing import PUBLIC_KEY_SIZE, SEED_SIZE, SIGNATURE_SIZE, SigningKey, verify

ALG_ED25519 = 0x01
SIG_PREFIX = "\u2014 "
MAX_NOTE_BYTES = 1 << 20
MAX_SIGNATURES = 100


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: str, what: str) -> bytes:
    """Strict standard base64 (RFC 4648 section 4): canonical form only."""
    try:
        data = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as e:
        raise DecodeError(f"{what}: not standard base64") from e
    if b64(data) != text:
        raise DecodeError(f"{what}: base64 not in canonical form")
    return data


#: What a key name may not hold: whitespace (as str.isspace), a control character, '+'.
_NOT_IN_NAME = re.compile(r"[\s\x00-\x1f\x7f+]")


def check_name(name: str) -> str:
    """A key name is non-empty UTF-8 without whitespace, control characters or '+'."""
    if not name or _NOT_IN_NAME.search(name):
        raise DecodeError(f"invalid key name {name!r}")
    return name


def key_id(name: str, public: bytes, alg: int = ALG_ED25519) -> bytes:
    """The four-byte key id of a named public key."""
    return hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public).digest()[:4]


@dataclass(frozen=True, slots=True)
class Verifier:
    """A named Ed25519 public key that checks note signatures."""

    name: str
    public: bytes
    alg: int = ALG_ED25519

    @property
    def key_id(self) -> bytes:
        return key_id(self.name, self.public, self.alg)

    def text(self) -> str:
        """The verifier key in Go's note text form: name+hex(key id)+base64(alg||key)."""
        return f"{self.name}+{self.key_id.hex()}+{b64(bytes([self.alg]) + self.public)}"

    @classmethod
    def parse(cls, text: str) -> Verifier:
        # The base64 key may itself hold '+': split at the first two only, as Go's chop does.
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise DecodeError("verifier key: expected name+keyid+key")
        name, hex_id, key_b64 = parts
        check_name(name)
        raw = unb64(key_b64, "verifier key")
        if len(raw) != 1 + PUBLIC_KEY_SIZE:
            raise DecodeError("verifier key: wrong key length")
        verifier = cls(name, raw[1:], raw[0])
        if verifier.key_id.hex() != hex_id:
            raise DecodeError("verifier key: key id does not match the key")
        return verifier


def signer_key_text(name: str, key: SigningKey) -> str:
    """A private key in Go's note text form: PRIVATE+KEY+name+hex(key id)+base64(alg||seed)."""
    check_name(name)
    kid = key_id(name, key.public).hex()
    return f"PRIVATE+KEY+{name}+{kid}+{b64(bytes([ALG_ED25519]) + key.seed)}"


def parse_signer_key(text: str) -> tuple[str, SigningKey]:
    parts = text.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise DecodeError("signer key: expected PRIVATE+KEY+name+keyid+key")
    name = check_name(parts[2])
    raw = unb64(parts[4], "signer key")
    if len(raw) != 1 + SEED_SIZE or raw[0] != ALG_ED25519:
        raise DecodeError("signer key: not an Ed25519 seed")
    key = SigningKey(raw[1:])
    if key_id(name, key.public).hex() != parts[3]:
        raise DecodeError("signer key: key id does not match the key")
    return name, key


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        return f"{SIG_PREFIX}{self.name} {b64(self.key_id + self.signature)}\n"


@dataclass(frozen=True, slots=True)
class Note:
    """A parsed note: its body text and its signature lines, in order."""

    text: str
    signatures: tuple[NoteSignature, ...]

    def encode(self) -> bytes:
        return (self.text + "\n" + "".join(s.line() for s in self.signatures)).encode()

    def by_key(self, name: str, kid: bytes) -> list[NoteSignature]:
        return [s for s in self.signatures if s.name == name and s.key_id == kid]


def _is_control(ch: str) -> bool:
    return ord(ch) < 0x20 or ord(ch) == 0x7F


#: A control character other than newline (C0 and DEL); one regex search, where a loop over
#: the characters was most of parsing a checkpoint's note.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f]")


def check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise DecodeError("note text must end in a newline")
    if _CONTROL.search(text):
        raise DecodeError("note text holds a control character")


def parse_note(raw: bytes) -> Note:
    """Parse a signed note without checking any signature. DecodeError on any malformation."""
    if len(raw) > MAX_NOTE_BYTES:
        raise DecodeError("note too large")
    try:
        whole = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DecodeError("note is not UTF-8") from e
    # Like Go's note.Open: no control character but newline anywhere, signature lines included.
    if _CONTROL.search(whole):
        raise DecodeError("note holds a control character")
    split = whole.rfind("\n\n")
    if split < 0:
        raise DecodeError("note has no signature block")
    text, block = whole[: split + 1], whole[split + 2 :]
    check_text(text)
    if not block.endswith("\n"):
        raise DecodeError("signature block must end in a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise DecodeError("too many signatures")
    sigs: list[NoteSignature] = []
    for line in lines:
        if not line.startswith(SIG_PREFIX):
            raise DecodeError("malformed signature line")
        parts = line[len(SIG_PREFIX) :].split(" ")
        if len(parts) != 2:
            raise DecodeError("malformed signature line")
        name = check_name(parts[0])
        blob = unb64(parts[1], "signature")
        if len(blob) < 5:
            raise DecodeError("signature too short")
        sigs.append(NoteSignature(name, blob[:4], blob[4:]))
    return Note(text, tuple(sigs))


def sign_note(text: str, name: str, key: SigningKey) -> bytes:
    """A new note with one Ed25519 signature by the named key."""
    check_text(text)
    check_name(name)
    sig = NoteSignature(name, key_id(name, key.public), key.sign(text.encode()))
    return Note(text, (sig,)).encode()


def add_signatures(raw: bytes, extra: list[NoteSignature]) -> bytes:
    """The note with more signature lines appended (duplicates by the same key dropped)."""
    note = parse_note(raw)
    have = {(s.name, s.key_id) for s in note.signatures}
    new = [s for s in extra if (s.name, s.key_id) not in have]
    return Note(note.text, note.signatures + tuple(new)).encode()


def verified_signature(note: Note, verifier: Verifier) -> NoteSignature:
    """The first of the note's lines that is a valid Ed25519 signature by `verifier`."""
    if verifier.alg != ALG_ED25519:
        raise SignatureError("not an Ed25519 note verifier")
    for sig in note.by_key(verifier.name, verifier.key_id):
        if len(sig.signature) == SIGNATURE_SIZE and verify(
            verifier.public, note.text.encode(), sig.signature
        ):
            return sig
    raise SignatureError(f"no valid signature by {verifier.name}")


def verify_note(raw: bytes, verifier: Verifier) -> Note:
    """Parse the note and require a valid Ed25519 signature by `verifier`."""
    note = parse_note(raw)
    verified_signature(note, verifier)
    return note
