"""The operator API (aiohttp): JSON bodies behind the node's bearer token, for the member's
own platform and operators. Handlers are thin: parse, call NodeService, shape the answer.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from node.core.service import NodeService
from node.core.status import node_status
from node.credentials.request_auth import check_bearer
from node.errors import RequestError
from node.events.outbox import Outbox
from node.formats.json_views import idempotency_of, parse_add, ref_json
from node.http.common import MSGPACK, Handler, errors_middleware, json_body, query_int
from node.http.dashboard import mount_dashboard
from node.http.events_api import events_on_shutdown, events_routes
from node.http.export_api import export_routes
from node.http.hash_api import hash_routes
from node.http.match_api import match_routes
from node.http.metrics_api import Exposition, metrics_routes
from protocol.entries import EntryRef
from protocol.tlogproof import format_tlog_proof

MAX_LOOKUP = 10_000


class NodeMetricsHooks(Exposition, Protocol):
    """What the operator API needs of the node's metrics (node/app/metrics.py)."""

    def lookups(self, n: int, found: int = 0) -> None: ...


def operator_app(
    service: NodeService,
    token: str,
    peer_status: Callable[[], dict[str, dict[str, object]]] | None = None,
    on_lookup: Callable[[int, int], None] | None = None,
) -> web.Application:
    @web.middleware
    async def bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
        check_bearer(request.headers.get("Authorization"), token)
        return await handler(request)

    async def submit(request: web.Request) -> web.Response:
        body = await json_body(request)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list) or not 0 < len(items) <= MAX_LOOKUP:
            raise RequestError(f"items is a list of 1..{MAX_LOOKUP} hashes")
        keyed = idempotency_of(request.headers.get("Idempotency-Key"), items)
        refs = await service.submit([parse_add(item, service.clock()) for item in items], keyed)
        return web.json_response({"entries": [ref_json(r) for r in refs]})

    async def retract(request: web.Request) -> web.Response:
        body = await json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("index"), int):
            raise RequestError("retract needs the index of our entry")
        done = await service.retract(body["index"], str(body.get("reason", "")))
        return web.json_response({"entry": ref_json(done.ref), "appended": done.appended})

    def about_an_entry(
        kind: str, act: Callable[[EntryRef, str, str], Awaitable[EntryRef]]
    ) -> Callable[[web.Request], Awaitable[web.Response]]:
        """POST /v1/dispute and /v1/confirm: {log, index, reason_code, text} of another
        member's entry, appended to our log."""

        async def handler(request: web.Request) -> web.Response:
            body = await json_body(request)
            if not isinstance(body, dict) or not isinstance(body.get("index"), int):
                raise RequestError(f"{kind} needs log, index and reason_code")
            target = EntryRef(str(body.get("log", "")), body["index"])
            ref = await act(target, str(body.get("reason_code", "")), str(body.get("text", "")))
            return web.json_response({"entry": ref_json(ref)})

        return handler

    dispute = about_an_entry("dispute", service.dispute)
    confirm = about_an_entry("confirm", service.confirm)

    async def status(request: web.Request) -> web.Response:
        body = node_status(service)
        body["peers"] = peer_status() if peer_status else {}
        return web.json_response(body)

    async def proof(request: web.Request) -> web.Response:
        origin = request.query.get("log", "")
        index = query_int(request, "index")
        size = query_int(request, "size") if "size" in request.query else None
        signed, path = await service.proofs.inclusion(origin, index, size)
        entry = await service.store.entries(origin, index, index + 1)
        text = format_tlog_proof(index, path, signed.raw)
        return web.json_response(
            {"log": origin, "index": index, "entry": entry[0].hex(), "tlog_proof": text.decode()}
        )

    async def roster_get(request: web.Request) -> web.Response:
        return web.Response(body=service.rosters.chain[-1], content_type=MSGPACK)

    async def sync(request: web.Request) -> web.Response:
        service.request_sync()
        return web.json_response({"requested": True})

    async def rotate_key(request: web.Request) -> web.Response:
        after_size, public = await service.begin_key_rotation()
        return web.json_response(
            {
                "member_id": service.config.member_id,
                "origin": service.origin,
                "after_size": after_size,
                "new_key": base64.b64encode(public).decode(),
            }
        )

    async def roster_chain(request: web.Request) -> web.Response:
        return web.json_response({"rosters": [raw.hex() for raw in service.rosters.chain]})

    async def roster_post(request: web.Request) -> web.Response:
        accepted = await service.rosters.offer(await request.read())
        return web.json_response({"accepted": accepted, "version": service.rosters.roster.version})

    app = web.Application(
        middlewares=[errors_middleware, bearer], client_max_size=service.config.max_body_bytes
    )
    app.add_routes(match_routes(service, on_lookup, service.review_queue.offer))
    app.add_routes(export_routes(service))
    tmp = service.config.data_dir / "uploads"
    queue = service.review_queue
    app.add_routes(
        hash_routes(service, tmp, service.config.max_upload_bytes, lambda v: queue.offer([v]))
    )
    app.add_routes(
        [
            web.post("/v1/submit", submit),
            web.post("/v1/retract", retract),
            web.post("/v1/dispute", dispute),
            web.post("/v1/confirm", confirm),
            web.get("/v1/status", status),
            web.get("/v1/proof", proof),
            web.get("/v1/roster", roster_get),
            web.get("/v1/roster/chain", roster_chain),
            web.post("/v1/keys/rotate", rotate_key),
            web.post("/v1/sync", sync),
            web.post("/v1/roster", roster_post),
        ]
    )
    return app


def node_operator_app(
    service: NodeService,
    token: str,
    peer_status: Callable[[], dict[str, dict[str, object]]],
    metrics: NodeMetricsHooks,
    outbox: Outbox,
) -> web.Application:
    """The operator API as a running node serves it: `operator_app`, /metrics, the event
    feed and the dashboard (docs/operator-api.md lists its routes; tests/docs checks them)."""
    app = operator_app(service, token, peer_status, on_lookup=metrics.lookups)
    app.add_routes(metrics_routes(metrics) + events_routes(outbox))
    app.on_shutdown.append(events_on_shutdown(outbox))
    mount_dashboard(app, service, token, peer_status, events=outbox)
    return app
