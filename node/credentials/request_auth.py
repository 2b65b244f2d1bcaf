"""Authentication of peer requests (signed with the member's node key) and operator tokens.

A peer request carries five headers: the sending member's id, a timestamp (ms), a random
nonce, the hex SHA-256 of the body and an Ed25519 signature by the member's node key (as named
in the roster) over

    hashmesh-request-v1 \\n member \\n recipient \\n METHOD \\n path?query \\n timestamp \\n
    nonce \\n hex(SHA-256(body))

The digest travels in a header so that the request is authenticated from its headers alone,
before any of its body is read (`verify_head`); the body read afterwards must then hash to
the signed digest (`verify_body`). Binding the recipient stops a request meant for one node
being replayed to another; the timestamp window and the nonce cache stop replays to the same
node. Anything else is an AuthError (HTTP 401). A nonce cache full of nonces still inside
their window refuses new requests (BusyError, HTTP 503) rather than forget one and let its
request be replayed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from node.errors import AuthError, BusyError
from protocol.signing import SigningKey, verify

HEADER_MEMBER = "X-Hashmesh-Member"
HEADER_TIMESTAMP = "X-Hashmesh-Timestamp"
HEADER_NONCE = "X-Hashmesh-Nonce"
HEADER_SIGNATURE = "X-Hashmesh-Signature"
HEADER_DIGEST = "X-Hashmesh-Content-SHA256"
MAX_SKEW_MS = 60_000
NONCE_BYTES = 16
MAX_NONCES = 200_000


def request_message(
    member: str, recipient: str, method: str, path_qs: str, body: bytes, now_ms: int, nonce: str
) -> bytes:
    return _message(
        member, recipient, method, path_qs, hashlib.sha256(body).hexdigest(), now_ms, nonce
    )


def _message(
    member: str, recipient: str, method: str, path_qs: str, digest: str, now_ms: int, nonce: str
) -> bytes:
    fields = ["hashmesh-request-v1", member, recipient, method.upper(), path_qs]
    fields += [str(now_ms), nonce, digest]
    return "\n".join(fields).encode()


def sign_request(
    key: SigningKey,
    member: str,
    recipient: str,
    method: str,
    path_qs: str,
    body: bytes,
    now_ms: int,
    nonce: bytes,
) -> dict[str, str]:
    """The headers that authenticate one request from `member` to `recipient`."""
    nonce_text = nonce.hex()
    message = request_message(member, recipient, method, path_qs, body, now_ms, nonce_text)
    return {
        HEADER_MEMBER: member,
        HEADER_TIMESTAMP: str(now_ms),
        HEADER_NONCE: nonce_text,
        HEADER_DIGEST: hashlib.sha256(body).hexdigest(),
        HEADER_SIGNATURE: base64.b64encode(key.sign(message)).decode(),
    }


class NonceCache:
    """Nonces seen within the timestamp window, per member; bounded in size.

    Only nonces older than the window are forgotten: forgetting a younger one would let its
    request be replayed, so a full cache refuses new nonces (BusyError) until some expire.
    """

    def __init__(self, window_ms: int = 2 * MAX_SKEW_MS, capacity: int = MAX_NONCES) -> None:
        self._window_ms = window_ms
        self._capacity = capacity
        self._seen: OrderedDict[tuple[str, str], int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, member: str, nonce: str, now_ms: int) -> None:
        while self._seen:
            key, seen_ms = next(iter(self._seen.items()))
            if seen_ms > now_ms - self._window_ms:
                break
            del self._seen[key]
        if (member, nonce) in self._seen:
            raise AuthError("replayed request (nonce seen before)")
        if len(self._seen) >= self._capacity:
            raise BusyError("replay cache full, retry")
        self._seen[(member, nonce)] = now_ms


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A request whose headers are authenticated: its member and the body digest it signed."""

    member: str
    body_digest: str


class RequestVerifier:
    """Checks signed peer requests addressed to `recipient` (our member id)."""

    def __init__(
        self, recipient: str, max_skew_ms: int = MAX_SKEW_MS, max_nonces: int = MAX_NONCES
    ) -> None:
        self._recipient = recipient
        self._max_skew_ms = max_skew_ms
        self._nonces = NonceCache(2 * max_skew_ms, max_nonces)

    def verify_head(
        self,
        headers: Mapping[str, str],
        method: str,
        path_qs: str,
        now_ms: int,
        node_key: Callable[[str], bytes | None],
    ) -> SignedHead:
        """Authenticate a request from its headers alone (the body is not needed, and should
        not have been read yet); AuthError, or BusyError if the nonce cache is full."""
        member = headers.get(HEADER_MEMBER)
        stamp = headers.get(HEADER_TIMESTAMP, "")
        nonce = headers.get(HEADER_NONCE, "")
        digest = headers.get(HEADER_DIGEST, "")
        signature = headers.get(HEADER_SIGNATURE, "")
        if not member:
            raise AuthError("unauthenticated request: no member header")
        public = node_key(member)
        if public is None:
            raise AuthError(f"unknown member {member!r}")
        if not stamp.isdigit() or len(stamp) > 16:
            raise AuthError("bad timestamp header")
        if abs(int(stamp) - now_ms) > self._max_skew_ms:
            raise AuthError("request timestamp outside the allowed clock skew")
        if not _is_hex(nonce, NONCE_BYTES):
            raise AuthError("bad nonce header")
        if not _is_hex(digest, 32):
            raise AuthError(f"bad or missing body digest header ({HEADER_DIGEST})")
        try:
            sig = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError) as e:
            raise AuthError("bad signature header") from e
        message = _message(member, self._recipient, method, path_qs, digest, int(stamp), nonce)
        if not verify(public, message, sig):
            raise AuthError(f"bad request signature from {member!r}")
        # Taken now, before the body is read: a replayed request costs no body read either.
        self._nonces.check_and_add(member, nonce, now_ms)
        return SignedHead(member, digest)

    def verify_body(self, head: SignedHead, body: bytes) -> None:
        """AuthError unless `body` is the one the request's signature covers."""
        if not hmac.compare_digest(hashlib.sha256(body).hexdigest(), head.body_digest):
            raise AuthError(f"the body from {head.member!r} does not match its signed digest")


def _is_hex(text: str, size: int) -> bool:
    return len(text) == 2 * size and all(c in "0123456789abcdef" for c in text)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def check_bearer(header: str | None, token: str) -> None:
    """Constant-time check of an `Authorization: Bearer <token>` header."""
    if not header or not header.startswith("Bearer "):
        raise AuthError("operator request without a bearer token")
    if not hmac.compare_digest(header[len("Bearer ") :].encode(), token.encode()):
        raise AuthError("wrong operator token")
