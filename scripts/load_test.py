#!/usr/bin/env python3
"""Load test: N nodes on 127.0.0.1 take a steady stream of submissions for a while; no errors,
every hash matchable on every node, all roots equal at the end, propagation p99 reported.

A fresh consortium of N nodes (default 20) starts with the node's default settings (push on,
relay on, anti-entropy pull every 30 s; `--no-relay` turns relaying off). For `--seconds` (60)
one md5 hash a submission goes round-robin to the nodes at `--rate` (10 a second), each from a
small pool of client threads so that a slow node does not hold the stream back. Meanwhile one
poller per node looks every submitted hash up on its node until it is found (the machinery of
bench_propagation.py, in benchlib.py).

Counted as errors: a submission not acknowledged, a lookup or status request that failed, a
node process that exited, an ERROR line or traceback in a node's log, a hash that did not reach
every node before `--settle` seconds passed after the stream, and logs whose roots still differ
between nodes once everything arrived. The run passes (exit status 0) only with none of these;
otherwise it prints what went wrong and exits with 1. Also reported: the CPU the nodes used,
in all and a submission, which says how much load the machine can carry, and their resident
memory (each node's figures include its SQLite writer process).

    .venv/bin/python scripts/load_test.py [--nodes 20] [--seconds 60] [--rate 10] [--json]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    ArrivalPoller,
    Submissions,
    arrivals,
    children_rss_kb,
    emit,
    log,
    machine,
    md5_hex,
    proc_status_kb,
    summary,
    tree_cpu_seconds,
    work_dir,
)

from node.app.consortium import build_consortium
from node.app.procs import NodeGroup, NodeProcess, NodeProcessError
from node.cli.operator_client import OperatorClient
from node.config import NodeConfig
from node.errors import NodeError

#: Kept per kind of error in the report, so that a failing run says what happened.
SAMPLES = 3
START_ATTEMPTS = 3
LOG_ERROR_MARKS = (" ERROR ", " CRITICAL ", "Traceback (most recent call last)")


@dataclass
class Errors:
    """Errors of a run by kind, with a few messages of each; thread-safe."""

    counts: dict[str, int] = field(default_factory=dict)
    samples: dict[str, list[str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, kind: str, message: str, count: int = 1) -> None:
        with self.lock:
            self.counts[kind] = self.counts.get(kind, 0) + count
            kept = self.samples.setdefault(kind, [])
            if len(kept) < SAMPLES:
                kept.append(message[:500])

    @property
    def total(self) -> int:
        with self.lock:
            return sum(self.counts.values())


class Stream:
    """Submits one hash at a time round-robin to the nodes at a steady rate."""

    def __init__(self, configs: tuple[NodeConfig, ...], state: Submissions, errors: Errors) -> None:
        self.clients = [OperatorClient.for_node(c) for c in configs]
        self.state = state
        self.errors = errors
        self.acks_ms: list[float] = []
        self.attempted = 0
        self._lock = threading.Lock()

    def submit(self, i: int) -> None:
        node = i % len(self.clients)
        h = md5_hex("load", i)
        item = {"signal_type": "md5", "value": h, "labels": ["terrorist-attack"]}
        self.state.mark(h, node)
        started = time.perf_counter()
        try:
            self.clients[node].call("POST", "/v1/submit", {"items": [item]})
        except NodeError as e:
            self.state.forget(h)  # never stored: nobody waits for it
            self.errors.add("submit", f"member{node + 1}: {e}")
            return
        with self._lock:
            self.acks_ms.append((time.perf_counter() - started) * 1000)

    def run(self, count: int, rate: float, workers: int, nodes: list[NodeProcess]) -> float:
        """Submit `count` hashes at `rate` a second; seconds it took. Checks the nodes live."""
        started = time.perf_counter()
        with ThreadPoolExecutor(workers, thread_name_prefix="submit") as pool:
            for i in range(count):
                time.sleep(max(0.0, started + i / rate - time.perf_counter()))
                pool.submit(self.submit, i)
                self.attempted += 1
                if i % max(1, int(rate)) == 0 and not all(n.running for n in nodes):
                    break  # a node died: stop loading, the report says which
        return time.perf_counter() - started


def node_roots(configs: tuple[NodeConfig, ...], errors: Errors) -> dict[str, dict[str, Any]]:
    """member id -> {origin: (size, root)} of every log each node holds; failures counted."""
    held: dict[str, dict[str, Any]] = {}
    for config in configs:
        try:
            status = OperatorClient.for_node(config).call("GET", "/v1/status")
        except NodeError as e:
            errors.add("status", f"{config.member_id}: {e}")
            continue
        held[config.member_id] = {
            origin: (entry["size"], entry["root"]) for origin, entry in status["logs"].items()
        }
    return held


def differing_logs(
    configs: tuple[NodeConfig, ...], held: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """Logs whose (size, root) is not the same on every node, or that a node lacks."""
    out: dict[str, dict[str, Any]] = {}
    for origin in (c.origin for c in configs):
        seen = {member: logs.get(origin) for member, logs in held.items()}
        if len(held) < len(configs) or len(set(seen.values())) != 1 or None in seen.values():
            out[origin] = seen
    return out


def wait_converged(
    configs: tuple[NodeConfig, ...], errors: Errors, timeout_s: float
) -> tuple[float | None, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Seconds until every node holds equal roots of every log (None if not within timeout),
    the last roots seen and the logs that still differ."""
    started = time.monotonic()
    while True:
        held = node_roots(configs, errors)
        differ = differing_logs(configs, held)
        if not differ:
            return time.monotonic() - started, held, differ
        if time.monotonic() - started > timeout_s:
            return None, held, differ
        time.sleep(0.25)


def log_errors(nodes: list[NodeProcess], offsets: list[int], errors: Errors) -> int:
    """Counts ERROR lines and tracebacks in the nodes' logs as errors; returns the warnings
    logged after each node's `offsets` character."""
    warnings = 0
    for node, offset in zip(nodes, offsets, strict=True):
        text = node.log()
        for line in text.splitlines():
            if any(mark in line for mark in LOG_ERROR_MARKS):
                errors.add("node_log", f"{node.config.member_id}: {line}")
        warnings += sum(" WARNING " in line for line in text[offset:].splitlines())
    return warnings


def started_group(root: Path, n: int, relay: bool) -> NodeGroup:
    """N running nodes of a fresh consortium.

    The ports come from the ephemeral range (node.app.consortium.free_port) and are only bound when
    each node starts; meanwhile the nodes already running open connections to their peers, and
    one of those can take a later node's port. That is a set-up race, not a load error, so a
    fresh consortium is tried again (a few times) when a node finds its port taken.
    """
    for attempt in range(1, START_ATTEMPTS + 1):
        now_ms = time.time_ns() // 1_000_000
        setup = build_consortium(root / f"attempt-{attempt}", n, now_ms, relay=relay)
        group = NodeGroup(setup.configs)
        log(f"starting {n} nodes")
        try:
            for node in group.nodes:
                node.start()
        except NodeProcessError as e:
            group.stop()
            if "address already in use" not in str(e) or attempt == START_ATTEMPTS:
                raise
            log(f"a port was taken while the nodes started ({e}); trying a fresh consortium")
            continue
        return group
    raise AssertionError("unreachable: the last attempt returns or raises")


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    errors = Errors()
    state = Submissions()
    count = max(1, round(args.seconds * args.rate))
    with started_group(root, args.nodes, not args.no_relay) as group:
        configs = tuple(n.config for n in group.nodes)
        # Warnings while the nodes came up (peers not listening yet) are not the load's.
        log_offsets = [len(n.log()) for n in group.nodes]
        cpu_before = sum(tree_cpu_seconds(n.pid) for n in group.nodes if n.pid is not None)
        clock = time.perf_counter()
        nodes = group.nodes
        pollers = [ArrivalPoller(c, state, args.poll_ms / 1000) for c in configs]
        for p in pollers:
            p.start()
        stream = Stream(configs, state, errors)
        log(f"{count} submissions at {args.rate}/s for {args.seconds} s")
        streamed_s = stream.run(count, args.rate, args.workers, nodes)
        state.all_submitted.set()
        log("waiting for every hash on every node")
        deadline = time.monotonic() + args.settle
        for p in pollers:
            p.join(max(0.0, deadline - time.monotonic()))
        state.stop.set()
        for p in pollers:
            p.join(5)
        log("waiting for equal roots of every log on every node")
        converge_s, held, differ = wait_converged(configs, errors, args.settle)
        busy_s = time.perf_counter() - clock
        cpu_s = sum(tree_cpu_seconds(n.pid) for n in group.nodes if n.pid is not None) - cpu_before
        rss_mib = [
            (proc_status_kb(n.pid) + children_rss_kb(n.pid)) / 1024
            for n in nodes
            if n.pid is not None
        ]
        exited = [n.config.member_id for n in nodes if not n.running]
        # Read before the nodes stop, so that only the run counts, not the shutdown.
        warnings = log_errors(nodes, log_offsets, errors)
    for member in exited:
        errors.add("node_exited", f"{member} exited during the run")
    for p, config in zip(pollers, configs, strict=True):
        for message in p.errors:
            errors.add("lookup", f"{config.member_id}: {message}")
    found = arrivals(state.sent(), pollers)
    if found.missing:
        errors.add("missing", f"{found.missing} hashes not on every node", found.missing)
    if differ:
        errors.add("roots_differ", f"logs differing: {sorted(differ)}", len(differ))
    first = next(iter(held.values()), {})
    entries = sum(size for size, _ in first.values())
    return {
        "benchmark": "load",
        "nodes": args.nodes,
        "seconds": args.seconds,
        "rate": args.rate,
        "relay": not args.no_relay,
        "submissions": stream.attempted,
        "acknowledged": len(stream.acks_ms),
        "achieved_rate": round(len(stream.acks_ms) / streamed_s, 2),
        "propagation_ms": {
            "all_nodes": summary(found.all_nodes),
            "each_peer": summary(found.each_peer),
            "observed_by_polling": summary(found.observed_by_polling),
        },
        "submit_ack_ms": summary(stream.acks_ms),
        "converged": converge_s is not None,
        "converge_s": None if converge_s is None else round(converge_s, 2),
        "logs": len(configs),
        "entries_per_node": entries,
        "roots_differ": {
            origin: {member: list(v) if v else None for member, v in seen.items()}
            for origin, seen in differ.items()
        },
        "node_rss_mib": {
            "max": round(max(rss_mib), 1),
            "mean": round(sum(rss_mib) / len(rss_mib), 1),
        }
        if rss_mib
        else None,
        "nodes_cpu": {
            "seconds": round(cpu_s, 1),
            "cores_busy": round(cpu_s / busy_s, 2),
            "ms_per_submission": round(1000 * cpu_s / max(1, len(stream.acks_ms)), 1),
        },
        "log_warnings": warnings,
        "errors": dict(errors.counts),
        "error_samples": dict(errors.samples),
        "error_total": errors.total,
        "passed": errors.total == 0,
        "machine": machine(),
    }


def lines_of(r: dict[str, Any]) -> list[str]:
    a, e, s = r["propagation_ms"]["all_nodes"], r["propagation_ms"]["each_peer"], r["submit_ack_ms"]
    out = [
        f"load: {r['nodes']} nodes (relay {'on' if r['relay'] else 'off'}),"
        f" {r['submissions']} submissions over {r['seconds']} s"
        f" ({r['achieved_rate']}/s acknowledged)",
        f"  submit to matchable on every node (ms): p50 {a['p50']:.1f}  p99 {a['p99']:.1f}"
        f"  max {a['max']:.1f}   one peer p50 {e['p50']:.1f} p99 {e['p99']:.1f}",
        f"  submit acknowledged (ms): p50 {s['p50']:.1f}  p99 {s['p99']:.1f}  max {s['max']:.1f}",
        f"  roots: {'all equal' if r['converged'] else 'DIFFER'} on every node for {r['logs']} logs"
        f" ({r['entries_per_node']} entries each node)"
        + (f", {r['converge_s']} s after the stream" if r["converged"] else ""),
        f"  nodes' CPU: {r['nodes_cpu']['cores_busy']} cores busy on average,"
        f" {r['nodes_cpu']['ms_per_submission']} ms a submission (all nodes together)",
        f"  errors: {r['error_total']} {r['errors'] or ''}; log warnings {r['log_warnings']}",
    ]
    if r["node_rss_mib"]:
        out.append(
            f"  node memory: {r['node_rss_mib']['mean']} MiB resident on average,"
            f" {r['node_rss_mib']['max']} MiB at most"
        )
    for kind, samples in r["error_samples"].items():
        out += [f"    {kind}: {sample}" for sample in samples]
    out.append("  PASSED" if r["passed"] else "  FAILED")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long the stream lasts")
    parser.add_argument("--rate", type=float, default=10.0, help="submissions a second")
    parser.add_argument("--workers", type=int, default=8, help="client threads submitting")
    parser.add_argument("--poll-ms", type=float, default=100.0, help="lookup interval per node")
    parser.add_argument(
        "--settle", type=float, default=60.0, help="seconds allowed to converge after the stream"
    )
    parser.add_argument(
        "--no-relay", action="store_true", help="nodes do not pass on what peers push to them"
    )
    parser.add_argument("--dir", type=Path, help="work here and keep it (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.nodes < 2 or args.seconds <= 0 or args.rate <= 0 or args.workers < 1:
        parser.error("at least 2 nodes, and positive --seconds, --rate and --workers")
    with work_dir(args.dir, "load-test-") as root:
        result = run(args, root)
    emit(result, args.json, lines_of(result))
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
