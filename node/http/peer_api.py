"""The peer API (aiohttp): msgpack bodies, signed requests, for the other members' nodes.
Handlers are thin: parse, call NodeService, encode.

A peer request is authenticated from its headers before any of its body is read; the body is
then read within its route's limit and time, and must be the one the headers signed. A refusal
sent before the body was read closes the connection (after a short linger, so that the client
can read it) instead of reading the rest.
"""

from __future__ import annotations

from aiohttp import web

from node.config import NodeConfig
from node.core import wire
from node.core.service import NodeService
from node.credentials.request_auth import RequestVerifier
from node.errors import ForbiddenError, RequestError
from node.http.audit_api import AUDIT_PREFIX, audit_app, is_public
from node.http.common import (
    Handler,
    deflated_response,
    errors_middleware,
    msgpack_response,
    query_int,
    read_body,
)
from node.http.connection_guard import ConnectionGuard, ConnectionLimits
from node.http.evidence_api import evidence_routes
from protocol.checkpoint import parse_signed_checkpoint
from protocol.errors import DecodeError, RosterError

PEER_KEY = web.RequestKey("peer", str)
BODY_KEY = web.RequestKey("body", bytes)
#: How long a refused request's unread body is still taken (and dropped) before the
#: connection is closed: closing at once could reset it before the client reads the refusal.
LINGER_S = 2.0


def peer_limits(config: NodeConfig) -> ConnectionLimits:
    return ConnectionLimits(
        config.peer_max_connections_per_address,
        config.peer_max_connections,
        config.peer_header_timeout_s,
        config.peer_keepalive_s,
    )


def peer_runner(
    service: NodeService, verifier: RequestVerifier | None = None
) -> tuple[web.AppRunner, ConnectionGuard]:
    """The peer API's runner and the guard its site must use (connection_guard.GuardedSite)."""
    guard = ConnectionGuard(peer_limits(service.config))
    app = peer_app(service, guard, verifier)
    # aiohttp's own idle close comes after the guard's (which closes idle connections).
    idle = service.config.peer_keepalive_s + 1
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=idle, lingering_time=LINGER_S)
    return runner, guard


def peer_app(
    service: NodeService,
    guard: ConnectionGuard | None = None,
    verifier: RequestVerifier | None = None,
) -> web.Application:
    verifier = verifier or RequestVerifier(service.config.member_id)
    max_body = service.config.max_body_bytes
    body_limits = {("POST", "/v1/push"): max_body, ("POST", "/v1/roster"): max_body}

    def node_key(member_id: str) -> bytes | None:
        try:
            return service.rosters.roster.member(member_id).node_key
        except RosterError:
            return None

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if is_public(request):
            return await handler(
                request
            )  # signed data for outside auditors (node/http/audit_api.py)
        head = verifier.verify_head(
            request.headers, request.method, request.raw_path, service.clock(), node_key
        )
        limit = body_limits.get((request.method, request.path), 0)
        body = await read_body(request, limit, service.config.peer_timeout_s)
        verifier.verify_body(head, body)
        request[PEER_KEY] = head.member
        request[BODY_KEY] = body
        return await handler(request)

    async def rosters(request: web.Request) -> web.Response:
        return msgpack_response(
            wire.encode_rosters(service.rosters.after(query_int(request, "after", 0)))
        )

    async def offer_roster(request: web.Request) -> web.Response:
        require_writer(request)
        accepted = await service.rosters.offer(request[BODY_KEY])
        return msgpack_response(
            wire.encode_push_result(
                wire.PushResult("accepted" if accepted else "known", service.rosters.roster.version)
            )
        )

    async def checkpoints(request: web.Request) -> web.Response:
        # `known`: the checkpoints the asker already has from us (as bytes) are left out, so
        # a sync round carries only what changed (docs/protocol.md, GET /v1/checkpoints).
        try:
            known = wire.decode_known(request.query.get("known", ""))
        except DecodeError as e:
            raise RequestError(str(e)) from e
        vector = wire.without_known(service.checkpoint_vector(), known)
        return deflated_response(request, wire.encode_vector(vector))

    async def entries(request: web.Request) -> web.Response:
        origin = request.query.get("log", "")
        page = await service.proofs.entries_page(
            origin,
            query_int(request, "start"),
            query_int(request, "limit", service.config.page_size),
        )
        return msgpack_response(wire.encode_page(page))

    async def consistency(request: web.Request) -> web.Response:
        proof = await service.proofs.consistency(
            request.query.get("log", ""), query_int(request, "old"), query_int(request, "new")
        )
        return msgpack_response(wire.encode_proof(proof))

    def require_writer(request: web.Request) -> None:
        member = service.rosters.roster.member(request[PEER_KEY])
        if not member.writes:
            raise ForbiddenError(f"{member.member_id} is an auditor: its access is read-only")

    async def push(request: web.Request) -> web.Response:
        require_writer(request)
        body = wire.decode_push(request[BODY_KEY], max_body, service.config.page_size)
        result = await service.peers.ingest(
            body.origin, body.checkpoint, body.start, body.entries, (), request[PEER_KEY]
        )
        if result.status == "gap":
            # We lack entries before those pushed. If they fit in one push the pusher sends
            # them next (node/replication); else we fetch that log from it now, not at the
            # next sync round.
            size = parse_signed_checkpoint(body.checkpoint).checkpoint.size
            if size - result.size > service.config.page_size:
                service.request_catch_up(body.origin, request[PEER_KEY], size)
        return msgpack_response(
            wire.encode_push_result(wire.PushResult(result.status, result.size))
        )

    first = [guard.middleware()] if guard is not None else []
    app = web.Application(
        middlewares=[*first, errors_middleware, authenticate], client_max_size=max_body
    )
    app.on_response_prepare.append(_short_server_header)
    app.add_routes(evidence_routes(service))
    app.add_routes(
        [
            web.get("/v1/roster", rosters),
            web.post("/v1/roster", offer_roster),
            web.get("/v1/checkpoints", checkpoints),
            web.get("/v1/entries", entries),
            web.get("/v1/consistency", consistency),
            web.post("/v1/push", push),
        ]
    )
    app.add_subapp(AUDIT_PREFIX, audit_app(service))
    return app


async def _short_server_header(request: web.Request, response: web.StreamResponse) -> None:
    """Name the server in 8 bytes, not aiohttp's "Python/3.x aiohttp/3.y.z": every answer to a
    push carries it, and an answer is most of what a member pushing a burst receives."""
    response.headers["Server"] = "hashmesh"
