#!/usr/bin/env python3
"""Benchmark PDQ matching: our exact index against brute force and ThreatExchange's PDQIndex,
on hash banks of several shapes, and through a node's operator API.

For each shape of bank (scripts/pdq_data.py: `uniform` random bits; `clustered`, many variants
of each item close together; `skewed`, bits set with uneven, correlated frequencies), N hashes
are stored and queries are near-duplicates of stored hashes planted at every distance 0..31
(the same number at each). For each matcher, in one process and on one core: build time,
resident memory added by the index (and the peak while building), single queries a second,
and recall of the planted originals within the radius (31). Our index also reports batched
queries a second (all at once, and 100 a call, with 100 a call of queries matching nothing).
ThreatExchange's `threatexchange` package (faiss IndexBinaryMultiHash) is measured when it is
installed (`pip install threatexchange[faiss]`, or the `bench` extra), and skipped with a
message otherwise; then both indexes search the same queries in alternating rounds
(scripts/match_head_to_head.py), the ratio the aim (>= 3x) is read from.

The operator API part (scripts/match_api_bench.py) starts one node holding the `--api-shape`
bank and matches queries through `POST /v1/match`: one a request (queries a second, p50/p99
latency) and 100 a request, each part interleaved with the same queries searched by a
`PdqIndex` of the same hashes in this process, so that both see the same machine.

    .venv/bin/python scripts/bench_match.py [--n 1000000] [--shapes uniform,clustered,skewed]
        [--skip-api] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import subprocess
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from benchlib import work_dir  # noqa: E402
from match_api_bench import BATCH, through_api  # noqa: E402
from match_head_to_head import head_to_head, hex_entries  # noqa: E402
from pdq_data import SHAPES, far_queries, make_hashes, plant_queries  # noqa: E402

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


def measure(
    name: str,
    build: Callable[[], Any],
    query: Callable[[Any, bytes], set[int]],
    queries: list[bytes],
    origins: list[int],
    batch: Callable[[Any, list[bytes]], dict[str, float]] | None = None,
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
        result.update(batch(index, queries))
    del index
    gc.collect()
    return result


def bench_ours(
    hashes: np.ndarray, queries: list[bytes], origins: list[int], misses: list[bytes]
) -> dict[str, Any]:
    def query(index: PdqIndex, q: bytes) -> set[int]:
        return {row for row, _ in index.search(q, RADIUS)}

    def batch(index: PdqIndex, qs: list[bytes]) -> dict[str, float]:
        rates = {}
        for name, asked in (("queries", qs), ("misses", misses)):
            started = time.perf_counter()
            for start in range(0, len(asked), BATCH):
                index.search_many(asked[start : start + BATCH], RADIUS)
            rates[f"batch_{BATCH}_{name}_per_s"] = round(
                len(asked) / (time.perf_counter() - started), 1
            )
        started = time.perf_counter()
        index.search_many(qs, RADIUS)
        rates["batch_queries_per_s"] = round(len(qs) / (time.perf_counter() - started), 1)
        return rates

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
    entries = hex_entries(hashes)

    def query(index: Any, q: bytes) -> set[int]:
        return {m.metadata for m in index.query(q.hex())}

    result = measure(
        "threatexchange PDQIndex (faiss IndexBinaryMultiHash)",
        lambda: PDQIndex(entries=entries),
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


def bench_shape(shape: str, args: argparse.Namespace) -> dict[str, Any]:
    rng = np.random.default_rng(args.seed)
    hashes = make_hashes(shape, args.n, rng)
    queries, origins = plant_queries(hashes, RADIUS, args.per_distance, rng)
    misses = far_queries(len(queries), rng)
    # A sample across all distances for brute force, which is slow.
    step = max(1, len(queries) // args.brute_queries)
    results = [
        bench_ours(hashes, queries, origins, misses),
        bench_brute(hashes, queries[::step], origins[::step]),
    ]
    if args.skip_threatexchange:
        results.append({"matcher": "threatexchange PDQIndex", "skipped": "--skip-threatexchange"})
    else:
        results.append(bench_threatexchange(hashes, queries, origins))
    hits = [len(r) for r in PdqIndex.build(hashes).search_many(queries, RADIUS)]
    report: dict[str, Any] = {
        "shape": shape,
        "mean_hits_per_query": round(sum(hits) / len(hits), 1),
        "results": results,
    }
    theirs = results[2].get("queries_per_s")
    if theirs:
        report["ours_over_threatexchange"] = round(results[0]["queries_per_s"] / theirs, 2)
        # The aim's figure: both searching in alternating rounds, in the same minutes.
        report["head_to_head"] = head_to_head(hashes, queries, RADIUS)
    if shape == args.api_shape and not args.skip_api:
        with work_dir(None, "hashmesh-bench-match-") as root:
            # Near-duplicates never asked before, for the batches that are not repeats.
            fresh, _ = plant_queries(hashes, RADIUS, args.per_distance, rng)
            api = through_api(root, hashes, queries, origins, misses, fresh)
        hits, misses_ = api["hits"], api["misses"]
        api["shares_of_in_process"] = {
            "single": round(api["single_queries_per_s"] / api["single_in_process_per_s"], 3),
            "batch_never_asked": round(hits["api_first_per_s"] / hits["in_process_per_s"], 3),
            "batch_asked_before": round(hits["api_again_per_s"] / hits["in_process_per_s"], 3),
            "batch_misses": round(misses_["api_first_per_s"] / misses_["in_process_per_s"], 3),
            "batch_hits_cpu": _ratio(hits["api_per_node_cpu_s"], hits["in_process_per_cpu_s"]),
            "batch_misses_cpu": _ratio(
                misses_["api_per_node_cpu_s"], misses_["in_process_per_cpu_s"]
            ),
        }
        report["operator_api"] = api
    return report


def _ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when either was too small to measure."""
    return round(a / b, 3) if a and b else None


def _pct(share: float | None) -> str:
    return "unmeasured" if share is None else f"{share:.0%}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="stored hashes (1,000,000)")
    ap.add_argument("--shapes", default=",".join(SHAPES), help="banks to measure, in order")
    ap.add_argument("--per-distance", type=int, default=32, help="queries at each distance")
    ap.add_argument(
        "--brute-queries", type=int, default=320, help="queries timed for brute force (slow)"
    )
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip-threatexchange", action="store_true")
    ap.add_argument("--api-shape", default="uniform", help="the bank the node holds")
    ap.add_argument("--skip-api", action="store_true", help="no operator API part")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    shapes = [bench_shape(shape, args) for shape in args.shapes.split(",")]
    report = {
        "n": args.n,
        "radius": RADIUS,
        "planted_distances": f"0..{RADIUS}",
        "queries_per_distance": args.per_distance,
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, pinned to one core",
        "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
        "python": platform.python_version(),
        "numpy": np.__version__,
        "commit": _commit(),
        "shapes": shapes,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for shape in shapes:
        _print_shape(args.n, shape)
    return 0


def _print_shape(n: int, shape: dict[str, Any]) -> None:
    print(
        f"{n:,} {shape['shape']} PDQ hashes; queries planted at distances 0..{RADIUS} "
        f"({shape['mean_hits_per_query']} hits a query on average); one core"
    )
    for r in shape["results"]:
        if "skipped" in r:
            print(f"  {r['matcher']}: skipped: {r['skipped']}")
            continue
        batch = ""
        if "batch_queries_per_s" in r:
            batch = (
                f", batched {r['batch_queries_per_s']:,.0f}/s "
                f"({BATCH} a call: {r[f'batch_{BATCH}_queries_per_s']:,.0f}/s, "
                f"misses {r[f'batch_{BATCH}_misses_per_s']:,.0f}/s)"
            )
        print(
            f"  {r['matcher']}: {r['queries_per_s']:,.0f} queries/s{batch}, "
            f"recall {r['recall']:.4f} ({r['queries']} queries), build {r['build_s']:.2f} s, "
            f"+{r['rss_mb']:.0f} MB resident (peak +{r['peak_build_mb']:.0f} MB while building)"
        )
    if "ours_over_threatexchange" in shape:
        print(f"  single queries: {shape['ours_over_threatexchange']}x threatexchange's rate")
    if shape.get("head_to_head"):
        h = shape["head_to_head"]
        print(f"  alternating rounds: {h['ratios']}x, median {h['ratio_median']}x")
    api = shape.get("operator_api")
    if api:
        share = api["shares_of_in_process"]
        hits, misses = api["hits"], api["misses"]
        print(
            f"  operator API (one node, one kept-alive connection), beside the same queries "
            f"in process, interleaved: one a request {api['single_queries_per_s']:,.0f}/s "
            f"(p50 {api['single_p50_ms']} ms, p99 {api['single_p99_ms']} ms, "
            f"{share['single']:.0%}); {BATCH} a request: never asked "
            f"{hits['api_first_per_s']:,.0f}/s ({share['batch_never_asked']:.0%} of "
            f"{hits['in_process_per_s']:,.0f}/s), asked before {hits['api_again_per_s']:,.0f}/s "
            f"({share['batch_asked_before']:.0%}), misses {misses['api_first_per_s']:,.0f}/s "
            f"({share['batch_misses']:.0%} of {misses['in_process_per_s']:,.0f}/s); per CPU "
            f"second, hits {_pct(share['batch_hits_cpu'])}, "
            f"misses {_pct(share['batch_misses_cpu'])}"
            f"; recall {api['recall']:.4f}"
        )


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return out.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
