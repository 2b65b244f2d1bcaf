"""Who a node pushes and relays new entries to: every peer for its own entries, a few random
peers for what it learned from another relay or a pull (gossip), nobody for what the origin
pushed to it (the origin reaches everyone itself), and never a peer that already holds them."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from node.core import log_locks, wire
from node.core.pipeline import PagePipeline
from node.credentials.key_files import load_key
from node.replication.peer_client import PeerClient
from node.replication.replicator import Replicator
from protocol.entries import Add
from tests.node.conftest import StoreFor
from tests.node.services import consortium, durable, now_ms, served


async def test_own_entries_go_to_every_peer_and_relays_to_a_few(
    tmp_path: Path, store_for: StoreFor
) -> None:
    # Regression: relaying to every peer made each takedown cost n^2 pushes; 20 nodes at ten
    # takedowns a second saturated both cores and propagation p99 rose to 10-20 s.
    setup = consortium(tmp_path, 8)
    me, origin = setup.configs[0], setup.configs[1]
    async with served(replace(me, relay_fanout=3), store_for(me)) as node:
        _, key = load_key(me.node_key_path)
        async with PeerClient(me.member_id, key, now_ms, 5.0, 1 << 20, 100) as client:
            replicator = Replicator(node.service, client)
            await replicator._on_new_entries(durable(me.origin, 0, 5, None))
            assert len(replicator.pending_pushes()) == 7  # our own: to every peer
            for peer in replicator.pending_pushes():
                replicator.peer_set.states[peer].dirty.clear()
            await replicator._on_new_entries(durable(origin.origin, 0, 5, origin.member_id))
            assert replicator.pending_pushes() == {}  # straight from the origin: no relay
            await replicator._on_new_entries(durable(origin.origin, 0, 5, "member3"))
            relayed = replicator.pending_pushes()
            assert len(relayed) == 3
            assert not {"member2", "member3"} & set(relayed)  # never back to origin or source


async def test_a_peer_known_to_hold_the_entries_gets_no_push(
    tmp_path: Path, store_for: StoreFor
) -> None:
    setup = consortium(tmp_path, 3)
    me = setup.configs[0]
    async with served(me, store_for(me)) as node:
        _, key = load_key(me.node_key_path)
        async with PeerClient(me.member_id, key, now_ms, 5.0, 1 << 20, 100) as client:
            replicator = Replicator(node.service, client)
            replicator.peer_status()  # learn the peers
            replicator.peer_set.states["member2"].holds[me.origin] = 5
            await replicator._on_new_entries(durable(me.origin, 0, 5, None))
            assert set(replicator.pending_pushes()) == {"member3"}


async def test_with_push_off_nothing_is_pushed_or_relayed(
    tmp_path: Path, store_for: StoreFor
) -> None:
    setup = consortium(tmp_path, 3)
    me, origin = setup.configs[0], setup.configs[1]
    async with served(replace(me, push=False), store_for(me)) as node:
        _, key = load_key(me.node_key_path)
        async with PeerClient(me.member_id, key, now_ms, 5.0, 1 << 20, 100) as client:
            replicator = Replicator(node.service, client)
            await replicator._on_new_entries(durable(me.origin, 0, 5, None))  # our own
            await replicator._on_new_entries(durable(origin.origin, 0, 5, "member3"))  # learned
            assert replicator.pending_pushes() == {}


async def pull_with_a_waiter(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch, waiter: bool
) -> tuple[int, int | None]:
    """Pull 40 entries in pages of 5 (each fetch slowed); maybe another task wants the log's
    lock meanwhile. Returns how often the pull took the lock, and how many entries the
    waiter saw when it got the lock (None: no waiter)."""
    monkeypatch.setattr(log_locks, "HOLD_LOCK_S", 0.05)
    setup = consortium(tmp_path, 2)
    me, origin = setup.configs
    async with served(origin, store_for(origin)) as source, served(me, store_for(me)) as node:
        await source.service.submit([Add(now_ms(), "md5", bytes([i]) * 16) for i in range(40)])
        await source.service.sign_pending()
        peers = node.service.peers
        entered = 0
        pipeline = peers.pipeline

        def counted(log: str, source_id: str | None) -> PagePipeline:
            nonlocal entered
            entered += 1
            return pipeline(log, source_id)

        monkeypatch.setattr(peers, "pipeline", counted)
        _, key = load_key(me.node_key_path)
        async with PeerClient(me.member_id, key, now_ms, 5.0, 1 << 20, 5) as client:
            entries = client.entries

            async def slow_entries(*args: Any) -> wire.EntriesPage:
                await asyncio.sleep(0.02)
                return await entries(*args)

            monkeypatch.setattr(client, "entries", slow_entries)
            pull = Replicator(node.service, client).pulls.pull_log(
                origin.member_id, source.peer_url, origin.origin, 40
            )
            seen: list[int] = []

            async def take_the_lock() -> None:
                for _ in range(1000):  # once the pull holds the lock (its first page stored)
                    if peers.replica(origin.origin).size:
                        break
                    await asyncio.sleep(0.005)
                async with peers.lock(origin.origin):
                    seen.append(peers.replica(origin.origin).size)

            async with asyncio.TaskGroup() as group:
                group.create_task(pull)
                if waiter:
                    group.create_task(take_the_lock())
        assert peers.replica(origin.origin).size == 40
    return entered, (seen[0] if seen else None)


async def test_a_pull_keeps_its_log_lock_while_no_one_waits_for_it(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: the lock was let go (the pipeline drained) every HOLD_LOCK_S for no one,
    # so the joiner and its store took turns; a catch-up ran a quarter slower.
    entered, _ = await pull_with_a_waiter(tmp_path, store_for, monkeypatch, waiter=False)
    assert entered == 1


async def test_a_pull_lets_its_log_lock_go_to_a_waiter_after_hold_lock_s(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    entered, seen = await pull_with_a_waiter(tmp_path, store_for, monkeypatch, waiter=True)
    assert seen is not None and 0 < seen < 40  # the waiter got it in the middle of the pull
    assert entered == 2


async def test_a_pull_does_not_hold_its_log_lock_while_its_first_page_is_on_the_way(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: a sync round that found a log ahead (in a burst, by the entries being
    # pushed) took the log's lock, then waited a WAN round trip for the page; every push of
    # that log waited behind it.
    me, origin = consortium(tmp_path, 2).configs
    async with served(origin, store_for(origin)) as source, served(me, store_for(me)) as node:
        await source.service.submit([Add(now_ms(), "md5", bytes([i]) * 16) for i in range(5)])
        await source.service.sign_pending()
        peers = node.service.peers
        _, key = load_key(me.node_key_path)
        async with PeerClient(me.member_id, key, now_ms, 5.0, 1 << 20, 100) as client:
            entries = client.entries
            on_the_way = asyncio.Event()

            async def slow_entries(*args: Any) -> wire.EntriesPage:
                on_the_way.set()
                await asyncio.sleep(0.3)  # a slow WAN
                return await entries(*args)

            monkeypatch.setattr(client, "entries", slow_entries)
            seen: list[int] = []

            async def push_meanwhile() -> None:
                await on_the_way.wait()
                async with peers.lock(origin.origin):
                    seen.append(peers.replica(origin.origin).size)

            async with asyncio.TaskGroup() as group:
                group.create_task(
                    Replicator(node.service, client).pulls.pull_log(
                        origin.member_id, source.peer_url, origin.origin, 5
                    )
                )
                group.create_task(push_meanwhile())
        assert peers.replica(origin.origin).size == 5
    assert seen == [0]  # it had the lock while the page was still on the way
