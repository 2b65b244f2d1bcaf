#!/usr/bin/env python3
"""Benchmark a crisis at consortium scale: N member nodes (default 27) on 127.0.0.1, every peer
link through a user-space WAN (wan_proxy.py: a one-way delay per member pair, drawn from
--delay-ms and fixed per pair by --seed; --loss of requests reset mid-request; a --bandwidth-mbit
cap per link and direction), a steady stream of takedowns, then an incident.

Each mode (--modes: `push`, push and relay on; `pull`, push off so that only the scheduled pull
carries entries) starts a fresh consortium. A steady stream (--steady-rate a second, round-robin
over the members, one hash a submit, PDQ, vPDQ and md5 in turn) runs for --steady-seconds, then
goes on while --burst-members members each submit --burst-hashes hashes (PDQ, vPDQ, md5 in turn,
all with one incident id) evenly over --burst-seconds, --burst-batch hashes a submit.

Then the benchmark waits until every member holds every log up to its last acknowledged entry
(or --settle seconds pass) and exports every member's hashes (`GET /v1/export`): an entry's
arrival on a member is the `received_ms` that member reports (its wall clock when it stored the
entry; exact hashes are matchable from then, and PDQ and vPDQ go into the match index as the
store's listeners hear of it). Its latency is the latest arrival over the members minus the wall
clock when its submit was acknowledged. Reported: latency p50/p99/max of the entries acknowledged
before the burst, during it, and of the incident's alone; bytes each member sent and received
through the WAN, per entry, against the mean encoded entry; each node's peak RSS and CPU (with
its SQLite writer process); and whether each aim holds (`aims_met`):

- burst_p99_under_1s_with_push: p99 under 1 s of the entries acknowledged during the burst;
- every_entry_within_one_sync_interval_without_push: in `pull` mode, every entry on every member
  within `pull_bound_ms` of its acknowledgement: sync_interval_s + sync_jitter_s, plus six
  round trips of the slowest link for the round that carries it (crisis_report.pull_bound_ms);
- wire_bytes_under_3x_encoded_entry: on every member, in every mode run, bytes received per
  entry it received under 3x the mean encoded entry.

    .venv/bin/python scripts/bench_crisis.py [--nodes 27] [--modes push,pull] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    child_pids,
    emit,
    log,
    machine,
    proc_cpu_seconds,
    proc_status_kb,
    summary,
    tree_cpu_seconds,
    wall_ms,
    work_dir,
)
from crisis_load import Ledger, plan, submit
from crisis_report import aims, lines_of, logged, pull_bound_ms, wire_figures

from node.app.consortium import build_consortium, free_port
from node.app.procs import NodeGroup, logs_of
from node.cli.operator_client import OperatorClient
from node.config import NodeConfig
from node.credentials.secret_files import read_secret
from node.errors import NodeError

MIB = 1024


def wan_plan(
    args: argparse.Namespace, configs: tuple[NodeConfig, ...], ports: list[int]
) -> dict[str, Any]:
    rng = random.Random(args.seed)
    low, high = args.delay_ms
    ids = [c.member_id for c in configs]
    delays = {
        f"{a}|{b}": round(rng.uniform(low, high), 1)
        for i, a in enumerate(ids)
        for b in ids[i + 1 :]
    }
    listeners = [
        {"member": c.member_id, "listen_port": c.peer_port, "target_port": port}
        for c, port in zip(configs, ports, strict=True)
    ]
    return {
        "listeners": listeners,
        "delays_ms": {"|".join(sorted(k.split("|"))): v for k, v in delays.items()},
        "loss": args.loss,
        "bandwidth_bps": args.bandwidth_mbit * 1e6,
        "seed": args.seed,
    }


def behind_logs(
    configs: tuple[NodeConfig, ...], expected: dict[str, int], errors: list[str]
) -> int:
    """How many (member, log) pairs are still short of the expected sizes (a member that does
    not answer counts as short of every log; its error is kept)."""
    short = 0
    for config in configs:
        try:
            logs = client_of(config).call("GET", "/v1/status")["logs"]
        except NodeError as e:
            errors.append(f"{config.member_id}: status: {e}")
            short += len(expected)
            continue
        short += sum(logs.get(o, {}).get("size", 0) < size for o, size in expected.items())
    return short


def client_of(config: NodeConfig) -> OperatorClient:
    """An operator client patient enough for a node among dozens on two cores."""
    return OperatorClient(config.operator_url, read_secret(config.token_path), 300.0)


def arrivals_on(config: NodeConfig, errors: list[str]) -> dict[tuple[str, int], int]:
    """(log, index) -> received_ms of every submission the member holds (none if its export
    fails: its error is kept, and every entry counts as missing there)."""
    out: dict[tuple[str, int], int] = {}
    try:
        for line in client_of(config).lines("/v1/export?types=pdq,vpdq,md5"):
            view = json.loads(line)
            for s in view.get("submissions", []):
                out[(s["log"], s["index"])] = s["received_ms"]
    except NodeError as e:
        errors.append(f"{config.member_id}: export: {e}")
        return {}
    return out


def peak_rss_mib(pid: int) -> float:
    """A node's peak resident memory with its SQLite writer process's."""
    kib = proc_status_kb(pid, "VmHWM") + sum(proc_status_kb(c, "VmHWM") for c in child_pids(pid))
    return round(kib / MIB, 1)


def start_all(group: NodeGroup, timeout_s: float) -> None:
    """Start the nodes side by side: one at a time, 27 take minutes on a loaded machine."""
    with ThreadPoolExecutor(8, thread_name_prefix="start") as pool:
        for node in group.nodes:
            pool.submit(node.start, timeout_s)
    if not all(n.running for n in group.nodes):
        raise RuntimeError("a node did not start: " + logs_of([n.log_path for n in group.nodes]))


def run_mode(mode: str, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    settings = {
        "push": mode == "push",
        "relay": True,
        "sync_interval_s": args.sync_interval,
        "sync_jitter_s": args.sync_jitter,
        # Through the proxy every peer connects from 127.0.0.1; across a WAN each has its own.
        "peer_max_connections_per_address": NodeConfig("m", "o").peer_max_connections,
    }
    setup = build_consortium(root / mode, args.nodes, time.time_ns() // 1_000_000, **settings)
    # The roster names each member at its proxy's port; the node listens behind it.
    ports = [free_port() for _ in setup.configs]
    configs = tuple(replace(c, peer_port=p) for c, p in zip(setup.configs, ports, strict=True))
    for config in configs:
        config.save()
    plan_path = root / mode / "wan.json"
    plan_path.write_text(json.dumps(wan_plan(args, setup.configs, ports)))
    proxy = subprocess.Popen(  # our own interpreter and script
        [sys.executable, str(Path(__file__).with_name("wan_proxy.py")), str(plan_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proxy.stdin is not None and proxy.stdout is not None
    try:
        if proxy.stdout.readline().strip() != "ready":
            raise RuntimeError("the WAN proxy did not start")
        log(f"{mode}: starting {len(configs)} nodes behind the WAN proxy")
        group = NodeGroup(configs)
        try:
            start_all(group, args.start_timeout)
            load_before = os.getloadavg()[0]
            log_offsets = [len(n.log()) for n in group.nodes]  # not the start's failures
            pids = [n.pid for n in group.nodes if n.pid is not None]
            cpu_before = [tree_cpu_seconds(p) for p in pids]
            result = load(mode, args, configs)
            result["nodes_cpu_s"] = [
                round(tree_cpu_seconds(p) - c, 1) for p, c in zip(pids, cpu_before, strict=True)
            ]
            result["nodes_peak_rss_mib"] = [peak_rss_mib(p) for p in pids]
            proxy_cpu = proc_cpu_seconds(proxy.pid)
            # Peer requests that failed (timeouts, resets), as the nodes logged them, and
            # requests their peers reset mid-way, with the repeats the log summarised.
            logs = [n.log()[o:] for n, o in zip(group.nodes, log_offsets, strict=True)]
            result["peer_request_failures"] = sum(logged(t, " failed: ") for t in logs)
            result["peer_requests_reset_by_peers"] = sum(logged(t, "peer API: ") for t in logs)
            result["load_average_1m"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
        finally:
            group.stop()
        proxy.stdin.write("stop\n")
        proxy.stdin.flush()
        wire = json.loads(proxy.stdout.readline())
    finally:
        if proxy.poll() is None:
            proxy.kill()
            proxy.wait()
    result["settings"] = {
        k: v for k, v in settings.items() if k != "peer_max_connections_per_address"
    }
    result["proxy_cpu_s"] = round(proxy_cpu, 1)
    result["wire"] = wire_figures(
        wire, configs, result.pop("_own"), result["entries"], result["encoded_entry_bytes"]
    )
    return result


def load(mode: str, args: argparse.Namespace, configs: tuple[NodeConfig, ...]) -> dict[str, Any]:
    """Run the streams, wait for every entry everywhere, and measure the latencies."""
    clients = [client_of(c) for c in configs]
    ledger = Ledger()
    jobs = plan(args, args.seed)
    log(f"{mode}: {len(jobs)} submits over {args.steady_seconds + args.burst_seconds} s")
    started = time.perf_counter()
    burst_ms = wall_ms() + args.steady_seconds * 1000
    with ThreadPoolExecutor(args.workers, thread_name_prefix="submit") as pool:
        for job in jobs:
            time.sleep(max(0.0, started + job.at - time.perf_counter()))
            pool.submit(submit, clients[job.member], job, ledger)
    streamed_s = time.perf_counter() - started
    expected: dict[str, int] = {}
    for log_name, index in ledger.entries:
        expected[log_name] = max(expected.get(log_name, 0), index + 1)
    log(f"{mode}: waiting for every entry on every member")
    waited = time.monotonic()
    status_errors: list[str] = []
    while (
        behind := behind_logs(configs, expected, status_errors)
    ) and time.monotonic() < waited + args.settle:
        time.sleep(0.5)
    log(f"{mode}: {behind} logs short on some member after {time.monotonic() - waited:.0f} s")
    if status_errors:
        log(f"{mode}: {len(status_errors)} status errors, the last: {status_errors[-1]}")
    held = [arrivals_on(c, status_errors) for c in configs]
    origin_of = {c.origin: i for i, c in enumerate(configs)}
    groups: dict[str, list[float]] = {"before_burst": [], "during_burst": [], "incident": []}
    each_member: list[float] = []  # ack to stored, on each member but the origin
    missing = 0
    own = [0] * len(configs)
    for ref, (acked, incident, member, _size) in ledger.entries.items():
        own[origin_of.get(ref[0], member)] += 1
        times = [h.get(ref) for h in held]
        if None in times:
            missing += 1
            continue
        arrived = [t - acked for i, t in enumerate(times) if t is not None and i != member]
        each_member += arrived
        latency = max(arrived)
        groups["during_burst" if acked >= burst_ms else "before_burst"].append(latency)
        if incident:
            groups["incident"].append(latency)
    sizes = [size for *_, size in ledger.entries.values()]
    return {
        "submits": len(jobs),
        "entries": len(ledger.entries),
        "incident_entries": sum(1 for e in ledger.entries.values() if e[1]),
        "submit_errors": len(ledger.errors),
        "submit_error_samples": ledger.errors[:3],
        "status_errors": len(status_errors),
        "status_error_samples": status_errors[:3],
        "planned_s": args.steady_seconds + args.burst_seconds,
        "streamed_s": round(streamed_s, 1),
        "missing": missing,
        "latency_ms": {k: summary(v) for k, v in groups.items()},
        "each_member_latency_ms": summary(each_member),
        "entries_over_1s": sum(
            v > 1000 for k in ("before_burst", "during_burst") for v in groups[k]
        ),
        "submit_ack_ms": summary(ledger.ack_ms),
        "latency_max_all_ms": round(max((max(v) for v in groups.values() if v), default=0.0), 1),
        "encoded_entry_bytes": round(sum(sizes) / max(1, len(sizes)), 1),
        "_own": own,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=27)
    parser.add_argument("--modes", default="push,pull", help="push (push and relay), pull")
    parser.add_argument("--steady-rate", type=float, default=2.0, help="takedowns a second")
    parser.add_argument("--steady-seconds", type=float, default=30.0, help="before the burst")
    parser.add_argument("--burst-members", type=int, default=3)
    parser.add_argument("--burst-hashes", type=int, default=1000, help="per burst member")
    parser.add_argument("--burst-seconds", type=float, default=60.0)
    parser.add_argument("--burst-batch", type=int, default=10, help="hashes a burst submit")
    parser.add_argument("--vpdq-frames", type=int, default=16)
    parser.add_argument(
        "--delay-ms", type=float, nargs=2, default=[20.0, 150.0], metavar=("LOW", "HIGH")
    )
    parser.add_argument("--loss", type=float, default=0.01, help="share of requests reset")
    parser.add_argument("--bandwidth-mbit", type=float, default=10.0, help="per link (0: none)")
    parser.add_argument("--sync-interval", type=float, default=30.0)
    parser.add_argument("--sync-jitter", type=float, default=3.0)
    parser.add_argument("--settle", type=float, help="s to wait for every entry (default 3 syncs)")
    parser.add_argument("--workers", type=int, default=16, help="client threads submitting")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--start-timeout", type=float, default=180.0, help="s for a node to start")
    parser.add_argument("--dir", type=Path, help="work here and keep it (default: a temp dir)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if args.settle is None:
        args.settle = max(60.0, 3 * (args.sync_interval + args.sync_jitter))
    if (
        args.nodes < 2
        or not modes
        or not set(modes) <= {"push", "pull"}
        or not 0 < args.burst_members <= args.nodes
        or min(args.steady_rate, args.burst_seconds, args.burst_hashes, args.burst_batch) <= 0
        or not 0 <= args.loss < 1
        or not 0 <= args.delay_ms[0] <= args.delay_ms[1]
    ):
        parser.error("at least 2 nodes, modes push and/or pull, positive rates and sizes")
    with work_dir(args.dir, "bench-crisis-") as root:
        results = {}
        for mode in modes:
            results[mode] = run_mode(mode, args, root)
            (root / f"{mode}.json").write_text(json.dumps(results[mode]))  # kept with --dir
    settings = {
        k: getattr(args, k)
        for k in (
            "nodes", "steady_rate", "steady_seconds", "burst_members", "burst_hashes",
            "burst_seconds", "burst_batch", "vpdq_frames", "delay_ms", "loss", "bandwidth_mbit",
            "seed",
        )
    }  # fmt: skip
    settings |= {"sync_interval_s": args.sync_interval, "sync_jitter_s": args.sync_jitter}
    settings["pull_bound_ms"] = pull_bound_ms(args)
    result = {
        "benchmark": "crisis",
        "settings": settings,
        "modes": results,
        "aims_met": aims(results, args),
        "machine": machine(),
    }
    emit(result, args.json, lines_of(result))


if __name__ == "__main__":
    main()
