"""The node package's error hierarchy; boundaries translate lower errors into these."""

from __future__ import annotations


class NodeError(Exception):
    """Base of every error raised by the node package."""


class ConfigError(NodeError):
    """The node's configuration or key files are missing or invalid."""


class StoreError(NodeError):
    """The store failed (disk full, locked database, corruption)."""


class StoreConflictError(StoreError):
    """A write does not continue the stored log (it would duplicate or skip entries)."""


class StoreOutcomeUnknownError(StoreError):
    """A write's outcome is unknown: the store's writer ended before answering."""


class PeerError(NodeError):
    """A peer could not be reached or sent something we refuse; costs only that peer."""


class PeerRefusedError(PeerError):
    """A peer answered but refused to authenticate us (HTTP 401): it does not know our node key,
    as when the roster it holds no longer names us."""


class AuthError(NodeError):
    """A request is not authenticated: unknown member, bad signature, stale or replayed."""


class RequestError(NodeError):
    """An operator or peer request is malformed or out of bounds (HTTP 400/413)."""


class HashingError(NodeError):
    """A file could not be hashed (unreadable, or an image or video that fails to decode)."""


class SlowRequestError(RequestError):
    """A request body did not arrive in time (a slow or stalled sender)."""


class ConnectionLostError(RequestError):
    """The client reset or closed its connection before its request's body arrived whole:
    no answer can reach it (counted and logged as that client's failure, one line)."""


class ForbiddenError(NodeError):
    """An authenticated member asked for something its role does not allow (an auditor writing)."""


class TooLargeError(RequestError):
    """A request body is larger than its route accepts (HTTP 413)."""


class BusyError(NodeError):
    """The node cannot take the request now without weakening a check; retry later (HTTP 503)."""


class IdempotencyKeyReusedError(RequestError):
    """An idempotency key already used for a different request (HTTP 422)."""
