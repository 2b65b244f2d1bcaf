"""Admission and deadlines for the peer API's connections, below HTTP.

An outsider needs no key to open a connection, so what a connection may cost is bounded before
any request of it is parsed: at most `per_address` open connections from one source address and
`total` in all (a connection beyond them is answered 503 and closed at once), and a connection
must complete each request's headers within `head_timeout_s` of its opening or of the first
byte of a request after the previous one, or it is closed (408). A connection idle after a
request is closed quietly after `idle_timeout_s` (keep-alive: a peer link stays open between
sync rounds). aiohttp's HTTP protocol runs unchanged inside every admitted
connection; the guard's middleware, the peer app's outermost, says when a request is under way
(from its headers parsed to its response written), when no deadline runs.

A client that resets its connection mid-request (before its body is whole, or before its
answer is written) costs that client: the guard counts it (`resets`) and logs one warning line
without a traceback (repeats are rate-limited by the node's log set-up), and the request ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Middleware

from node.credentials.request_auth import HEADER_MEMBER
from node.errors import ConnectionLostError

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
ProtocolFactory = Callable[[], asyncio.Protocol]


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """What the peer API lets connections hold (node config: peer_max_connections...)."""

    per_address: int
    total: int
    head_timeout_s: float
    idle_timeout_s: float


def _answer(status: str, reason: str) -> bytes:
    body = reason.encode()
    head = f"HTTP/1.1 {status}\r\nConnection: close\r\nContent-Type: text/plain\r\n"
    if status.startswith("503"):
        head += "Retry-After: 1\r\n"
    return f"{head}Content-Length: {len(body)}\r\n\r\n".encode() + body


class ConnectionGuard:
    """Counts open connections by source address, refuses the excess, times out slow heads."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self._by_address: dict[str, int] = {}
        self._open: dict[asyncio.BaseTransport, _GuardedConnection] = {}
        #: Requests whose client reset the connection before the request ended.
        self.resets = 0

    def __len__(self) -> int:
        return len(self._open)

    def connections_from(self, address: str) -> int:
        return self._by_address.get(address, 0)

    def protocol_factory(self, make: ProtocolFactory) -> ProtocolFactory:
        """Wraps the HTTP server's protocol factory: every connection passes the guard."""
        return lambda: _GuardedConnection(self, make)

    def middleware(self) -> Middleware:
        """The peer app's outermost middleware: no deadline runs while a request is served.
        The response is written here, so that its end is the request's end."""

        @web.middleware
        async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
            connection = self._open.get(request.transport) if request.transport else None
            if connection is not None:
                connection.request_started()
            try:
                try:
                    response = await handler(request)
                except ConnectionLostError as e:
                    self._lost(request, str(e))
                    response = web.Response(status=400, text=str(e))
                    response.force_close()
                    return response  # aiohttp's write of it fails quietly: the client is gone
                try:
                    await response.prepare(request)
                    await response.write_eof()
                except ConnectionError as e:
                    self._lost(request, f"connection lost before the answer was written ({e})")
                return response
            finally:
                if connection is not None:
                    connection.request_finished()

        return guard

    def _lost(self, request: web.Request, why: str) -> None:
        self.resets += 1
        member = request.headers.get(HEADER_MEMBER, "?")[:64]
        log.warning(
            "peer API: %s %s from %s (member %s): %s",
            request.method,
            request.path,
            request.remote,
            member,
            why,
        )

    def _admit(
        self, address: str, transport: asyncio.BaseTransport, conn: _GuardedConnection
    ) -> str:
        """'' if the connection may stay, else why not."""
        if len(self._open) >= self.limits.total:
            return "too many connections to this node; retry later"
        if self._by_address.get(address, 0) >= self.limits.per_address:
            return "too many connections from your address; retry later"
        self._by_address[address] = self._by_address.get(address, 0) + 1
        self._open[transport] = conn
        return ""

    def _release(self, address: str, transport: asyncio.BaseTransport) -> None:
        if self._open.pop(transport, None) is None:
            return
        left = self._by_address[address] - 1
        if left:
            self._by_address[address] = left
        else:
            del self._by_address[address]


class _GuardedConnection(asyncio.Protocol):
    """One admitted connection: passes everything to its HTTP protocol, and closes the
    connection when no request's head is complete by the deadline."""

    def __init__(self, guard: ConnectionGuard, make: ProtocolFactory) -> None:
        self._guard = guard
        self._make = make
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._address = ""
        self._deadline: asyncio.TimerHandle | None = None
        self._in_request = False
        self._began = False  # bytes of a next request arrived since the last one ended

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, tuple) and peer else "?"
        refused = self._guard._admit(self._address, transport, self)
        if refused:
            transport.write(_answer("503 Service Unavailable", refused))
            transport.close()
            return
        self._inner = self._make()
        self._arm(self._guard.limits.head_timeout_s)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return
        if not self._in_request and not self._began:
            self._began = True
            self._arm(self._guard.limits.head_timeout_s)  # a request's head, from its start
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._transport is not None:
            self._guard._release(self._address, self._transport)
        if self._inner is not None:
            self._inner.connection_lost(exc)

    def request_started(self) -> None:
        self._in_request = True
        self._began = False
        self._disarm()

    def request_finished(self) -> None:
        self._in_request = False
        self._arm(self._guard.limits.idle_timeout_s)

    def _arm(self, timeout_s: float) -> None:
        self._disarm()
        loop = asyncio.get_running_loop()
        self._deadline = loop.call_later(timeout_s, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        transport = self._transport
        if self._in_request or transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size():
            transport.abort()  # a close would wait, unbounded, for a reader that does not read
            return
        if self._began:
            timeout = self._guard.limits.head_timeout_s
            transport.write(
                _answer("408 Request Timeout", f"request headers not received within {timeout} s")
            )
        transport.close()


class GuardedSite(web.TCPSite):
    """A TCP site whose connections pass a ConnectionGuard before aiohttp's protocol."""

    __slots__ = ("_guard",)

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, guard: ConnectionGuard
    ) -> None:
        super().__init__(runner, host, port)
        self._guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registers the site with its runner
        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._guard.protocol_factory(server), self._host, self._port, backlog=self._backlog
        )
