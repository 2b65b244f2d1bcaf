"""The public auditor API, on the peer port under /v1/audit/: read-only, with no token or
signed request, because everything it serves is already signed and meant to be checked
offline: the roster chain, any stored checkpoint, inclusion proofs (without the entry: the
hash list itself stays with the members; an auditor gets an entry inside a provenance bundle)
and consistency proofs. Requests are GETs with no body, answers are bounded, and at most
PUBLIC_CONCURRENCY are served at once (503 beyond), so an outsider cannot tie the node up.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable

from aiohttp import web

from node.core.service import NodeService
from node.errors import RequestError
from protocol.roster_members import MAX_SIZE
from protocol.tlogproof import format_tlog_proof

AUDIT_PREFIX = "/v1/audit/"
PUBLIC_CONCURRENCY = 8
#: At most this many checkpoint sizes in one answer; ask again with `after`.
MAX_SIZES = 1000
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_public(request: web.Request) -> bool:
    """Whether the request is for the public auditor API (which needs no authentication)."""
    return request.path.startswith(AUDIT_PREFIX) and request.method in ("GET", "HEAD")


def _int(request: web.Request, name: str, default: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise RequestError(f"query parameter {name} is required")
        return default
    if not raw.isdigit() or len(raw) > 19:
        raise RequestError(f"{name} is a non-negative integer")
    return int(raw)


def _optional_int(request: web.Request, name: str) -> int | None:
    return _int(request, name) if name in request.query else None


def audit_app(service: NodeService) -> web.Application:
    """The sub-application mounted at AUDIT_PREFIX of the peer server."""
    slots = asyncio.Semaphore(PUBLIC_CONCURRENCY)

    @web.middleware
    async def bounded(request: web.Request, handler: Handler) -> web.StreamResponse:
        if slots.locked():
            return web.json_response(
                {"error": "BusyError", "detail": "too many auditor requests; retry later"},
                status=503,
                headers={"Retry-After": "1"},
            )
        async with slots, asyncio.timeout(service.config.peer_timeout_s):
            return await handler(request)

    async def rosters(request: web.Request) -> web.Response:
        chain = service.rosters.chain
        return web.json_response({"rosters": [base64.b64encode(r).decode() for r in chain]})

    async def checkpoints(request: web.Request) -> web.Response:
        origin = request.query.get("log", "")
        after = _int(request, "after", 0)
        rows = await service.store.checkpoint_range(origin, after + 1, MAX_SIZE, MAX_SIZES + 1)
        sizes = [n for n, _ in rows]
        more = len(sizes) > MAX_SIZES
        return web.json_response({"log": origin, "sizes": sizes[:MAX_SIZES], "more": more})

    async def checkpoint(request: web.Request) -> web.Response:
        origin = request.query.get("log", "")
        size = _optional_int(request, "size")
        served = service.signed_checkpoint(origin)
        if served is None:
            raise RequestError(f"no checkpoint of {origin!r} here")
        if size is None or size == served.checkpoint.size:
            return web.Response(body=served.raw, content_type="text/plain")
        for _, raw in await service.store.checkpoint_range(origin, size, size, 1):
            return web.Response(body=raw, content_type="text/plain")
        raise RequestError(f"no checkpoint of {origin!r} at size {size} is stored here")

    async def proof(request: web.Request) -> web.Response:
        origin = request.query.get("log", "")
        index = _int(request, "index")
        signed, path = await service.proofs.inclusion(origin, index, _optional_int(request, "size"))
        text = format_tlog_proof(index, path, signed.raw)
        return web.json_response(
            {
                "log": origin,
                "index": index,
                "size": signed.checkpoint.size,
                "tlog_proof": text.decode(),
            }
        )

    async def consistency(request: web.Request) -> web.Response:
        origin = request.query.get("log", "")
        old, new = _int(request, "old"), _int(request, "new")
        path = await service.proofs.consistency(origin, old, new)
        return web.json_response(
            {
                "log": origin,
                "old": old,
                "new": new,
                "proof": [base64.b64encode(h).decode() for h in path],
            }
        )

    app = web.Application(middlewares=[bounded], client_max_size=1024)
    app.add_routes(
        [
            web.get("/rosters", rosters),
            web.get("/checkpoints", checkpoints),
            web.get("/checkpoint", checkpoint),
            web.get("/proof", proof),
            web.get("/consistency", consistency),
        ]
    )
    return app
