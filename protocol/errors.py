"""The error hierarchy of the protocol package: every failure there is a ProtocolError."""

from __future__ import annotations


class ProtocolError(Exception):
    """Base of every error raised by the protocol package."""


class DecodeError(ProtocolError):
    """Bytes are not the canonical encoding of a valid object (malformed, trailing, over-long)."""


class ValidationError(ProtocolError):
    """A well-formed object breaks a semantic rule (wrong hash length, unknown signal type, ...)."""


class SignatureError(ProtocolError):
    """A signature is missing, made by an unknown key, or does not verify."""


class ProofError(ProtocolError):
    """An inclusion or consistency proof, or a recomputed root, does not match."""


class RosterError(ProtocolError):
    """A roster is invalid: under-signed, wrong version, malformed membership."""


class RollbackError(RosterError):
    """Something older than what we already trust was offered as newer."""


class ExpiredError(RosterError):
    """A roster is past its expiry time."""


class EquivocationError(ProtocolError):
    """One origin signed two checkpoints that cannot both be true.

    Carries both signed checkpoints, exactly as received, as evidence for admins and auditors.
    """

    def __init__(self, origin: str, first: bytes, second: bytes, detail: str = "") -> None:
        self.origin = origin
        self.first = first
        self.second = second
        self.detail = detail
        super().__init__(
            f"equivocation by {origin}: {detail}" if detail else f"equivocation by {origin}"
        )
