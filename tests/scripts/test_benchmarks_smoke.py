"""The benchmarks run end to end at a tiny size and print JSON with every figure, sane.

Each benchmark runs as a real command (its own interpreter, real node processes on 127.0.0.1),
exactly as docs/performance.md tells an operator to run it, only smaller.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def bench(script: str, *args: str, timeout_s: float = 120.0) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_catchup_benchmark_reports_every_figure_for_a_small_log() -> None:
    # --read-fix: the peer client's short reads (see scripts/benchlib.py) cut 1000-entry pages.
    r = bench("bench_catchup.py", "--entries", "2000", "--verify-seconds", "0.2", "--read-fix")
    assert r["benchmark"] == "catchup"
    assert r["entries"] == 2000
    c = r["catchup"]
    assert c["roots_equal"] is True
    assert positive(c["seconds"]) and positive(c["entries_per_s"])
    assert c["entries_per_s"] == round(2000 / c["seconds"])
    for key in ("baseline_sqlite_page_batches", "baseline_sqlite_big_batches"):
        assert positive(r[key]["entries_per_s"])
    verify_rate = r["baseline_verify_per_entry"]["verifications_per_s"]
    assert 1000 < verify_rate < 1_000_000  # Ed25519 in C: thousands to tens of thousands a second
    assert positive(r["protocol_cpu_only"]["entries_per_s"])
    baseline = r["baseline_sqlite_page_batches"]["entries_per_s"]
    assert math.isclose(c["share_of_sqlite_baseline"], c["entries_per_s"] / baseline, rel_tol=0.01)
    # Every entry crossed the counting proxy once: at least its own bytes, not wildly more.
    w = r["wire"]
    assert r["encoded_entry_bytes"] > 40
    assert r["encoded_entry_bytes"] <= w["down_per_entry"] < 3 * r["encoded_entry_bytes"]
    assert w["bytes_up"] > 0 and w["connections"] >= 1
    m = r["memory_kib"]
    assert 10_000 < m["joiner_rss"] <= m["joiner_peak_rss"] < 4_000_000
    assert m["joiner_idle_rss"] > 10_000 and m["source_rss"] > 10_000
    assert set(r["aims_met"]) == {"at_least_80pct_of_sqlite", "at_least_5x_verify_ceiling"}
    assert r["machine"]["cpus"] >= 1


def test_propagation_benchmark_reports_percentiles_for_both_modes() -> None:
    r = bench(
        "bench_propagation.py",
        "--nodes",
        "3",
        "--submissions",
        "12",
        "--rate",
        "20",
        "--interval",
        "0.5",
        "--jitter",
        "0.1",
        "--timeout",
        "20",
    )
    assert r["benchmark"] == "propagation"
    assert set(r["modes"]) == {"push", "schedule"}
    for mode, m in r["modes"].items():
        assert m["submissions"] == 12 and m["missing"] == 0, mode
        a = m["all_nodes_ms"]
        assert a["count"] == 12
        assert 0 <= a["p50"] <= a["p99"] <= a["max"] < 20_000, (mode, a)
        assert m["each_peer_ms"]["count"] == 12 * 2
        # Polling can only see a hash after the node stored it.
        assert m["observed_by_polling_ms"]["p50"] >= a["p50"] - 5
    assert r["modes"]["schedule"]["settings"]["push"] is False
    assert r["modes"]["push"]["settings"]["push"] is True
