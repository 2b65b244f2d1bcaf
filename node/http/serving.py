"""Serving the node's HTTP apps on TCP: each for the time of an `async with`, cleaned up
(connections closed, shutdown hooks run) when it ends."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from aiohttp import web

from node.core.service import NodeService
from node.http.connection_guard import ConnectionGuard, GuardedSite
from node.http.peer_api import peer_runner


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[None]:
    """`app` served on host:port (the operator API, a match server)."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def serving_peers(
    service: NodeService, host: str, port: int
) -> AsyncIterator[ConnectionGuard]:
    """The peer API served on host:port, its connections passing its connection guard (given,
    for its counts)."""
    runner, guard = peer_runner(service)
    await runner.setup()
    try:
        await GuardedSite(runner, host, port, guard).start()
        yield guard
    finally:
        await runner.cleanup()
