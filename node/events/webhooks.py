"""Webhooks: POST every recorded event to the platform's URL, signed, until it is acknowledged.

`WebhookSender.run` takes events from the outbox's delivery queue (node/events/outbox.py) in id
order and POSTs each as one JSON object, with
  X-Hashmesh-Event-Id: <id>
  X-Hashmesh-Signature: sha256=<hex HMAC-SHA256 of the exact body, keyed by the shared secret>
An event leaves the queue only after a 2xx answer; on a network error, a timeout or any other
status the sender waits (exponential backoff, capped) and tries the same event again, so the
platform sees every event at least once and in order (it deduplicates by id).

Like node/replication/peer_client.py this module is an HTTP client, so it uses aiohttp's client; one
ClientSession lives as long as `run`, which the caller's TaskGroup cancels on shutdown.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable
from pathlib import Path

import aiohttp

from node.credentials.secret_files import read_secret
from node.errors import ConfigError, NodeError, StoreError
from node.events.outbox import Event, Outbox

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hashmesh-Signature"
EVENT_ID_HEADER = "X-Hashmesh-Event-Id"
#: How many queued events are read from the outbox at a time.
QUEUE_PAGE = 100
#: The sender re-reads the queue at least this often, even if no wake-up came.
QUEUE_POLL_S = 30.0


class WebhookError(NodeError):
    """The webhook endpoint did not acknowledge an event (unreachable, timeout, non-2xx)."""


def sign_body(secret: bytes, body: bytes) -> str:
    """The X-Hashmesh-Signature value of `body`."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, body: bytes, header: str | None) -> bool:
    """What a receiver does: compare the header with its own HMAC, in constant time."""
    return header is not None and hmac.compare_digest(sign_body(secret, body), header)


def load_webhook_secret(path: Path) -> bytes:
    """The shared secret from its file (kept like a key: mode 0600, never logged)."""
    secret = read_secret(path)
    if len(secret) < 16:
        raise ConfigError(f"the webhook secret in {path} is shorter than 16 characters")
    return secret.encode()


class WebhookSender:
    """Delivers the outbox's queue to one URL, in order, at least once."""

    def __init__(
        self,
        outbox: Outbox,
        url: str,
        secret: bytes,
        max_backoff_s: float = 300.0,
        timeout_s: float = 10.0,
        base_backoff_s: float = 1.0,
        on_result: Callable[[bool, str], None] | None = None,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"the webhook URL {url!r} is not http(s)")
        self._outbox = outbox
        self._url = url
        self._secret = secret
        self._max_backoff_s = max_backoff_s
        self._base_backoff_s = min(base_backoff_s, max_backoff_s)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._on_result = on_result
        self.delivered = 0
        self.failures = 0

    async def run(self) -> None:
        """Deliver queued events until cancelled."""
        async with aiohttp.ClientSession(timeout=self._timeout) as session:
            while True:
                try:
                    queued = await self._outbox.wait_pending(QUEUE_PAGE, QUEUE_POLL_S)
                except StoreError as e:
                    log.error("webhook outbox unreadable: %s", e)
                    await asyncio.sleep(self._max_backoff_s)
                    continue
                for event in queued:
                    await self._deliver(session, event)

    async def _deliver(self, session: aiohttp.ClientSession, event: Event) -> None:
        """POST one event until a 2xx, then take it off the queue."""
        body = event.to_json().encode()
        headers = {
            "Content-Type": "application/json",
            EVENT_ID_HEADER: str(event.id),
            SIGNATURE_HEADER: sign_body(self._secret, body),
        }
        backoff = self._base_backoff_s
        while True:
            try:
                await self._post(session, body, headers)
                await self._outbox.acknowledge(event.id)
            except (WebhookError, StoreError) as e:
                self.failures += 1
                self._report(False, _reason(e))
                log.warning(
                    "webhook event %d not delivered (%s); again in %.1f s",
                    event.id,
                    e,
                    backoff,
                    extra={"event_id": event.id},
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            self.delivered += 1
            self._report(True, "")
            return

    async def _post(
        self, session: aiohttp.ClientSession, body: bytes, headers: dict[str, str]
    ) -> None:
        try:
            async with session.post(self._url, data=body, headers=headers) as response:
                await response.read()
                if not 200 <= response.status < 300:
                    raise WebhookError(f"HTTP {response.status}")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise WebhookError(f"{type(e).__name__}: {e}") from e

    def _report(self, ok: bool, reason: str) -> None:
        if self._on_result is not None:
            self._on_result(ok, reason)


def _reason(e: Exception) -> str:
    """A bounded metrics label: the HTTP status class, or the kind of failure."""
    text = str(e)
    if text.startswith("HTTP "):
        return f"http_{text[5]}xx"
    if isinstance(e, StoreError):
        return "outbox"
    return "unreachable"
