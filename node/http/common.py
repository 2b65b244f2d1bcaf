"""What the node's HTTP APIs share: translating our errors into HTTP statuses, reading a
bounded body in bounded time, query parameters, and msgpack and JSON bodies."""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from node.core import wire
from node.errors import (
    AuthError,
    BusyError,
    ConnectionLostError,
    ForbiddenError,
    IdempotencyKeyReusedError,
    NodeError,
    PeerError,
    RequestError,
    SlowRequestError,
    StoreError,
    TooLargeError,
)
from protocol.errors import ProtocolError

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MSGPACK = "application/msgpack"


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
    except ConnectionLostError:
        # No answer can reach the client; the connection guard (the peer API's) counts and
        # logs it once, as the failure of the client's address.
        raise
    except (NodeError, ProtocolError) as e:
        status = _status_of(e)
        log.info("%s %s refused (%d): %s", request.method, request.path, status, e)
        response = web.json_response({"error": type(e).__name__, "detail": str(e)}, status=status)
        if status == 503:
            response.headers["Retry-After"] = "1"
        if not request.content.is_eof():
            response.force_close()  # refused before its body was read: do not read the rest
        return response


def query_int(request: web.Request, name: str, default: int | None = None) -> int:
    """A non-negative integer query parameter; RequestError if it is missing (and has no
    default) or is not one."""
    raw = request.query.get(name)
    if raw is None:
        if default is None:
            raise RequestError(f"query parameter {name} is required")
        return default
    if not raw.isdigit() or len(raw) > 19:
        raise RequestError(f"{name} is a non-negative integer")
    return int(raw)


def msgpack_response(body: bytes) -> web.Response:
    return web.Response(body=body, content_type=MSGPACK)


def deflated_response(request: web.Request, body: bytes) -> web.Response:
    """A msgpack answer, deflated (RFC 9110 `deflate`: zlib format) when the asker accepts
    it and the body is large enough to gain: checkpoint vectors are text and base64, and
    deflate takes about 40 % off them."""
    accepted = request.headers.get("Accept-Encoding", "")
    if len(body) < wire.DEFLATE_MIN_BYTES or "deflate" not in accepted.lower():
        return msgpack_response(body)
    response = web.Response(body=zlib.compress(body), content_type=MSGPACK)
    response.headers["Content-Encoding"] = "deflate"
    return response


async def json_body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestError(f"body is not JSON: {e}") from e


async def read_body(request: web.Request, limit: int, timeout_s: float) -> bytes:
    """The request's body: TooLargeError beyond `limit` bytes (a declared length is checked
    before anything is read, a chunked body as it streams), SlowRequestError after
    `timeout_s` (a peer that trickles its body would hold a connection and memory for ever),
    ConnectionLostError if the client resets or closes the connection before it is whole."""
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
    except web.RequestPayloadError as e:
        if "content-encoding" in str(e).lower():  # a deflated body that does not inflate
            raise RequestError(f"{where}: the body does not inflate ({e.args[0]})") from e
        raise ConnectionLostError(
            f"connection lost before the body was whole ({type(e).__name__})"
        ) from e
    except ConnectionError as e:
        # aiohttp raises the reset as the socket did (ConnectionResetError), a close before
        # the declared length as a payload error.
        raise ConnectionLostError(
            f"connection lost before the body was whole ({type(e).__name__})"
        ) from e
    return b"".join(chunks)
