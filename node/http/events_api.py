"""The operator API's pull stream over the event log (node/events/outbox.py):
- GET /v1/events?after=<id>&wait=<s>&limit=<n>: long poll; events with an id above `after`,
  waiting up to `wait` seconds (at most 60) for the first one; at most 1000 per answer. The
  answer also gives `oldest` (the first id still held: a cursor below `oldest - 1` missed
  events the retention dropped), `latest` (the newest id recorded) and `feed` (the event
  log's identity: if it changes, ids were numbered afresh and old cursors mean nothing).
- GET /v1/events/stream: server-sent events from `Last-Event-ID` (or ?after=), one SSE
  message per event (id, event kind, JSON data), with a keep-alive comment every 15 s.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from node.errors import RequestError
from node.events.outbox import Event, Outbox

log = logging.getLogger(__name__)

MAX_EVENTS = 1000
MAX_WAIT_S = 60.0
KEEPALIVE_S = 15.0


def _number(request: web.Request, name: str, default: float, most: float) -> float:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError as e:
        raise RequestError(f"{name} is a number") from e
    if not 0 <= value <= most:
        raise RequestError(f"{name} is between 0 and {most:g}")
    return value


def _cursor(raw: str | None, name: str) -> int:
    if raw is None or raw == "":
        return 0
    if not raw.isdigit() or len(raw) > 19:
        raise RequestError(f"{name} is an event id (a non-negative integer)")
    return int(raw)


def sse_message(event: Event) -> bytes:
    """One server-sent event; the JSON is on one line, so one `data:` field carries it."""
    return f"id: {event.id}\nevent: {event.kind}\ndata: {event.to_json()}\n\n".encode()


def events_routes(outbox: Outbox) -> list[web.RouteDef]:
    """The pull stream, for the operator app (behind its bearer token)."""

    async def poll(request: web.Request) -> web.Response:
        after = _cursor(request.query.get("after"), "after")
        wait = _number(request, "wait", 0.0, MAX_WAIT_S)
        limit = int(_number(request, "limit", MAX_EVENTS, MAX_EVENTS)) or MAX_EVENTS
        events = await outbox.wait_after(after, limit, wait)
        cursor = events[-1].id if events else after
        # Read after the events: retention only moves forward, so `after` >= oldest - 1 here
        # means nothing between `after` and the events answered was dropped.
        oldest, latest = await outbox.oldest_id(), await outbox.latest_id()
        return web.json_response(
            {
                "events": [e.body() for e in events],
                "cursor": cursor,
                "oldest": oldest,
                "latest": latest,
                "feed": outbox.feed_id,
            }
        )

    async def stream(request: web.Request) -> web.StreamResponse:
        header = request.headers.get("Last-Event-ID")
        after = _cursor(header if header is not None else request.query.get("after"), "cursor")
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",  # a proxy in front must not hold events back
            }
        )
        await response.prepare(request)
        try:
            while not outbox.stopping:
                events = await outbox.wait_after(after, MAX_EVENTS, KEEPALIVE_S)
                if not events:
                    if not outbox.stopping:
                        await response.write(b": keep-alive\n\n")
                    continue
                await response.write(b"".join(sse_message(e) for e in events))
                after = events[-1].id
        except ConnectionResetError:
            log.info("an event stream consumer went away at event %d", after)
        return response

    return [web.get("/v1/events", poll), web.get("/v1/events/stream", stream)]


def events_on_shutdown(outbox: Outbox) -> Callable[[web.Application], Any]:
    """An `app.on_shutdown` hook ending open long polls and streams, so shutdown is prompt."""

    async def shutdown(app: web.Application) -> None:
        outbox.stop_waiters()

    return shutdown
