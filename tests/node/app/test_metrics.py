"""Metrics of real node services over SQLite (node/app/metrics.py), read from their text
exposition. Their route: tests/node/http/test_metrics_api.py."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from node.app.consortium import build_consortium
from node.app.metrics import NodeMetrics, failure_reason
from node.config import NodeConfig
from node.core.listeners import DurableRange
from node.core.service import NodeService
from node.credentials.key_files import load_key
from node.store.sqlite.store import SqliteStore
from protocol.entries import Add


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@asynccontextmanager
async def running(config: NodeConfig) -> AsyncIterator[NodeService]:
    _, key = load_key(config.checkpoint_key_path)
    store = SqliteStore(config.directory / "data.db")
    await store.open()
    try:
        service = NodeService(config, store, key, now_ms)
        await service.start(config.roster_path.read_bytes())
        yield service
    finally:
        await store.close()


async def scrape(metrics: NodeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The metrics as GET /metrics serves them; samples by (name, sorted labels)."""
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_entries_lag_arrival_sync_and_lookups_are_counted(tmp_path: Path) -> None:
    one, two = build_consortium(tmp_path, 2, now_ms()).configs
    async with running(one) as node1, running(two) as node2:
        metrics = NodeMetrics(node1)
        node1.peers.subscribe(metrics.listener)
        node1.on_own_checkpoint(metrics.listener)
        sent_ms = now_ms() - 2000  # the origin stamped these two seconds ago
        adds = [Add(sent_ms, "md5", bytes([i]) * 16, ("terrorist-attack",)) for i in range(3)]
        await node2.submit(adds)
        signed = await node2.sign_pending()
        assert signed is not None
        await node1.submit(adds[:1])
        await node1.sign_pending()

        # node1 has seen member2's checkpoint of 3 entries but holds none: 3 behind.
        await node1.peers.offer_checkpoint(two.origin, signed.raw)
        before = await scrape(metrics)
        assert (
            before[("hashmesh_log_lag_entries", (("member", "member2"), ("origin", two.origin)))]
            == 3
        )
        assert (
            before[("hashmesh_log_entries", (("member", "member1"), ("origin", one.origin)))] == 1
        )

        entries = await node2.store.entries(two.origin, 0, 3)
        result = await node1.peers.ingest(two.origin, signed.raw, 0, entries, (), "member2")
        assert result.status == "accepted"
        metrics.sync_round("member2", True)
        metrics.sync_round("member3", False, failure_reason(TimeoutError()))
        metrics.lookups(5, found=2)
        after = await scrape(metrics)

    def sample(name: str, **labels: str) -> float:
        return after[(name, tuple(sorted(labels.items())))]

    assert sample("hashmesh_entries_stored_total", origin=two.origin) == 3
    assert sample("hashmesh_entries_stored_total", origin=one.origin) == 1
    assert sample("hashmesh_log_lag_entries", member="member2", origin=two.origin) == 0
    assert sample("hashmesh_log_entries", member="member2", origin=two.origin) == 3
    assert sample("hashmesh_log_held", member="member2", origin=two.origin) == 0
    # Only member2's entries arrived; they were two seconds old (bucket 2.5 s, not 1 s).
    assert sample("hashmesh_arrival_delay_seconds_count") == 3
    assert sample("hashmesh_arrival_delay_seconds_bucket", le="1.0") == 0
    assert sample("hashmesh_arrival_delay_seconds_bucket", le="2.5") == 3
    assert 6 <= sample("hashmesh_arrival_delay_seconds_sum") < 7.5
    # The three arrived in one transaction; our own entry is not a peer's batch.
    assert sample("hashmesh_peer_batch_entries_count") == 1
    assert sample("hashmesh_peer_batch_entries_sum") == 3
    assert sample("hashmesh_peer_batch_entries_bucket", le="1.0") == 0
    assert sample("hashmesh_peer_batch_entries_bucket", le="16.0") == 1
    assert sample("hashmesh_sync_rounds_total", peer="member2", result="ok") == 1
    assert sample("hashmesh_sync_rounds_total", peer="member3", result="failed") == 1
    assert sample("hashmesh_sync_failures_total", peer="member3", reason="TimeoutError") == 1
    assert sample("hashmesh_lookup_hashes_total") == 5
    assert sample("hashmesh_lookup_found_total") == 2
    assert 364 * 86400 < sample("hashmesh_roster_expiry_seconds", version="1") <= 365 * 86400
    assert sample("hashmesh_alerts") == 0


async def test_two_nodes_in_one_process_count_separately(tmp_path: Path) -> None:
    one, two = build_consortium(tmp_path, 2, now_ms()).configs
    async with running(one) as node1, running(two) as node2:
        first, second = NodeMetrics(node1), NodeMetrics(node2)
        first.lookups(4)
        assert (await scrape(first))[("hashmesh_lookup_hashes_total", ())] == 4
        assert (await scrape(second))[("hashmesh_lookup_hashes_total", ())] == 0


async def test_listener_failures_are_counted_by_listener_with_the_entries_they_owe(
    tmp_path: Path,
) -> None:
    (one,) = build_consortium(tmp_path, 1, now_ms()).configs
    async with running(one) as node:
        metrics = NodeMetrics(node)
        metrics.watch_pushers(lambda: 2)

        async def broken(told: DurableRange) -> None:
            raise RuntimeError("broken listener (simulated)")

        node.on_own_checkpoint(broken, "broken")
        await node.submit([Add(now_ms(), "md5", bytes([i]) * 16) for i in range(3)])
        await node.sign_pending()
        samples = await scrape(metrics)
    assert samples[("hashmesh_listener_failures_total", (("listener", "broken"),))] == 1
    assert samples[("hashmesh_listener_owed_entries", (("listener", "broken"),))] == 3
    assert samples[("hashmesh_listener_failures_total", (("listener", "match_index"),))] == 0
    assert samples[("hashmesh_listener_owed_entries", (("listener", "match_index"),))] == 0
    assert samples[("hashmesh_alerts", ())] == 1
    assert samples[("hashmesh_pusher_tasks", ())] == 2
