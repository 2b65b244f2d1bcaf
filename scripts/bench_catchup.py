#!/usr/bin/env python3
"""Benchmark catch-up: a fresh node pulls N entries of one peer's log over loopback HTTP,
verified and stored, side by side with its baselines measured in the same run.

Steps, all in one run:
1. The source member's own log of N add entries is built directly on disk (LogWriter plans,
   the store's own write statements in big batches, a final checkpoint signed with its
   checkpoint key).
2. Baseline (a): the same rows and Merkle nodes appended to a fresh database of the same
   schema with the store's own write statements on one sqlite3 connection in this process,
   one transaction per page of `page_size` entries (the node's default unless given) as the
   joiner stores them; also in 1000-row transactions, the page size of the first figures, and
   (from step 1) in big batches. Baseline (b): Ed25519 verifications a second, i.e. the ceiling
   if every entry carried its own signature. Also the joiner's protocol work alone (page
   decoding, Merkle verification, entry decoding) a second, in this process.
3. The source node starts; a fresh joiner starts and pulls from it through a byte-counting
   TCP proxy (the roster names the proxy's port; the source listens elsewhere). The clock
   stops when the joiner's status shows all N entries under the source's checkpoint.
4. The joiner stores the pages it verified while its store was busy in one transaction, so
   its transactions are often larger than a page: their mean size is read from its /metrics
   (hashmesh_peer_batch_entries), and (a) is measured again in transactions of that size
   (in whole pages), the like-for-like baseline.
Reported: entries a second end to end and as a share of (a) at both sizes (the aim is judged
against the joiner's own transaction size) and as a multiple of (b), bytes on the wire per
entry against the encoded entry's size, resident memory of both nodes (and of the
joiner's SQLite writer process), and the CPU the joiner, its writer and the source used while
pulling, in microseconds an entry.

    .venv/bin/python scripts/bench_catchup.py [--entries 1000000] [--signal pdq] [--json]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    CountingProxy,
    child_pids,
    children_rss_kb,
    emit,
    log,
    machine,
    proc_cpu_seconds,
    proc_status_kb,
    rate,
    rate_for,
    timed,
    tree_cpu_seconds,
    work_dir,
)
from catchup_log import (
    SIGNAL_BYTES,
    Page,
    fresh_store_seconds,
    make_pages,
    rechunk,
    save_checkpoint,
    store_pages,
)
from catchup_report import MEMORY_AIM_BYTES, lines_of

from node.app.consortium import build_consortium, free_port
from node.app.procs import NodeProcess
from node.cli.operator_client import OperatorClient
from node.config import NodeConfig
from node.core import wire
from node.credentials.key_files import load_key
from node.store.rows import entry_row
from protocol import merkle
from protocol.merkle import NodeId
from protocol.replica import LogReplica
from protocol.roster import SignedRoster
from protocol.signing import SigningKey, verify

NODE_PAGE_SIZE: int = NodeConfig(member_id="", origin="").page_size
#: Baseline (a) is also measured in transactions of the page size the first figures used.
SMALL_TRANSACTION = 1000


def protocol_rate(pages: list[Page], origin: str, checkpoint: bytes, roster: bytes) -> float:
    """Entries a second through the joiner's CPU work on one core, without I/O: decoding each
    page from the wire, verifying it against the checkpoint, decoding entries into rows."""
    n = pages[-1].start + len(pages[-1].rows)
    all_nodes: dict[NodeId, bytes] = {}
    for p in pages:
        all_nodes.update(p.nodes)
    bodies = []
    for p in pages:
        end = p.start + len(p.rows)
        proof = merkle.consistency_proof(end, n, all_nodes) if end < n else []
        raws = tuple(r.raw for r in p.rows)
        bodies.append(wire.encode_page(wire.EntriesPage(checkpoint, p.start, raws, tuple(proof))))
    del all_nodes
    members = SignedRoster.decode(roster).roster
    replica = LogReplica(origin)
    limit = len(pages[0].rows)
    with timed() as t:
        for body in bodies:
            page = wire.decode_page(body, 64 << 20, limit)
            plan = replica.verify_entries(
                page.start, page.entries, page.checkpoint, page.proof, members
            )
            [entry_row(e.idx, e.raw, e.entry, 0) for e in plan.entries]
            replica.commit(plan)
    return rate(n, t[0])


def verify_rate(seconds: float) -> float:
    key = SigningKey.generate()
    message = random.Random(1).randbytes(100)
    signature, public = key.sign(message), key.public
    return rate_for(seconds, lambda: verify(public, message, signature))


def stored_batches(joiner: NodeConfig) -> tuple[float, float]:
    """(entries, transactions) the joiner stored peers' entries in, from its /metrics."""
    text = OperatorClient.for_node(joiner).call("GET", "/metrics").decode()
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("hashmesh_peer_batch_entries_sum", "hashmesh_peer_batch_entries_count"):
            found[name] = float(value)
    return found.get("hashmesh_peer_batch_entries_sum", 0.0), found.get(
        "hashmesh_peer_batch_entries_count", 0.0
    )


@dataclass
class PeakRss:
    """Resident kB of the joiner and its writer process, the largest sampled while pulling."""

    joiner: int = 0
    writer: int = 0
    together: int = 0  # the largest sum of one sample

    def sample(self, pid: int) -> None:
        joiner, writer = proc_status_kb(pid), children_rss_kb(pid)
        self.joiner = max(self.joiner, joiner)
        self.writer = max(self.writer, writer)
        self.together = max(self.together, joiner + writer)


def wait_caught_up(
    joiner: NodeConfig, origin: str, n: int, timeout_s: float, pid: int, peak: PeakRss
) -> float:
    """Seconds until the joiner holds n entries of origin under a checkpoint, sampling the
    resident memory of it and its writer into `peak` meanwhile."""
    client = OperatorClient.for_node(joiner)
    start = time.perf_counter()
    while True:
        peak.sample(pid)
        held = client.call("GET", "/v1/status")["logs"].get(origin, {})
        if held.get("size", 0) >= n and held.get("checkpoint_size", 0) >= n:
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError(f"joiner holds {held.get('size', 0)} of {n} after {timeout_s} s")
        time.sleep(0.05 if n < 100_000 else 0.25)


def high_water_kb(pid: int) -> tuple[int, int]:
    """The kernel's record of the largest resident kB (VmHWM) of a process and of its
    children (the writer) together: peaks between two samples too."""
    writer = sum(proc_status_kb(child, "VmHWM") for child in child_pids(pid))
    return proc_status_kb(pid, "VmHWM"), writer


def wait_index_loaded(node: NodeConfig, timeout_s: float) -> float:
    """Seconds until the node's match index has loaded what its store holds: the source is
    then a peer in its steady state, not one still loading after a start, whose work would
    share the machine with the catch-up being measured."""
    client = OperatorClient.for_node(node)
    start = time.perf_counter()
    while not client.call("GET", "/v1/status")["match_index"]["loaded"]:
        if time.perf_counter() - start > timeout_s:
            raise TimeoutError(f"the source's match index did not load in {timeout_s} s")
        time.sleep(0.1)
    return time.perf_counter() - start


def run(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    n, page_size = args.entries, args.page_size
    setup = build_consortium(
        root, 2, time.time_ns() // 1_000_000, sync_interval_s=10.0, page_size=page_size
    )
    source, joiner = setup.configs
    # The roster names the proxy's port for the source; the source listens on another one.
    proxy_port, source_port = source.peer_port, free_port()
    if not args.direct:
        source = replace(source, peer_port=source_port)
        source.save()
    _, key = load_key(source.checkpoint_key_path)

    log(f"building the source's log of {n} entries")
    with timed() as t_build:
        pages, checkpoint, entry_bytes = make_pages(
            source.origin, key, n, page_size, args.signal, args.seed
        )
    source.data_dir.mkdir(parents=True, exist_ok=True)
    big = max(1, args.fill_batch // page_size)
    log("filling the source's store (big batches)")
    fill_s = store_pages(source.data_dir / "hashmesh.db", source.origin, pages, big)
    save_checkpoint(source.data_dir / "hashmesh.db", source.origin, n, checkpoint)
    log(f"baseline (a): {page_size}-row transactions (one a page) into a fresh store")
    baseline_s = fresh_store_seconds(root / "baseline", source.origin, pages)
    small_s = None
    if page_size != SMALL_TRANSACTION:
        log(f"baseline (a) at the earlier page size: {SMALL_TRANSACTION}-row transactions")
        small_pages = rechunk(pages, SMALL_TRANSACTION)
        small_s = fresh_store_seconds(root / "baseline-small", source.origin, small_pages)
        del small_pages
    log("baseline (b): Ed25519 verifications a second; the protocol work alone")
    verify_per_s = verify_rate(args.verify_seconds)
    protocol_per_s = protocol_rate(pages, source.origin, checkpoint, setup.roster)

    log("catch-up: starting the source, the proxy and the joiner")
    source_node = NodeProcess(source)
    joiner_node = NodeProcess(joiner)
    proxy = CountingProxy(proxy_port, source_port)
    try:
        source_node.start(timeout_s=120)
        source_load_s = wait_index_loaded(source, args.timeout)
        if not args.direct:
            proxy.start()
        with timed() as t_start:
            joiner_node.start(timeout_s=120)
        assert joiner_node.pid is not None and source_node.pid is not None
        idle_rss = proc_status_kb(joiner_node.pid)
        cpu_before = cpu_of(joiner_node.pid, source_node.pid)
        peak = PeakRss()
        pulled_s = wait_caught_up(joiner, source.origin, n, args.timeout, joiner_node.pid, peak)
        total_s = t_start[0] + pulled_s
        cpu_after = cpu_of(joiner_node.pid, source_node.pid)
        cpu_used = [b - a for a, b in zip(cpu_before, cpu_after, strict=True)]
        joiner_rss = proc_status_kb(joiner_node.pid)
        writer_rss = children_rss_kb(joiner_node.pid)
        joiner_hwm, writer_hwm = high_water_kb(joiner_node.pid)
        source_rss = proc_status_kb(source_node.pid)
        up, down = proxy.counts.snapshot()
        roots = [
            OperatorClient.for_node(c).call("GET", "/v1/status")["logs"][source.origin]["root"]
            for c in (source, joiner)
        ]
        batch_sum, batch_count = stored_batches(joiner)
    except BaseException:
        for node in (joiner_node, source_node):
            sys.stderr.write(node.log()[-3000:])
        raise
    finally:
        joiner_node.stop()
        source_node.stop()
        proxy.stop()
    if roots[0] != roots[1]:
        raise AssertionError(f"the joiner's root {roots[1]} is not the source's {roots[0]}")

    # (a) again in transactions of the joiner's mean size (in whole pages): catch-up stores the
    # pages verified while the store was busy together, so that is the like-for-like figure.
    mean_batch = batch_sum / batch_count if batch_count else float(page_size)
    per_batch = max(1, round(mean_batch / page_size))
    log(f"baseline (a) at the joiner's transactions: {per_batch * page_size}-row transactions")
    joiner_batch_s = fresh_store_seconds(root / "baseline-joiner", source.origin, pages, per_batch)
    del pages
    catchup_per_s = rate(n, total_s)
    baseline_per_s = rate(n, baseline_s)
    like_per_s = rate(n, joiner_batch_s)
    return {
        "benchmark": "catchup",
        "entries": n,
        "signal_type": args.signal,
        "page_size": page_size,
        "machine": machine(),
        "source_build_s": round(t_build[0], 2),
        "source_index_load_s": round(source_load_s, 2),
        "encoded_entry_bytes": round(entry_bytes / n, 1),
        "catchup": {
            "seconds": round(total_s, 3),
            "joiner_start_s": round(t_start[0], 3),
            "entries_per_s": round(catchup_per_s),
            "share_of_sqlite_baseline": round(catchup_per_s / baseline_per_s, 3),
            "mean_entries_per_transaction": round(mean_batch),
            "share_of_sqlite_at_joiner_transactions": round(catchup_per_s / like_per_s, 3),
            "multiple_of_verify_ceiling": round(catchup_per_s / verify_per_s, 2),
            "roots_equal": True,
        },
        "baseline_sqlite_page_batches": {
            "seconds": round(baseline_s, 3),
            "entries_per_s": round(baseline_per_s),
            "rows_per_transaction": page_size,
        },
        "baseline_sqlite_joiner_batches": {
            "seconds": round(joiner_batch_s, 3),
            "entries_per_s": round(like_per_s),
            "rows_per_transaction": per_batch * page_size,
        },
        "baseline_sqlite_1000_row_batches": None
        if small_s is None
        else {
            "seconds": round(small_s, 3),
            "entries_per_s": round(rate(n, small_s)),
            "rows_per_transaction": SMALL_TRANSACTION,
        },
        "baseline_sqlite_big_batches": {
            "seconds": round(fill_s, 3),
            "entries_per_s": round(rate(n, fill_s)),
            "rows_per_transaction": big * page_size,
        },
        "baseline_verify_per_entry": {"verifications_per_s": round(verify_per_s)},
        "protocol_cpu_only": {"entries_per_s": round(protocol_per_s)},
        "wire": {
            "bytes_down": down,
            "bytes_up": up,
            "down_per_entry": round(down / n, 1),
            "total_per_entry": round((up + down) / n, 1),
            "overhead_vs_encoded": round(down / entry_bytes, 3),
            "connections": proxy.counts.connections,
        },
        "cpu_us_per_entry_while_pulling": {
            name: round(1e6 * seconds / n, 1)
            for name, seconds in zip(("joiner", "joiner_writer", "source"), cpu_used, strict=True)
        },
        "memory_kib": {
            "joiner_idle_rss": idle_rss,
            "joiner_rss": joiner_rss,
            "joiner_writer_rss": writer_rss,
            "joiner_peak_rss": max(joiner_hwm, peak.joiner),
            "joiner_writer_peak_rss": max(writer_hwm, peak.writer),
            # Each process's own peak, added: at least the largest sum at any one moment.
            "joiner_and_writer_peak_rss": max(joiner_hwm, peak.joiner)
            + max(writer_hwm, peak.writer),
            "joiner_and_writer_sampled_peak_rss": peak.together,
            "source_rss": source_rss,
        },
        "aims_met": {
            "at_least_80pct_of_sqlite": catchup_per_s >= 0.8 * like_per_s,
            "at_least_80pct_of_sqlite_at_page_transactions": catchup_per_s >= 0.8 * baseline_per_s,
            "at_least_5x_verify_ceiling": catchup_per_s >= 5 * verify_per_s,
            "joiner_and_writer_peak_under_400mb": (
                max(joiner_hwm, peak.joiner) + max(writer_hwm, peak.writer)
            )
            * 1024
            < MEMORY_AIM_BYTES,
        },
    }


def cpu_of(joiner: int, source: int) -> list[float]:
    """CPU seconds so far of the joiner's node process, its writer process and the source."""
    node = proc_cpu_seconds(joiner)
    return [node, tree_cpu_seconds(joiner) - node, proc_cpu_seconds(source)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument(
        "--page-size",
        type=int,
        default=NODE_PAGE_SIZE,
        help=f"entries a page, served and stored (the node's default, {NODE_PAGE_SIZE})",
    )
    parser.add_argument("--signal", choices=sorted(SIGNAL_BYTES), default="pdq")
    parser.add_argument("--fill-batch", type=int, default=50_000, help="rows a fill transaction")
    parser.add_argument("--verify-seconds", type=float, default=2.0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds for catch-up")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", type=Path, help="work here and keep it (default: a temp dir)")
    parser.add_argument("--direct", action="store_true", help="no proxy: bytes go uncounted")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.entries < 1 or args.page_size < 1:
        parser.error("--entries and --page-size are positive")
    with work_dir(args.dir, "bench-catchup-") as root:
        result = run(args, root)
    emit(result, args.json, lines_of(result))


if __name__ == "__main__":
    main()
