"""Dashboard logins: the operator token, typed once, buys a signed session cookie.

A session cookie is `<expires_ms>.<id>.<mac>` where mac = HMAC-SHA256 over the first two parts
under a key drawn at random when the process starts, so a restart logs everyone out and no
cookie can be forged without the key. Sessions are also remembered here, so logging out ends
one at once rather than at its expiry. Each form carries a CSRF token bound to its session
(or, on the login form, to a short-lived signed nonce) on top of the cookie's SameSite=Strict.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

COOKIE_NAME = "hashmesh_session"
SESSION_MS = 8 * 3_600_000  # a working day
LOGIN_FORM_MS = 3_600_000
MAX_SESSIONS = 1_000


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in browser: its id and when it must log in again."""

    session_id: str
    expires_ms: int


class Sessions:
    """Issues, checks and ends sessions; every check is constant-time over the MACs."""

    def __init__(self, token: str, clock: Callable[[], int], lifetime_ms: int = SESSION_MS):
        self._token = token.encode()
        self._clock = clock
        self._lifetime_ms = lifetime_ms
        self._key = secrets.token_bytes(32)
        self._live: dict[str, int] = {}

    def _mac(self, *parts: str) -> str:
        message = "\n".join(parts).encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def token_matches(self, typed: str) -> bool:
        return hmac.compare_digest(typed.strip().encode(), self._token)

    def open(self) -> tuple[Session, str]:
        """A new session and the cookie value that carries it."""
        now = self._clock()
        self._forget_expired(now)
        if len(self._live) >= MAX_SESSIONS:  # drop the oldest rather than grow without bound
            del self._live[min(self._live, key=self._live.__getitem__)]
        session = Session(secrets.token_urlsafe(18), now + self._lifetime_ms)
        self._live[session.session_id] = session.expires_ms
        cookie = f"{session.expires_ms}.{session.session_id}"
        return session, f"{cookie}.{self._mac('session', cookie)}"

    def check(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None if it is forged, expired or logged out."""
        if not cookie or cookie.count(".") != 2:
            return None
        expires, session_id, mac = cookie.split(".")
        if not hmac.compare_digest(mac, self._mac("session", f"{expires}.{session_id}")):
            return None
        if not expires.isdigit() or int(expires) <= self._clock():
            return None
        if self._live.get(session_id) != int(expires):
            return None
        return Session(session_id, int(expires))

    def close(self, session: Session) -> None:
        self._live.pop(session.session_id, None)

    def csrf_token(self, session: Session) -> str:
        return self._mac("csrf", session.session_id)

    def csrf_ok(self, session: Session, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent, self.csrf_token(session))

    def login_nonce(self) -> str:
        """The CSRF token of the login form: a signed expiry, since there is no session yet."""
        expires = str(self._clock() + LOGIN_FORM_MS)
        return f"{expires}.{self._mac('login', expires)}"

    def login_nonce_ok(self, sent: str | None) -> bool:
        if not sent or sent.count(".") != 1:
            return False
        expires, mac = sent.split(".")
        if not hmac.compare_digest(mac, self._mac("login", expires)):
            return False
        return expires.isdigit() and int(expires) > self._clock()

    def _forget_expired(self, now: int) -> None:
        for session_id in [s for s, expires in self._live.items() if expires <= now]:
            del self._live[session_id]
