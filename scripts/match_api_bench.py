"""The operator API part of scripts/bench_match.py: PDQ matches through `POST /v1/match` of a
running node, against the same hashes and queries in an in-process `PdqIndex`.

One node process holds the hashes (submitted through the API in batches of 1,000). The client
keeps one HTTP/1.1 connection open, as a platform's upload path would, and sends one request
at a time: single queries (one a request: queries a second, and p50/p99 latency of a
request); batches of 100 near-duplicates never asked before, then the same batches again (a
hash hit before has its corroborating near-duplicates remembered: node/matching/near_cache.py;
in a crisis the same variants are matched upload after upload); and batches of 100 queries
that match nothing. Each part alternates with the same queries searched in process
(`search_many` of the same batches), so that API and baseline see the same machine, whose
other tenants move rates by up to a factor of two from minute to minute; the node's CPU
seconds (from /proc) give a figure that other tenants move less.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from benchlib import log, percentile

from node.app.consortium import build_consortium
from node.app.procs import NodeProcess
from node.cli.operator_client import OperatorClient
from node.credentials.secret_files import read_secret
from node.matching.pdq_index import PdqIndex

BATCH = 100
RADIUS = 31
SUBMIT_BATCH = 1000


class Connection:
    """One kept-alive connection to a node's operator API."""

    def __init__(self, url: str, token: str) -> None:
        parts = urlsplit(url)
        self._conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def match(self, hashes: list[bytes]) -> list[dict[str, Any]]:
        body = {"hashes": [{"signal_type": "pdq", "value": h.hex()} for h in hashes]}
        self._conn.request("POST", "/v1/match", json.dumps(body), self._headers)
        response = self._conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"/v1/match answered {response.status}: {data[:200]!r}")
        results: list[dict[str, Any]] = json.loads(data)["results"]
        return results

    def close(self) -> None:
        self._conn.close()


def _fill(client: OperatorClient, hashes: Any) -> float:
    """Submit every hash; returns the seconds taken."""
    started = time.monotonic()
    for start in range(0, len(hashes), SUBMIT_BATCH):
        items = [
            {"signal_type": "pdq", "value": h.tobytes().hex()}
            for h in hashes[start : start + SUBMIT_BATCH]
        ]
        client.call("POST", "/v1/submit", {"items": items})
    return time.monotonic() - started


def _wait_indexed(client: OperatorClient, n: int, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        index = client.call("GET", "/v1/status")["match_index"]
        if index["loaded"] and index["hashes"]["pdq"] >= n:
            return
        time.sleep(0.5)
    raise RuntimeError(f"the node did not index {n} hashes in {timeout_s:.0f} s")


def through_api(
    root: Path,
    hashes: Any,
    queries: list[bytes],
    origins: list[int],
    misses: list[bytes],
    fresh: list[bytes],
) -> dict[str, Any]:
    """Matches through a node's operator API: rates, latency and recall of the planted rows."""
    setup = build_consortium(root, 1, time.time_ns() // 1_000_000)
    [config] = setup.configs
    node = NodeProcess(config).start()
    try:
        pid = node.pid
        cpus = sorted(os.sched_getaffinity(0))
        if pid is not None and len(cpus) > 1:
            # The node gets a core of its own, as on a server the client is not on.
            os.sched_setaffinity(pid, {cpus[-1]})
        client = OperatorClient.for_node(config)
        log(f"API: submitting {len(hashes):,} PDQ hashes")
        fill_s = _fill(client, hashes)
        _wait_indexed(client, len(hashes))
        conn = Connection(config.operator_url, read_secret(config.token_path))
        try:
            return _measure(conn, hashes, queries, origins, misses, fresh, fill_s, pid)
        finally:
            conn.close()
    finally:
        node.stop()


def _node_cpu_s(pid: int | None) -> float:
    """CPU seconds the node process has used (user and system), from /proc."""
    if pid is None:
        return float("nan")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _batches(
    conn: Connection,
    index: PdqIndex,
    asked: list[bytes],
    found: bool,
    pid: int | None,
    rounds: int = 2,
) -> dict[str, float]:
    """Queries a second through the API and in process, on `asked` in batches of BATCH:
    `rounds` times each, interleaved (in process, API, in process, ...) so that both see the
    same machine; the API's first round is the one that never asked them before. Also the
    queries per CPU second of the node and of the in-process searches. Every answer through
    the API is checked to have found something (`found`) or nothing."""
    api_s = [0.0] * rounds
    in_process_s = 0.0
    cpu = {"api": 0.0, "in_process": 0.0}
    for round_ in range(rounds):
        started, used = time.perf_counter(), time.process_time()
        for start in range(0, len(asked), BATCH):
            index.search_many(asked[start : start + BATCH], RADIUS)
        in_process_s += time.perf_counter() - started
        cpu["in_process"] += time.process_time() - used
        started, used = time.perf_counter(), _node_cpu_s(pid)
        answers = []
        for start in range(0, len(asked), BATCH):
            answers += conn.match(asked[start : start + BATCH])
        api_s[round_] = time.perf_counter() - started
        cpu["api"] += _node_cpu_s(pid) - used
        assert all(r["found"] == found for r in answers)
    n = len(asked)
    return {
        "api_first_per_s": round(n / api_s[0], 1),
        "api_again_per_s": round(n * (rounds - 1) / sum(api_s[1:]), 1),
        "in_process_per_s": round(n * rounds / in_process_s, 1),
        "api_per_node_cpu_s": _per(n * rounds, cpu["api"]),
        "in_process_per_cpu_s": _per(n * rounds, cpu["in_process"]),
    }


def _per(count: int, cpu_s: float) -> float | None:
    """Queries a CPU second; None when too little CPU was used to measure (tiny runs: the
    kernel counts a process's CPU in 10 ms ticks)."""
    return round(count / cpu_s, 1) if cpu_s > 0 else None


def _measure(
    conn: Connection,
    hashes: Any,
    queries: list[bytes],
    origins: list[int],
    misses: list[bytes],
    fresh: list[bytes],
    fill_s: float,
    pid: int | None,
) -> dict[str, Any]:
    index = PdqIndex.build(hashes)  # the in-process baseline, on the same hashes
    for q in queries[:20]:  # warm the connection, the node and the index
        conn.match([q])
        index.search(q, RADIUS)
    latencies: list[float] = []
    found = 0
    started = time.perf_counter()
    for q, origin in zip(queries, origins, strict=True):
        sent = time.perf_counter()
        [result] = conn.match([q])
        latencies.append((time.perf_counter() - sent) * 1000)
        found += hashes[origin].tobytes().hex() in {m["value"] for m in result["matches"]}
    single_s = time.perf_counter() - started
    started = time.perf_counter()
    for q in queries:
        index.search(q, RADIUS)
    single_in_process_s = time.perf_counter() - started
    hits = _batches(conn, index, fresh, True, pid)
    nothing = _batches(conn, index, misses, False, pid)
    return {
        "submit_per_s": round(len(hashes) / fill_s),
        "single_queries_per_s": round(len(queries) / single_s, 1),
        "single_in_process_per_s": round(len(queries) / single_in_process_s, 1),
        "single_p50_ms": round(percentile(latencies, 50), 2),
        "single_p99_ms": round(percentile(latencies, 99), 2),
        "hits": hits,
        "misses": nothing,
        "recall": found / len(queries),
    }
