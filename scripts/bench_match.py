#!/usr/bin/env python3
"""Benchmark PDQ matching: our exact index against brute force and ThreatExchange's PDQIndex.

N random 256-bit hashes are stored; queries are near-duplicates of stored hashes planted at
every distance 0..31 (the same number at each). For each matcher, in one process and on one
core: build time, resident memory added by the index (and the peak while building), single
queries a second, and recall of the planted originals within the radius (31). Our index
also reports batched queries a second. ThreatExchange's `threatexchange` package (faiss
IndexBinaryMultiHash) is measured when it is installed (`pip install threatexchange[faiss]`),
and skipped with a message otherwise.

    .venv/bin/python scripts/bench_match.py [--n 1000000] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

# One core: set before numpy or faiss start their thread pools.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from node.matching.pdq_index import PdqIndex, columns, hashes_to_words, scan_columns  # noqa: E402

RADIUS = 31


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    # Writing 5 to clear_refs resets VmHWM (Linux >= 4.0), so each build gets its own peak.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def make_data(n: int, per_distance: int, seed: int) -> tuple[np.ndarray, list[bytes], list[int]]:
    """N random hashes; queries planted at distances 0..RADIUS; the row each came from."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    queries: list[bytes] = []
    origins: list[int] = []
    for distance in range(RADIUS + 1):
        for row in rng.choice(n, size=per_distance, replace=False):
            q = hashes[row].copy()
            for bit in rng.choice(256, size=distance, replace=False):
                q[bit // 8] ^= np.uint8(1 << (bit % 8))
            queries.append(q.tobytes())
            origins.append(int(row))
    return hashes, queries, origins


def measure(
    name: str,
    build: Callable[[], Any],
    query: Callable[[Any, bytes], set[int]],
    queries: list[bytes],
    origins: list[int],
    batch: Callable[[Any, list[bytes]], Any] | None = None,
) -> dict[str, Any]:
    gc.collect()
    _reset_peak()
    rss_before = _status_kb("VmRSS")
    started = time.perf_counter()
    index = build()
    build_s = time.perf_counter() - started
    rss_after = _status_kb("VmRSS")
    peak = _status_kb("VmHWM")
    for q in queries[:20]:  # warm caches and lazy initialisation
        query(index, q)
    found = 0
    started = time.perf_counter()
    for q, origin in zip(queries, origins, strict=True):
        found += origin in query(index, q)
    elapsed = time.perf_counter() - started
    result: dict[str, Any] = {
        "matcher": name,
        "build_s": round(build_s, 3),
        "rss_mb": round((rss_after - rss_before) / 1024, 1),
        "peak_build_mb": round((peak - rss_before) / 1024, 1),
        "queries": len(queries),
        "queries_per_s": round(len(queries) / elapsed, 1),
        "recall": found / len(queries),
    }
    if batch is not None:
        started = time.perf_counter()
        batch(index, queries)
        result["batch_queries_per_s"] = round(len(queries) / (time.perf_counter() - started), 1)
    del index
    gc.collect()
    return result


def bench_ours(hashes: np.ndarray, queries: list[bytes], origins: list[int]) -> dict[str, Any]:
    def query(index: PdqIndex, q: bytes) -> set[int]:
        return {row for row, _ in index.search(q, RADIUS)}

    def batch(index: PdqIndex, qs: list[bytes]) -> None:
        index.search_many(qs, RADIUS)

    return measure(
        "hashmesh PdqIndex", lambda: PdqIndex.build(hashes), query, queries, origins, batch
    )


def bench_brute(hashes: np.ndarray, queries: list[bytes], origins: list[int]) -> dict[str, Any]:
    def query(cols: np.ndarray, q: bytes) -> set[int]:
        rows, _ = scan_columns(cols, hashes_to_words([q])[0], RADIUS)
        return set(rows.tolist())

    return measure(
        "numpy brute force (4 uint64 columns)",
        lambda: columns(hashes_to_words(hashes)),
        query,
        queries,
        origins,
    )


def bench_threatexchange(
    hashes: np.ndarray, queries: list[bytes], origins: list[int]
) -> dict[str, Any]:
    # Optional: imported here so that the rest runs without it.
    try:
        import faiss  # noqa: PLC0415
        from threatexchange.signal_type.pdq.pdq_index import PDQIndex  # noqa: PLC0415
    except ImportError as e:
        return {"matcher": "threatexchange PDQIndex", "skipped": f"not installed ({e})"}

    faiss.omp_set_num_threads(1)
    # Its API takes hex strings; converting them is not counted in its build time.
    text = hashes.tobytes().hex()
    hexes = [text[i : i + 64] for i in range(0, len(text), 64)]

    def query(index: Any, q: bytes) -> set[int]:
        return {m.metadata for m in index.query(q.hex())}

    result = measure(
        "threatexchange PDQIndex (faiss IndexBinaryMultiHash)",
        lambda: PDQIndex(entries=zip(hexes, range(len(hexes)), strict=True)),
        query,
        queries,
        origins,
    )
    result["version"] = _version("threatexchange")
    result["faiss_version"] = faiss.__version__
    return result


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="stored hashes (1,000,000)")
    ap.add_argument("--per-distance", type=int, default=32, help="queries at each distance")
    ap.add_argument(
        "--brute-queries", type=int, default=320, help="queries timed for brute force (slow)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-threatexchange", action="store_true")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    hashes, queries, origins = make_data(args.n, args.per_distance, args.seed)
    # Every other query gives brute force a sample across all distances.
    step = max(1, len(queries) // args.brute_queries)
    results = [
        bench_ours(hashes, queries, origins),
        bench_brute(hashes, queries[::step], origins[::step]),
    ]
    if args.skip_threatexchange:
        results.append({"matcher": "threatexchange PDQIndex", "skipped": "--skip-threatexchange"})
    else:
        results.append(bench_threatexchange(hashes, queries, origins))
    report = {
        "n": args.n,
        "radius": RADIUS,
        "planted_distances": f"0..{RADIUS}",
        "queries_per_distance": args.per_distance,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, pinned to one core",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "results": results,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{args.n:,} random PDQ hashes; queries planted at distances 0..{RADIUS}; one core")
    for r in results:
        if "skipped" in r:
            print(f"  {r['matcher']}: skipped: {r['skipped']}")
            continue
        batch = f", batched {r['batch_queries_per_s']:,.0f}/s" if "batch_queries_per_s" in r else ""
        print(
            f"  {r['matcher']}: {r['queries_per_s']:,.0f} queries/s{batch}, "
            f"recall {r['recall']:.4f} ({r['queries']} queries), build {r['build_s']:.2f} s, "
            f"+{r['rss_mb']:.0f} MB resident (peak +{r['peak_build_mb']:.0f} MB while building)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
