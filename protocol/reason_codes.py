"""The reason codes a dispute or a confirmation of another member's entry carries: constants
only, so that the CLI can offer them as choices without loading the entry codec."""

from __future__ import annotations

DISPUTE_REASONS: tuple[str, ...] = (
    "not-terrorist-content",
    "wrong-label",
    "wrong-incident",
    "low-quality-hash",
    "hash-collision",
    "legal-order",
    "other",
)
#: Why a member confirms another's entry: its analysts reviewed the content and agree, or it
#: removed the same content from its own platform.
CONFIRM_REASONS: tuple[str, ...] = ("reviewed", "also-removed")
