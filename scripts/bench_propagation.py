#!/usr/bin/env python3
"""Benchmark propagation: N nodes on 127.0.0.1, S submissions spread over them, the time from
each submission to the hash being matchable on every node, with push and with the scheduled
pull only, in one run.

For each mode a fresh consortium starts; submissions go round-robin to the nodes at a steady
rate (one md5 hash each). Pollers look every pending hash up on every node until all are found
or the timeout passes. A hash's arrival on a node is the `received_ms` the node reports for it
(its wall clock when it stored the entry; the nodes and this script share one clock), so the
figure does not depend on how often we poll; the first poll that saw it is kept as a check.
The latency of a submission is the latest arrival over all nodes minus the wall clock just
before the submit request was sent.

    .venv/bin/python scripts/bench_propagation.py [--nodes 10] [--submissions 200] [--json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    ArrivalPoller,
    Submissions,
    arrivals,
    emit,
    log,
    machine,
    md5_hex,
    summary,
    work_dir,
)

from node.app.consortium import build_consortium
from node.app.procs import NodeGroup
from node.cli.operator_client import OperatorClient


def run_mode(mode: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    if mode == "push":
        settings = {"push": True, "sync_interval_s": args.push_sync_interval}
    else:
        settings = {"push": False, "sync_interval_s": args.interval}
    settings["sync_jitter_s"] = args.jitter
    setup = build_consortium(root / mode, args.nodes, time.time_ns() // 1_000_000, **settings)
    configs = setup.configs
    log(f"{mode}: starting {len(configs)} nodes")
    with NodeGroup(configs):
        state = Submissions()
        pollers = [ArrivalPoller(c, state, args.poll_ms / 1000) for c in configs]
        for p in pollers:
            p.start()
        clients = [OperatorClient.for_node(c) for c in configs]
        gap = 1 / args.rate
        log(f"{mode}: {args.submissions} submissions at {args.rate}/s")
        started = time.perf_counter()
        for i in range(args.submissions):
            time.sleep(max(0.0, started + i * gap - time.perf_counter()))
            h = md5_hex(mode, i)
            item = {"signal_type": "md5", "value": h, "labels": ["terrorist-attack"]}
            state.mark(h, i % len(clients))
            clients[i % len(clients)].call("POST", "/v1/submit", {"items": [item]})
        state.all_submitted.set()
        deadline = time.monotonic() + args.timeout
        for p in pollers:
            p.join(max(0.0, deadline - time.monotonic()))
        state.stop.set()
        for p in pollers:
            p.join(5)
    found = arrivals(state.sent(), pollers)
    return {
        "settings": settings,
        "submissions": args.submissions,
        "missing": found.missing,
        "all_nodes_ms": summary(found.all_nodes),
        "each_peer_ms": summary(found.each_peer),
        "observed_by_polling_ms": summary(found.observed_by_polling),
        "poll_errors": sum(len(p.errors) for p in pollers),
    }


def lines_of(r: dict[str, Any]) -> list[str]:
    out = [
        f"propagation: {r['nodes']} nodes, {r['submissions']} submissions at {r['rate']}/s,"
        " time from submit to matchable on every node (ms)"
    ]
    for mode, m in r["modes"].items():
        a, e, o = m["all_nodes_ms"], m["each_peer_ms"], m["observed_by_polling_ms"]
        out.append(
            f"  {mode:9} every node p50 {a['p50']:8.1f}  p99 {a['p99']:8.1f}  max {a['max']:8.1f}"
            f"   | one peer p50 {e['p50']:7.1f} p99 {e['p99']:7.1f}"
            f"   | seen by polling p99 {o['p99']:.1f}; missing {m['missing']}"
        )
        out.append(f"            settings {m['settings']}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--submissions", type=int, default=200)
    parser.add_argument("--rate", type=float, default=20.0, help="submissions a second")
    parser.add_argument("--interval", type=float, default=2.0, help="pull interval, schedule mode")
    parser.add_argument("--push-sync-interval", type=float, default=30.0)
    parser.add_argument("--jitter", type=float, default=0.2)
    parser.add_argument("--poll-ms", type=float, default=100.0)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds after the last one")
    parser.add_argument("--modes", default="push,schedule")
    parser.add_argument("--dir", type=Path, help="work here and keep it (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if args.nodes < 2 or args.submissions < 1 or not set(modes) <= {"push", "schedule"}:
        parser.error("at least 2 nodes and 1 submission; modes are push and schedule")
    with work_dir(args.dir, "bench-propagation-") as root:
        result = {
            "benchmark": "propagation",
            "nodes": args.nodes,
            "submissions": args.submissions,
            "rate": args.rate,
            "machine": machine(),
            "modes": {mode: run_mode(mode, args, root) for mode in modes},
        }
    emit(result, args.json, lines_of(result))


if __name__ == "__main__":
    main()
