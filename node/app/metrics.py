"""Prometheus metrics of a node (prometheus-client), served as GET /metrics
(node/http/metrics_api.py).

`NodeMetrics` owns its own CollectorRegistry (never the process-global one), so several nodes
in one process (the tests) keep separate counts. Counters and the arrival histogram are fed
by hook calls from the service, the replicator and the operator API; the per-log gauges
(size, lag, held back) are computed from `node_status(service)` at scrape time, so they can
never go stale.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from node.core.listeners import DurableRange
from node.core.service import NodeService
from node.core.status import node_status
from node.errors import StoreError

log = logging.getLogger(__name__)

#: Seconds from an entry's origin timestamp to its storage here: 10 ms up to a minute.
ARRIVAL_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Entries a transaction: single pushes, pages (4000 by default), pages queued while the
#: store was busy (node/core/pipeline.py, at most 24,000 queued and a page).
BATCH_BUCKETS = (1, 16, 256, 1024, 4096, 8192, 16384, 32768, 49152)
#: A catch-up of a long log observes the delays of its newest entries only; older ones
#: would say how long we were away, not how fast the network is.
MAX_DELAYS_PER_BATCH = 1000


def failure_reason(e: BaseException) -> str:
    """A bounded label for a failure: the error's class name, never its (unbounded) text."""
    return type(e).__name__


class _LogCollector:
    """Gauges computed from the service's status at scrape time."""

    def __init__(self, service: NodeService) -> None:
        self._service = service
        #: How many pusher tasks run (Replicator.pusher_tasks), once replication is wired up.
        self.pusher_tasks: Callable[[], int] | None = None
        #: How many peer requests were reset mid-request (ConnectionGuard.resets), once served.
        self.resets: Callable[[], int] | None = None

    def collect(self) -> Iterable[Metric]:
        status = node_status(self._service)
        size = GaugeMetricFamily(
            "hashmesh_log_entries", "Entries of each log held here", labels=["origin", "member"]
        )
        lag = GaugeMetricFamily(
            "hashmesh_log_lag_entries",
            "Latest checkpoint size seen for a log minus the entries held here",
            labels=["origin", "member"],
        )
        held = GaugeMetricFamily(
            "hashmesh_log_held",
            "1 if a log's new entries are held back because its origin equivocated",
            labels=["origin", "member"],
        )
        for origin, info in sorted(status["logs"].items()):
            labels = [origin, str(info.get("member") or "")]
            size.add_metric(labels, float(info["size"]))
            latest = int(info.get("latest_seen", info["size"]))
            lag.add_metric(labels, float(max(0, latest - int(info["size"]))))
            held.add_metric(labels, 1.0 if info.get("held") else 0.0)
        roster = status["roster"]
        expiry = GaugeMetricFamily(
            "hashmesh_roster_expiry_seconds",
            "Seconds until the roster in force expires (negative once expired)",
            labels=["version"],
        )
        left_s = (int(roster["expires_ms"]) - int(status["now_ms"])) / 1000
        expiry.add_metric([str(roster["version"])], left_s)
        expired = GaugeMetricFamily(
            "hashmesh_roster_expired", "1 if the roster in force has expired", labels=["version"]
        )
        expired.add_metric([str(roster["version"])], 1.0 if roster.get("expired") else 0.0)
        in_roster = GaugeMetricFamily(
            "hashmesh_in_roster", "1 if the roster in force names this node's member, 0 if removed"
        )
        in_roster.add_metric([], 1.0 if status.get("in_roster", True) else 0.0)
        alerts = GaugeMetricFamily("hashmesh_alerts", "Alerts an operator must look at now")
        alerts.add_metric([], float(len(status["alerts"])))
        return [
            size,
            lag,
            held,
            expiry,
            expired,
            in_roster,
            alerts,
            *_disk_metrics(status["disk"]),
            *self._listener_metrics(),
            *self._pushers(),
            *self._resets(),
        ]

    def _listener_metrics(self) -> list[Metric]:
        listeners = self._service.listeners
        failures = CounterMetricFamily(
            "hashmesh_listener_failures",
            "Ranges of entries a listener (match_index, events, relay, ...) failed to handle",
            labels=["listener"],
        )
        owed = GaugeMetricFamily(
            "hashmesh_listener_owed_entries",
            "Entries a listener failed on and will hear of again (retried)",
            labels=["listener"],
        )
        for name, count in sorted(listeners.failures().items()):
            failures.add_metric([name], float(count))
        for name, entries in sorted(listeners.owed_entries().items()):
            owed.add_metric([name], float(entries))
        return [failures, owed]

    def _pushers(self) -> list[Metric]:
        if self.pusher_tasks is None:
            return []
        tasks = GaugeMetricFamily(
            "hashmesh_pusher_tasks", "Pusher tasks running: one per peer of the roster"
        )
        tasks.add_metric([], float(self.pusher_tasks()))
        return [tasks]

    def _resets(self) -> list[Metric]:
        if self.resets is None:
            return []
        resets = CounterMetricFamily(
            "hashmesh_peer_requests_reset",
            "Peer API requests whose client reset the connection before the request ended",
        )
        resets.add_metric([], float(self.resets()))
        return [resets]


def _disk_metrics(disk: dict[str, Any]) -> list[Metric]:
    free = GaugeMetricFamily(
        "hashmesh_data_free_bytes", "Bytes free on the disk of the node's data directory"
    )
    if disk["free_bytes"] is not None:
        free.add_metric([], float(disk["free_bytes"]))
    failures = CounterMetricFamily(
        "hashmesh_store_write_failures",
        "Store writes that failed (disk full, database locked), since the node started",
    )
    failures.add_metric([], float(disk["write_failures"]))
    return [free, failures]


class NodeMetrics:
    """Every metric of one node, in a registry of its own."""

    def __init__(self, service: NodeService) -> None:
        self._service = service
        self.registry = CollectorRegistry(auto_describe=False)
        self._entries = Counter(
            "hashmesh_entries_stored",
            "Log entries stored by this node, by the log's origin",
            ["origin"],
            registry=self.registry,
        )
        self._arrival = Histogram(
            "hashmesh_arrival_delay_seconds",
            "Seconds from an entry's origin timestamp to its storage on this node (peers' logs)",
            buckets=ARRIVAL_BUCKETS,
            registry=self.registry,
        )
        self._batches = Histogram(
            "hashmesh_peer_batch_entries",
            "Entries of a peer's log stored in one transaction (a push, a page, or the pages"
            " verified while the store was busy)",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self._sync_rounds = Counter(
            "hashmesh_sync_rounds",
            "Anti-entropy rounds with a peer, by peer and result (ok or failed)",
            ["peer", "result"],
            registry=self.registry,
        )
        self._sync_failures = Counter(
            "hashmesh_sync_failures",
            "Failed anti-entropy rounds with a peer, by peer and reason",
            ["peer", "reason"],
            registry=self.registry,
        )
        self._lookups = Counter(
            "hashmesh_lookup_hashes",
            "Hashes looked up or matched through the operator API",
            registry=self.registry,
        )
        self._matches = Counter(
            "hashmesh_lookup_found",
            "Hashes looked up that the consortium holds",
            registry=self.registry,
        )
        self._webhooks = Counter(
            "hashmesh_webhook_deliveries",
            "Webhook delivery attempts, by result (ok, or the failure's reason)",
            ["result"],
            registry=self.registry,
        )
        self._collector = _LogCollector(service)
        self.registry.register(self._collector)

    def watch_pushers(self, pusher_tasks: Callable[[], int]) -> None:
        """Report `pusher_tasks()` as hashmesh_pusher_tasks."""
        self._collector.pusher_tasks = pusher_tasks

    def watch_resets(self, resets: Callable[[], int]) -> None:
        """Report `resets()` as hashmesh_peer_requests_reset_total."""
        self._collector.resets = resets

    # Hooks.

    def entries_stored(self, origin: str, count: int, delays_s: Sequence[float]) -> None:
        """`count` entries of `origin` were stored; `delays_s` are their arrival delays."""
        if count > 0:
            self._entries.labels(origin).inc(count)
        for delay in delays_s:
            # A member's clock a little ahead of ours must not make a negative observation.
            self._arrival.observe(max(0.0, delay))

    def sync_round(self, peer: str, ok: bool, reason: str = "") -> None:
        """One anti-entropy round with `peer` ended; `reason` is a bounded label if it failed."""
        self._sync_rounds.labels(peer, "ok" if ok else "failed").inc()
        if not ok:
            self._sync_failures.labels(peer, reason or "unknown").inc()

    def lookups(self, n: int, found: int = 0) -> None:
        """The operator API answered `n` hashes, `found` of which the consortium holds."""
        self._lookups.inc(n)
        if found:
            self._matches.inc(found)

    def webhook_result(self, ok: bool, reason: str) -> None:
        """Matches WebhookSender's `on_result` callback."""
        self._webhooks.labels("ok" if ok else reason or "failed").inc()

    async def listener(self, told: DurableRange) -> None:
        """For PeerLogs.subscribe and NodeService.on_own_checkpoint: count and time entries."""
        delays: list[float] = []
        if told.origin != self._service.origin:  # our own entries do not "arrive"
            self._batches.observe(told.end - told.start)  # each stored batch is told of once
            now_ms = self._service.clock()
            try:
                entries = (await told.entries())[-MAX_DELAYS_PER_BATCH:]
            except StoreError as e:  # metrics must never fail the ingest that called us
                log.warning("arrival delays of %s not observed: %s", told.origin, e)
                entries = []
            # An entry stored but never decoded is None; PeerLogs has warned about it.
            delays += [(now_ms - e.timestamp_ms) / 1000 for e in entries if e is not None]
        self.entries_stored(told.origin, told.end - told.start, delays)

    #: The exposition's media type, for the HTTP answer.
    content_type = CONTENT_TYPE_LATEST

    def exposition(self) -> bytes:
        """The registry in Prometheus' text exposition format."""
        return generate_latest(self.registry)
