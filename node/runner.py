"""Running a node: open the store, start the service, serve both APIs, replicate, stop cleanly.

`run_node` owns every task it starts (one TaskGroup) and stops them all on SIGTERM/SIGINT or
when its `stop` event is set. It prints one line "hashmesh node ready ..." once both APIs
listen, which the demo and the tests wait for.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time

from aiohttp import web

from node.config import NodeConfig
from node.errors import ConfigError
from node.keys import NodeKeys, load_key, read_secret
from node.peer_client import PeerClient
from node.replication import Replicator
from node.scheduler import SyncSchedule
from node.server import operator_app, peer_app
from node.service import NodeService
from node.store import open_store as store_at
from node.store.base import Store
from node.store.sqlite import SqliteStore

log = logging.getLogger(__name__)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


def load_keys(config: NodeConfig) -> NodeKeys:
    name, checkpoint = load_key(config.checkpoint_key_path)
    if name != config.origin:
        raise ConfigError(f"the checkpoint key is named {name!r}, the log is {config.origin!r}")
    _, node_key = load_key(config.node_key_path)
    return NodeKeys(checkpoint, node_key, read_secret(config.token_path))


def open_store(config: NodeConfig) -> Store:
    """The store the configuration names: 'sqlite' (data/hashmesh.db) or a postgresql:// URL.

    A PostgreSQL URL without `?schema=` uses a schema named after the member, so that several
    members may share one database server.
    """
    if config.store == "sqlite":
        config.data_dir.mkdir(parents=True, exist_ok=True)
        return SqliteStore(config.data_dir / "hashmesh.db")
    if config.store.startswith(("postgresql://", "postgres://")):
        url = config.store
        if "schema=" not in url:
            schema = "hm_" + "".join(c if c.isalnum() else "_" for c in config.member_id.lower())
            url += ("&" if "?" in url else "?") + f"schema={schema}"
        return store_at(url)
    raise ConfigError(f"unknown store {config.store!r} (use 'sqlite' or a postgresql:// URL)")


def read_roster(config: NodeConfig) -> bytes:
    try:
        return config.roster_path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the roster {config.roster_path}: {e}") from e


async def run_node(config: NodeConfig, stop: asyncio.Event | None = None) -> None:
    keys = load_keys(config)
    pinned = read_roster(config)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    store = open_store(config)
    await store.open()
    try:
        service = NodeService(config, store, keys.checkpoint, wall_clock_ms, keys.node)
        await service.start(pinned)
        async with PeerClient(
            config.member_id,
            keys.node,
            wall_clock_ms,
            config.peer_timeout_s,
            config.max_body_bytes,
            config.page_size,
        ) as client:
            replicator = Replicator(service, client)
            service.request_sync = replicator.request_sync
            await _serve(config, service, replicator, keys, stop)
    finally:
        await store.close()


async def _serve(
    config: NodeConfig,
    service: NodeService,
    replicator: Replicator,
    keys: NodeKeys,
    stop: asyncio.Event,
) -> None:
    peer_runner = web.AppRunner(peer_app(service), access_log=None)
    operator = operator_app(service, keys.token, replicator.peer_status)
    operator_runner = web.AppRunner(operator, access_log=None)
    schedule = SyncSchedule(replicator.request_sync, config.sync_interval_s, config.sync_jitter_s)
    await peer_runner.setup()
    await operator_runner.setup()
    try:
        await web.TCPSite(peer_runner, config.peer_host, config.peer_port).start()
        await web.TCPSite(operator_runner, config.operator_host, config.operator_port).start()
        async with asyncio.TaskGroup() as group:
            checkpointer = group.create_task(service.run_checkpointer())
            replication = group.create_task(replicator.run())
            # The match index loads while the node already serves; lookups work meanwhile.
            group.create_task(service.matcher.load())
            schedule.start()
            print(
                f"hashmesh node ready member={config.member_id} "
                f"peer=http://{config.peer_host}:{config.peer_port} operator={config.operator_url}",
                flush=True,
            )
            await stop.wait()
            schedule.stop()
            checkpointer.cancel()
            replication.cancel()
        # Sign whatever was acknowledged but not yet signed, so peers can verify it.
        await service.sign_pending()
    finally:
        schedule.stop()
        await operator_runner.cleanup()
        await peer_runner.cleanup()
        print(f"hashmesh node stopped member={config.member_id}", file=sys.stderr, flush=True)
