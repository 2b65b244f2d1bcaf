"""Running a node: open the store, start the service, serve both APIs, replicate, stop cleanly.

`run_node` owns every task it starts (one TaskGroup) and stops them all on SIGTERM/SIGINT or
when its `stop` event is set. It prints one line "hashmesh node ready ..." once both APIs
listen, which the demo and the tests wait for.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import time
from dataclasses import dataclass

from node.app.logging_setup import add_secret
from node.app.metrics import NodeMetrics
from node.config import NodeConfig, read_roster
from node.core.service import NodeService
from node.credentials.key_files import NodeKeys, load_key
from node.credentials.secret_files import read_secret
from node.errors import ConfigError, StoreError
from node.events.outbox import Outbox
from node.events.recorder import EntryEvents, EventRecorder, member_lookup
from node.events.webhooks import WebhookSender, load_webhook_secret
from node.http.operator_api import node_operator_app
from node.http.serving import serving, serving_peers
from node.replication.peer_client import PeerClient
from node.replication.replicator import Replicator
from node.replication.scheduler import SyncSchedule
from node.store import open_store as store_at
from node.store.base import Store
from node.store.disk_watch import DiskWatch, WatchedStore
from node.store.sqlite.store import SqliteStore

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


async def run_node(config: NodeConfig, stop: asyncio.Event | None = None) -> None:
    """Run one member's node until `stop` is set (or SIGTERM/SIGINT)."""
    keys = load_keys(config)
    pinned = read_roster(config)
    secret = b""
    add_secret(keys.token)
    if config.webhook_url:
        # Fail at start, not at the first event, when the secret file is missing or weak.
        secret = load_webhook_secret(config.directory / config.webhook_secret_file)
        add_secret(secret.decode())
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        disk = DiskWatch(
            config.data_dir,
            wall_clock_ms,
            config.disk_alert_free_percent,
            config.disk_alert_free_mib,
        )
        store = WatchedStore(open_store(config), disk)
        try:
            await store.open()
        except StoreError as e:
            # SQLite says "disk I/O error" when a full disk stops it making its shared-memory
            # file; the operator should read that the disk is full.
            raise StoreError(f"{e}{disk.full_note()}") from e
        stack.push_async_callback(store.close)
        service = NodeService(
            config,
            store,
            keys.checkpoint,
            wall_clock_ms,
            keys.node,
            keys_dir=config.checkpoint_key_path.parent,
            disk=disk,
        )
        await service.start(pinned)
        metrics = NodeMetrics(service)
        service.peers.subscribe(metrics.listener, "metrics")
        service.on_own_checkpoint(metrics.listener, "metrics")
        member_of = member_lookup(service)
        outbox = Outbox(
            config.data_dir / "outbox.db",
            deliver=bool(config.webhook_url),
            build=EntryEvents(store, member_of, service.entry_standing),
        )
        await outbox.open()
        stack.push_async_callback(outbox.close)
        recorder = EventRecorder(outbox, store, member_of, service.clock)
        service.peers.subscribe(recorder.listener, "events")
        service.on_own_checkpoint(recorder.listener, "events")
        await recorder.catch_up()
        client = await stack.enter_async_context(
            PeerClient(
                config.member_id,
                keys.node,
                wall_clock_ms,
                config.peer_timeout_s,
                config.max_body_bytes,
                config.page_size,
                config.peer_keepalive_s,
            )
        )
        replicator = Replicator(service, client)
        replicator.pulls.on_round = metrics.sync_round
        metrics.watch_pushers(replicator.pusher_tasks)
        service.request_sync = replicator.request_sync
        service.request_catch_up = replicator.request_catch_up
        parts = Parts(service, replicator, metrics, outbox, secret)
        await _serve(config, parts, keys, stop)


@dataclass(frozen=True, slots=True)
class Parts:
    service: NodeService
    replicator: Replicator
    metrics: NodeMetrics
    outbox: Outbox
    webhook_secret: bytes


async def _serve(config: NodeConfig, parts: Parts, keys: NodeKeys, stop: asyncio.Event) -> None:
    service, replicator = parts.service, parts.replicator
    operator = node_operator_app(
        service, keys.token, replicator.peer_status, parts.metrics, parts.outbox
    )
    schedule = SyncSchedule(replicator.request_sync, config.sync_interval_s, config.sync_jitter_s)
    try:
        async with (
            serving_peers(service, config.peer_host, config.peer_port) as guard,
            serving(operator, config.operator_host, config.operator_port),
        ):
            parts.metrics.watch_resets(lambda: guard.resets)
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(service.run_checkpointer()),
                    group.create_task(service.listeners.run_retries()),
                    group.create_task(replicator.run()),
                    group.create_task(service.witness.run_saver()),
                ]
                if config.webhook_url:
                    sender = WebhookSender(
                        parts.outbox,
                        config.webhook_url,
                        parts.webhook_secret,
                        config.webhook_max_backoff_s,
                        config.peer_timeout_s,
                        on_result=parts.metrics.webhook_result,
                    )
                    tasks.append(group.create_task(sender.run()))
                # The match index loads while the node already serves; lookups work meanwhile.
                group.create_task(service.matcher.load())
                schedule.start()
                print(
                    f"hashmesh node ready member={config.member_id} "
                    f"peer=http://{config.peer_host}:{config.peer_port} "
                    f"operator={config.operator_url}",
                    flush=True,
                )
                await stop.wait()
                schedule.stop()
                for task in tasks:
                    task.cancel()
            # Sign whatever was acknowledged but not yet signed, so peers can verify it.
            await service.sign_pending()
            await service.witness.save_unsaved()
    finally:
        schedule.stop()
        print(f"hashmesh node stopped member={config.member_id}", file=sys.stderr, flush=True)
