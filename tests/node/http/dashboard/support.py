"""A real node in this process for dashboard tests: SQLite store, both APIs on 127.0.0.1 at
the ports its roster names, the dashboard mounted on the operator server, and (optionally)
replication with the other members, as node/app/runner.py wires them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from node.app.consortium import Consortium, build_consortium
from node.app.runner import load_keys
from node.config import NodeConfig, read_roster
from node.core.service import NodeService
from node.http.dashboard import mount_dashboard
from node.http.dashboard.pages import EventSource
from node.http.operator_api import operator_app
from node.http.peer_api import peer_app
from node.replication.peer_client import PeerClient
from node.replication.replicator import Replicator
from node.store.sqlite.store import SqliteStore


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass
class Node:
    config: NodeConfig
    service: NodeService
    replicator: Replicator | None
    token: str

    @property
    def ui(self) -> str:
        return f"{self.config.operator_url}/ui/"


def consortium(root: Path, n: int, **settings: Any) -> Consortium:
    return build_consortium(root, n, now_ms(), **settings)


@contextlib.asynccontextmanager
async def running(
    config: NodeConfig, replicate: bool = True, events: EventSource | None = None
) -> AsyncIterator[Node]:
    keys = load_keys(config)
    store = SqliteStore(config.directory / "data.db")
    await store.open()
    try:
        service = NodeService(config, store, keys.checkpoint, now_ms, keys.node)
        await service.start(read_roster(config))
        async with PeerClient(config.member_id, keys.node, now_ms, 2.0) as client:
            replicator = Replicator(service, client) if replicate else None
            if replicator is not None:
                service.request_sync = replicator.request_sync
            operator = operator_app(
                service, keys.token, replicator.peer_status if replicator else None
            )
            mount_dashboard(
                operator,
                service,
                keys.token,
                replicator.peer_status if replicator else None,
                events,
            )
            runners = [web.AppRunner(peer_app(service)), web.AppRunner(operator)]
            for runner in runners:
                await runner.setup()
            try:
                await web.TCPSite(runners[0], config.peer_host, config.peer_port).start()
                await web.TCPSite(runners[1], config.operator_host, config.operator_port).start()
                async with asyncio.TaskGroup() as group:
                    tasks = [group.create_task(service.run_checkpointer())]
                    if replicator is not None:
                        tasks.append(group.create_task(replicator.run()))
                    try:
                        yield Node(config, service, replicator, keys.token)
                    finally:
                        for task in tasks:
                            task.cancel()
            finally:
                for runner in runners:
                    await runner.cleanup()
    finally:
        await store.close()


async def wait_for(check: Any, timeout_s: float, what: str) -> None:
    """Poll an async or plain predicate until it holds; fail the test after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout_s} s")
