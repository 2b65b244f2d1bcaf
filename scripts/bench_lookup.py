#!/usr/bin/env python3
"""Benchmark exact-hash lookups through a running node's operator API, in batches, against the
baseline of the same lookups straight on the node's SQLite store (no HTTP, no JSON) in the
same run.

One node holds N md5 hashes (default 100,000), submitted through the API in batches of 1,000
(that rate is reported too). Clients then look up random held hashes in batches of 1, 100 and
1,000 per request, with C requests in flight; the figure is hashes looked up a second.

    .venv/bin/python scripts/bench_lookup.py [--hashes 100000] [--clients 4] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import emit, log, machine, md5_hex, work_dir

from node.app.consortium import build_consortium
from node.app.procs import NodeProcess
from node.cli.operator_client import OperatorClient
from node.store.sqlite.store import SqliteStore


def held_hash(i: int) -> str:
    """The i-th md5 value the node holds."""
    return md5_hex("lookup", i)


def through_api(client: OperatorClient, n: int, batch: int, clients: int, seconds: float) -> float:
    """Hashes looked up a second over HTTP with `clients` requests in flight."""

    def worker(number: int) -> int:
        rng = random.Random(batch * 1000 + number)  # one each: Random is not for sharing
        done = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            hashes = [
                {"signal_type": "md5", "value": held_hash(rng.randrange(n))} for _ in range(batch)
            ]
            result = client.call("POST", "/v1/lookup", {"hashes": hashes})
            assert all(r["found"] for r in result["results"])
            done += batch
        return done

    start = time.monotonic()
    with ThreadPoolExecutor(clients) as pool:
        total = sum(pool.map(worker, range(clients)))
    return total / (time.monotonic() - start)


async def on_store(db: Path, n: int, batch: int, seconds: float) -> float:
    """Hashes looked up a second by Store.find_adds on the same database, in-process."""
    store = SqliteStore(db)
    await store.open()
    rng = random.Random(batch)
    done = 0
    start = time.monotonic()
    try:
        while time.monotonic() - start < seconds:
            keys = [bytes.fromhex(held_hash(i)) for i in rng.sample(range(n), batch)]
            found = await store.find_adds("md5", keys)
            assert len(found) == batch
            done += batch
    finally:
        await store.close()
    return done / (time.monotonic() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hashes", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with work_dir(None, "hashmesh-bench-lookup-") as root:
        setup = build_consortium(root, 1, time.time_ns() // 1_000_000)
        [config] = setup.configs
        node = NodeProcess(config).start()
        try:
            client = OperatorClient.for_node(config)
            log(f"submitting {args.hashes} hashes")
            submit_started = time.monotonic()
            for start in range(0, args.hashes, 1000):
                end = min(args.hashes, start + 1000)
                items = [{"signal_type": "md5", "value": held_hash(i)} for i in range(start, end)]
                client.call("POST", "/v1/submit", {"items": items})
            submit_s = time.monotonic() - submit_started
            api = {}
            for batch in (1, 100, 1000):
                log(f"API lookups, batches of {batch}")
                api[batch] = through_api(client, args.hashes, batch, args.clients, args.seconds)
        finally:
            node.stop()
        store = {}
        for batch in (1, 100, 1000):
            log(f"store lookups, batches of {batch}")
            db = config.data_dir / "hashmesh.db"
            store[batch] = asyncio.run(on_store(db, args.hashes, batch, args.seconds))
    result: dict[str, Any] = {
        "benchmark": "lookup",
        "hashes_held": args.hashes,
        "clients": args.clients,
        "submit_per_s": round(args.hashes / submit_s),
        "api_lookups_per_s": {str(b): round(v) for b, v in api.items()},
        "baseline_store_lookups_per_s": {str(b): round(v) for b, v in store.items()},
        "machine": machine(),
    }
    lines = [
        f"submitted {args.hashes} md5 hashes in batches of 1000: {args.hashes / submit_s:,.0f} /s",
        f"exact lookups, {args.hashes} md5 hashes held, {args.clients} clients:",
    ]
    for b in (1, 100, 1000):
        share = api[b] / store[b] * 100
        lines.append(
            f"  batch {b:5}: {api[b]:10,.0f} /s via the operator API   "
            f"{store[b]:10,.0f} /s on the store directly ({share:.0f}%)"
        )
    emit(result, args.json, lines)
    return 0


if __name__ == "__main__":
    sys.exit(main())
