"""In-process node services over real SQLite stores, served on 127.0.0.1, for API tests."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from node.app.consortium import Consortium, build_consortium
from node.config import NodeConfig, read_roster
from node.core.listeners import Decodings, DurableRange
from node.core.service import NodeService
from node.credentials.key_files import load_key
from node.credentials.request_auth import RequestVerifier
from node.http.connection_guard import ConnectionGuard, GuardedSite
from node.http.operator_api import operator_app
from node.http.peer_api import peer_runner
from node.store.base import Store
from node.store.sqlite.store import SqliteStore


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Served:
    config: NodeConfig
    service: NodeService
    peer_url: str
    operator_url: str
    token: str
    guard: ConnectionGuard | None = None


@asynccontextmanager
async def served(
    config: NodeConfig, store: Store | None = None, verifier: RequestVerifier | None = None
) -> AsyncIterator[Served]:
    """A NodeService with both APIs listening on free loopback ports (no replication), on
    `store` (unopened; default a SQLite file in the member's directory); the peer API checks
    requests with `verifier` (default: the node's own)."""
    _, key = load_key(config.checkpoint_key_path)
    store = store or SqliteStore(config.directory / "data.db")
    await store.open()
    service = NodeService(config, store, key, now_ms)
    await service.start(read_roster(config))
    token = config.token_path.read_text().strip()
    peer, guard = peer_runner(service, verifier)
    runners = [peer, web.AppRunner(operator_app(service, token))]
    urls = []
    try:
        for runner in runners:
            await runner.setup()
            site = (
                GuardedSite(runner, "127.0.0.1", 0, guard)
                if runner is peer
                else web.TCPSite(runner, "127.0.0.1", 0)
            )
            await site.start()
            port = runner.addresses[0][1]
            urls.append(f"http://127.0.0.1:{port}")
        yield Served(config, service, urls[0], urls[1], token, guard)
    finally:
        for runner in runners:
            await runner.cleanup()
        await store.close()


def consortium(root: Path, n: int = 2) -> Consortium:
    return build_consortium(root, n, now_ms())


def durable(origin: str, start: int, end: int, source: str | None) -> DurableRange:
    """A range told to relay, which reads none of its entries."""
    return DurableRange(origin, start, end, source, Decodings.of([]))
