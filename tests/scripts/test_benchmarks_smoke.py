"""The benchmarks and the load test run end to end at a tiny size and print JSON with every
figure, sane.

Each runs as a real command (its own interpreter, real node processes on 127.0.0.1), exactly as
docs/performance.md tells an operator to run it, only smaller.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

from node.config import NodeConfig

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

from crisis_report import logged  # noqa: E402  # a script, importable from scripts/
from load_test import differing_logs  # noqa: E402


def bench(script: str, *args: str, timeout_s: float = 120.0) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=ROOT,
        check=False,
    )
    # The load test exits with 1 when it fails; its JSON still says why.
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def positive(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_catchup_benchmark_reports_every_figure_for_a_small_log() -> None:
    # 9000 entries in the node's pages of 4000: two full pages and a short one.
    r = bench("bench_catchup.py", "--entries", "9000", "--verify-seconds", "0.2")
    assert r["benchmark"] == "catchup"
    assert r["entries"] == 9000
    assert r["page_size"] == NodeConfig("m", "o").page_size
    c = r["catchup"]
    assert c["roots_equal"] is True
    assert positive(c["seconds"]) and positive(c["entries_per_s"])
    # Both figures are rounded (seconds to the ms, the rate to the entry): compare loosely.
    assert math.isclose(c["entries_per_s"], 9000 / c["seconds"], rel_tol=0.01)
    keys = ("page_batches", "1000_row_batches", "big_batches", "joiner_batches")
    for key in keys:
        assert positive(r[f"baseline_sqlite_{key}"]["entries_per_s"]), key
    assert r["baseline_sqlite_page_batches"]["rows_per_transaction"] == r["page_size"]
    assert r["baseline_sqlite_1000_row_batches"]["rows_per_transaction"] == 1000
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
    assert 5_000 < m["joiner_writer_rss"] < 4_000_000  # the SQLite writer process was found
    # The aim adds each process's own peak: at least the largest sum of one sample.
    assert m["joiner_writer_rss"] <= m["joiner_writer_peak_rss"]
    together = m["joiner_peak_rss"] + m["joiner_writer_peak_rss"]
    assert m["joiner_and_writer_peak_rss"] == together
    assert 10_000 < m["joiner_and_writer_sampled_peak_rss"] <= together
    assert r["aims_met"]["joiner_and_writer_peak_under_400mb"] == (together * 1024 < 400e6)
    # The joiner's transactions (from its metrics) hold one page to all of the log.
    assert 1 <= c["mean_entries_per_transaction"] <= 9000
    like = r["baseline_sqlite_joiner_batches"]
    assert like["rows_per_transaction"] % r["page_size"] == 0
    assert math.isclose(
        c["share_of_sqlite_at_joiner_transactions"],
        c["entries_per_s"] / like["entries_per_s"],
        rel_tol=0.01,
    )
    assert set(r["aims_met"]) == {
        "at_least_80pct_of_sqlite",
        "at_least_80pct_of_sqlite_at_page_transactions",
        "at_least_5x_verify_ceiling",
        "joiner_and_writer_peak_under_400mb",
    }
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


def test_load_test_passes_with_every_hash_everywhere_and_equal_roots() -> None:
    r = bench(
        "load_test.py", "--nodes", "4", "--seconds", "5", "--rate", "10", "--settle", "30",
        timeout_s=180.0,
    )  # fmt: skip
    assert r["benchmark"] == "load"
    assert r["passed"] is True and r["error_total"] == 0, r["error_samples"]
    assert r["submissions"] == r["acknowledged"] == 50
    a = r["propagation_ms"]["all_nodes"]
    assert a["count"] == 50
    assert 0 <= a["p50"] <= a["p99"] <= a["max"] < 30_000
    assert r["propagation_ms"]["each_peer"]["count"] == 50 * 3
    assert r["converged"] is True and r["roots_differ"] == {}
    # Four logs, 50 entries over them: every node holds all of them.
    assert r["logs"] == 4 and r["entries_per_node"] == 50


def test_load_test_sees_a_log_that_differs_or_is_missing_on_a_node() -> None:
    configs = (NodeConfig("m1", "o/1"), NodeConfig("m2", "o/2"))
    same = {"m1": {"o/1": (3, "aa"), "o/2": (2, "bb")}, "m2": {"o/1": (3, "aa"), "o/2": (2, "bb")}}
    assert differing_logs(configs, same) == {}
    behind = {
        "m1": {"o/1": (3, "aa"), "o/2": (2, "bb")},
        "m2": {"o/1": (2, "a2"), "o/2": (2, "bb")},
    }
    assert set(differing_logs(configs, behind)) == {"o/1"}
    lacking = {"m1": {"o/1": (3, "aa"), "o/2": (2, "bb")}, "m2": {"o/2": (2, "bb")}}
    assert set(differing_logs(configs, lacking)) == {"o/1"}
    # A node that did not answer its status counts against every log.
    assert set(differing_logs(configs, {"m1": same["m1"]})) == {"o/1", "o/2"}


def test_match_benchmark_reports_every_shape_and_the_operator_api_path() -> None:
    r = bench(
        "bench_match.py",
        *("--n", "3000", "--per-distance", "1", "--brute-queries", "32"),
        "--skip-threatexchange",
        timeout_s=300.0,
    )
    assert [s["shape"] for s in r["shapes"]] == ["uniform", "clustered", "skewed"]
    for shape in r["shapes"]:
        ours = shape["results"][0]
        assert ours["recall"] == 1.0
        assert all(positive(ours[k]) for k in ("queries_per_s", "batch_100_queries_per_s"))
    api = r["shapes"][0]["operator_api"]
    assert api["recall"] == 1.0
    assert api["single_p50_ms"] <= api["single_p99_ms"]
    assert positive(api["single_queries_per_s"])
    for part in ("hits", "misses"):
        figures = ("api_first_per_s", "api_again_per_s", "in_process_per_s")
        assert all(positive(api[part][k]) for k in figures)
    shares = api["shares_of_in_process"]
    assert all(positive(shares[k]) for k in ("batch_never_asked", "batch_misses"))


def test_crisis_benchmark_reports_latencies_wire_bytes_and_aims_through_the_wan_proxy() -> None:
    r = bench(
        "bench_crisis.py", "--nodes", "4", "--steady-seconds", "2", "--burst-hashes", "12",
        "--burst-seconds", "2", "--sync-interval", "3", "--sync-jitter", "0.2", "--settle", "30",
        timeout_s=480.0,
    )  # fmt: skip
    assert r["benchmark"] == "crisis"
    assert set(r["modes"]) == {"push", "pull"}
    for mode, m in r["modes"].items():
        # 2 s of 2 a second, then 2 s more of it during the burst, and 3 members x 12 hashes.
        assert m["submit_errors"] == 0 and m["missing"] == 0, (mode, m["submit_error_samples"])
        assert m["entries"] == 8 + 36 and m["incident_entries"] == 36, mode
        lat = m["latency_ms"]
        assert lat["incident"]["count"] == 36
        assert lat["before_burst"]["count"] + lat["during_burst"]["count"] == 44
        for name, v in lat.items():
            if v["count"]:
                # Every entry crossed the WAN (20 ms one way at least) after its acknowledgement;
                # the benchmark's threads may take as long to see the answer on a busy machine.
                assert 0 <= v["p50"] <= v["p99"] <= v["max"] <= m["latency_max_all_ms"], name
        assert m["latency_max_all_ms"] < 30_000
        w = m["wire"]
        assert set(w["per_member"]) == {f"member{i}" for i in range(1, 5)}
        assert w["requests"] > 0 and w["connections"] > 0 and w["unknown_sender"] == 0
        # What a member received holds every entry it lacked, so at least their encoded bytes.
        assert w["received_per_entry"]["max"] >= m["encoded_entry_bytes"] > 40
        assert math.isclose(
            w["received_max_vs_encoded"],
            w["received_per_entry"]["max"] / m["encoded_entry_bytes"],
            rel_tol=0.01,
        )
        assert len(m["nodes_cpu_s"]) == len(m["nodes_peak_rss_mib"]) == 4
        assert all(10 < rss < 4000 for rss in m["nodes_peak_rss_mib"])
        assert all(positive(cpu) for cpu in m["nodes_cpu_s"])
        assert m["peer_request_failures"] >= 0 and m["peer_requests_reset_by_peers"] >= 0
    assert r["modes"]["push"]["settings"]["push"] is True
    assert r["modes"]["pull"]["settings"]["push"] is False
    # One sync interval (and its jitter), and the round that carries the entry over the WAN.
    assert r["settings"]["pull_bound_ms"] == 1000 * (3 + 0.2) + 6 * 2 * 150
    assert set(r["aims_met"]) == {
        "burst_p99_under_1s_with_push",
        "every_entry_within_one_sync_interval_without_push",
        "wire_bytes_under_3x_encoded_entry",
    }
    assert all(isinstance(v, bool) for v in r["aims_met"].values())


def test_the_crisis_report_counts_logged_failures_with_the_repeats_the_log_summarised() -> None:
    # Regression: failures were counted by lines, and a warning repeated within the node log's
    # window is written once, with a count.
    text = "\n".join(
        [
            "W peer member2: POST /v1/push failed: reset",
            "W peer member2: POST /v1/push failed: reset (repeated 7 times in the last 10 min)",
            "W peer member3: GET /v1/checkpoints failed: x (repeated 4 times in the last 2 min,"
            " summary only)",
            "I stored 5 entries",
        ]
    )
    assert logged(text, " failed: ") == 1 + 8 + 4
