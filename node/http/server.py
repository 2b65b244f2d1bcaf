"""The node's HTTP surface (aiohttp): the peer API (msgpack, signed requests) and the
operator API (JSON, bearer token). Handlers are thin: parse, call NodeService, encode.

A peer request is authenticated from its headers before any of its body is read; the body is
then read within its route's limit and time, and must be the one the headers signed. A refusal
sent before the body was read closes the connection (after a short linger, so that the client
can read it) instead of reading the rest.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from node.config import NodeConfig
from node.core import wire
from node.core.service import NodeService
from node.core.status import node_status
from node.credentials.request_auth import RequestVerifier, check_bearer
from node.errors import (
    AuthError,
    BusyError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    NodeError,
    PeerError,
    RequestError,
    SlowRequestError,
    StoreError,
    TooLargeError,
)
from node.formats.json_views import idempotency_of, parse_add, ref_json
from node.http.audit_api import AUDIT_PREFIX, audit_app, is_public
from node.http.connection_guard import ConnectionGuard, ConnectionLimits
from node.http.evidence_api import evidence_routes
from node.http.export_api import export_routes
from node.http.hash_api import hash_routes
from node.http.match_api import match_routes
from protocol.entries import EntryRef
from protocol.errors import ProtocolError, RosterError
from protocol.tlogproof import format_tlog_proof

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MSGPACK = "application/msgpack"
PEER_KEY = web.RequestKey("peer", str)
BODY_KEY = web.RequestKey("body", bytes)
MAX_LOOKUP = 10_000
#: How long a refused request's unread body is still taken (and dropped) before the
#: connection is closed: closing at once could reset it before the client reads the refusal.
LINGER_S = 2.0


def _status_of(e: Exception) -> int:
    if isinstance(e, AuthError):
        return 401
    if isinstance(e, SlowRequestError):
        return 408
    if isinstance(e, TooLargeError):
        return 413
    if isinstance(e, BusyError):
        return 503
    if isinstance(e, ForbiddenError):
        return 403
    if isinstance(e, IdempotencyKeyReusedError):
        return 422
    if isinstance(e, StoreError):
        return 503
    if isinstance(e, PeerError) and "no member" in str(e):
        return 404
    return 400


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Translate our errors into HTTP statuses with a clear one-line reason."""
    try:
        return await handler(request)
    except (NodeError, ProtocolError) as e:
        status = _status_of(e)
        log.info("%s %s refused (%d): %s", request.method, request.path, status, e)
        response = web.json_response({"error": type(e).__name__, "detail": str(e)}, status=status)
        if status == 503:
            response.headers["Retry-After"] = "1"
        if not request.content.is_eof():
            response.force_close()  # refused before its body was read: do not read the rest
        return response


def _int(request: web.Request, name: str, default: int | None = None) -> int:
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise RequestError(f"query parameter {name} is required")
        return default
    if not raw.isdigit() or len(raw) > 19:
        raise RequestError(f"{name} is a non-negative integer")
    return int(raw)


def _msgpack(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=MSGPACK)


async def _read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The request's body: TooLargeError beyond `limit` bytes (a declared length is checked
    before anything is read, a chunked body as it streams), SlowRequestError after
    `timeout_s` (a peer that trickles its body would hold a connection and memory for ever)."""
    where = f"{request.method} {request.path}"
    declared = request.content_length
    if declared is not None and declared > limit:
        raise TooLargeError(f"{where} takes a body of at most {limit} bytes, not {declared}")
    chunks: list[bytes] = []
    total = 0
    try:
        async with asyncio.timeout(timeout_s):
            async for chunk in request.content.iter_any():
                total += len(chunk)
                if total > limit:
                    raise TooLargeError(f"{where} takes a body of at most {limit} bytes")
                chunks.append(chunk)
    except TimeoutError as e:
        raise SlowRequestError(f"request body not received within {timeout_s} s") from e
    return b"".join(chunks)


# The peer API.


def peer_limits(config: NodeConfig) -> ConnectionLimits:
    return ConnectionLimits(
        config.peer_max_connections_per_address,
        config.peer_max_connections,
        config.peer_header_timeout_s,
    )


def peer_runner(
    service: NodeService, verifier: RequestVerifier | None = None
) -> tuple[web.AppRunner, ConnectionGuard]:
    """The peer API's runner and the guard its site must use (connection_guard.GuardedSite)."""
    guard = ConnectionGuard(peer_limits(service.config))
    app = peer_app(service, guard, verifier)
    timeout = service.config.peer_header_timeout_s
    runner = web.AppRunner(app, access_log=None, keepalive_timeout=timeout, lingering_time=LINGER_S)
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
        body = await _read_body(request, limit, service.config.peer_timeout_s)
        verifier.verify_body(head, body)
        request[PEER_KEY] = head.member
        request[BODY_KEY] = body
        return await handler(request)

    async def rosters(request: web.Request) -> web.Response:
        return _msgpack(wire.encode_rosters(service.rosters.after(_int(request, "after", 0))))

    async def offer_roster(request: web.Request) -> web.Response:
        require_writer(request)
        accepted = await service.rosters.offer(request[BODY_KEY])
        return _msgpack(
            wire.encode_push_result(
                wire.PushResult("accepted" if accepted else "known", service.rosters.roster.version)
            )
        )

    async def checkpoints(request: web.Request) -> web.Response:
        return _msgpack(wire.encode_vector(service.checkpoint_vector()))

    async def entries(request: web.Request) -> web.Response:
        origin = request.query.get("log", "")
        page = await service.entries_page(
            origin, _int(request, "start"), _int(request, "limit", service.config.page_size)
        )
        return _msgpack(wire.encode_page(page))

    async def consistency(request: web.Request) -> web.Response:
        proof = await service.consistency(
            request.query.get("log", ""), _int(request, "old"), _int(request, "new")
        )
        return _msgpack(wire.encode_proof(proof))

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
            service.request_sync()  # we are behind on this log: pull it now, not at the next tick
        return _msgpack(wire.encode_push_result(wire.PushResult(result.status, result.size)))

    first = [guard.middleware()] if guard is not None else []
    app = web.Application(
        middlewares=[*first, errors_middleware, authenticate], client_max_size=max_body
    )
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


# The operator API.


async def _json(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestError(f"body is not JSON: {e}") from e


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
        body = await _json(request)
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list) or not 0 < len(items) <= MAX_LOOKUP:
            raise RequestError(f"items is a list of 1..{MAX_LOOKUP} hashes")
        keyed = idempotency_of(request.headers.get("Idempotency-Key"), items)
        refs = await service.submit([parse_add(item, service.clock()) for item in items], keyed)
        return web.json_response({"entries": [ref_json(r) for r in refs]})

    async def retract(request: web.Request) -> web.Response:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("index"), int):
            raise RequestError("retract needs the index of our entry")
        ref = await service.retract(body["index"], str(body.get("reason", "")))
        return web.json_response({"entry": ref_json(ref)})

    async def dispute(request: web.Request) -> web.Response:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("index"), int):
            raise RequestError("dispute needs log, index and reason_code")
        target = EntryRef(str(body.get("log", "")), body["index"])
        ref = await service.dispute(
            target, str(body.get("reason_code", "")), str(body.get("text", ""))
        )
        return web.json_response({"entry": ref_json(ref)})

    async def confirm(request: web.Request) -> web.Response:
        body = await _json(request)
        if not isinstance(body, dict) or not isinstance(body.get("index"), int):
            raise RequestError("confirm needs log, index and reason_code")
        target = EntryRef(str(body.get("log", "")), body["index"])
        ref = await service.confirm(
            target, str(body.get("reason_code", "")), str(body.get("text", ""))
        )
        return web.json_response({"entry": ref_json(ref)})

    async def status(request: web.Request) -> web.Response:
        body = node_status(service)
        body["peers"] = peer_status() if peer_status else {}
        return web.json_response(body)

    async def proof(request: web.Request) -> web.Response:
        origin = request.query.get("log", "")
        index = _int(request, "index")
        size = _int(request, "size") if "size" in request.query else None
        signed, path = await service.inclusion(origin, index, size)
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
