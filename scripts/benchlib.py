"""Shared helpers of the benchmarks in scripts/: timing, percentiles, resident memory read
from /proc, a byte-counting TCP proxy for loopback traffic, the machine's description, the
figures' output (human lines, or one JSON object with --json), and tracking of submissions
until every node can match them (used by bench_propagation.py and load_test.py).

The benchmarks import this as `benchlib` (scripts/ is on sys.path when a script runs) and put
the repository root on sys.path so that `node` and `protocol` import without installing.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from node.cli.operator_client import OperatorClient  # noqa: E402
from node.config import NodeConfig  # noqa: E402  # importable once ROOT is on sys.path
from node.errors import NodeError  # noqa: E402


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as t: ...` leaves the elapsed seconds in t[0]."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


@contextlib.contextmanager
def work_dir(given: Path | None, prefix: str) -> Iterator[Path]:
    """Where a benchmark works: `given` (kept afterwards), or a temporary directory (removed)."""
    if given is not None:
        yield given
        return
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def rate(count: float, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def percentile(values: list[float], p: float) -> float:
    """The p-th percentile (0..100), linear between the closest ranks; nan if empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * p / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def proc_status_kb(pid: int | str, name: str = "VmRSS") -> int:
    """A kB figure of /proc/<pid>/status (VmRSS resident now, VmHWM its peak); 0 if absent."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1])
    return 0


def child_pids(pid: int | str) -> list[str]:
    """A process's direct children (a node's SQLite writer)."""
    children: list[str] = []
    # Each thread lists the children it started: the writer is started from a worker thread.
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += (task / "children").read_text().split()
        except OSError:
            continue  # the thread ended meanwhile
    return children


def children_rss_kb(pid: int | str) -> int:
    """Resident kB of a process's direct children together."""
    return sum(proc_status_kb(child) for child in child_pids(pid))


def tree_cpu_seconds(pid: int | str) -> float:
    """CPU seconds a process and its direct children have used so far."""
    return proc_cpu_seconds(pid) + sum(proc_cpu_seconds(c) for c in child_pids(pid))


def proc_cpu_seconds(pid: int | str) -> float:
    """CPU seconds (user + system) a process has used so far; 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the command's ")": state is field 3 of stat(5), utime 14 and stime 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate_for(seconds: float, step: Callable[[], object], batch: int = 100) -> float:
    """Calls of `step` a second, run in batches for about `seconds`."""
    count = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or count == 0:
        for _ in range(batch):
            step()
        count += batch
    return rate(count, elapsed)


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "packages": {
            p: package_version(p) for p in ("cryptography", "msgpack", "aiohttp", "hashmesh")
        },
    }


def emit(result: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    """Print the figures: one JSON object, or the human lines."""
    if as_json:
        print(json.dumps(result, indent=2, sort_keys=True))
    else:
        print("\n".join(lines))


def log(message: str) -> None:
    """Progress goes to stderr so that --json output stays one clean object on stdout."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class ProxyCounts:
    """Bytes a CountingProxy carried: `up` client to server, `down` server to client."""

    up: int = 0
    down: int = 0
    connections: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, up: int = 0, down: int = 0) -> None:
        with self.lock:
            self.up += up
            self.down += down

    def snapshot(self) -> tuple[int, int]:
        with self.lock:
            return self.up, self.down


class CountingProxy:
    """A TCP proxy on 127.0.0.1:`listen_port` to 127.0.0.1:`target_port` counting bytes.

    It runs its own event loop in a daemon thread so that a benchmark can stay synchronous.
    The counts are of TCP payload (HTTP headers and bodies), not of IP or TCP headers.
    """

    def __init__(self, listen_port: int, target_port: int, host: str = "127.0.0.1") -> None:
        self.listen_port = listen_port
        self.target_port = target_port
        self.host = host
        self.counts = ProxyCounts()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None

    def start(self) -> CountingProxy:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._server = future.result(10)
        return self

    async def _listen(self) -> asyncio.Server:
        return await asyncio.start_server(self._connection, self.host, self.listen_port)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counts.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(
            self._pipe(reader, up_writer, lambda n: self.counts.add(up=n)),
            self._pipe(up_reader, writer, lambda n: self.counts.add(down=n)),
        )

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, count: Callable[[int], None]
    ) -> None:
        try:
            while data := await reader.read(1 << 16):
                count(len(data))
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass  # either side went away; the other pipe notices and ends too
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            # Cancel the live pipes so that the loop can stop without pending tasks.
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop.close()


# Propagation tracking. A hash's arrival on a node is the `received_ms` that node reports for it
# (its wall clock when it stored the entry; the nodes and the benchmark share one clock), so the
# figures do not depend on how often we poll; the first poll that saw it is kept as a check.


def wall_ms() -> float:
    return time.time_ns() / 1e6


def md5_hex(tag: str, i: int) -> str:
    """A distinct md5 value for submission i of a run tagged `tag`."""
    return hashlib.md5(f"{tag}-{i}".encode(), usedforsecurity=False).hexdigest()


class Submissions:
    """What was submitted to which node and when, shared by the submitter and the pollers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent: dict[str, tuple[float, int]] = {}  # hash -> (wall ms before sending, node)
        self.stop = threading.Event()
        self.all_submitted = threading.Event()

    def mark(self, h: str, node: int) -> None:
        """Call just before sending: the latency clock of `h` starts now."""
        with self._lock:
            self._sent[h] = (wall_ms(), node)

    def forget(self, h: str) -> None:
        """The submission failed: nobody should wait for `h`."""
        with self._lock:
            self._sent.pop(h, None)

    def submitted(self) -> list[str]:
        with self._lock:
            return list(self._sent)

    def sent(self) -> dict[str, tuple[float, int]]:
        with self._lock:
            return dict(self._sent)


class ArrivalPoller(threading.Thread):
    """Looks every submitted, not yet found md5 hash up on one node until all are found (once
    everything is submitted) or `submissions.stop` is set."""

    def __init__(self, config: NodeConfig, submissions: Submissions, poll_s: float) -> None:
        super().__init__(daemon=True)
        self.client = OperatorClient.for_node(config)
        self.submissions = submissions
        self.poll_s = poll_s
        self.received: dict[str, float] = {}  # hash -> the node's received_ms
        self.seen: dict[str, float] = {}  # hash -> our wall clock at the first poll finding it
        self.errors: list[str] = []

    def run(self) -> None:
        state = self.submissions
        while not state.stop.is_set():
            pending = [h for h in state.submitted() if h not in self.received]
            if not pending and state.all_submitted.is_set():
                return
            if pending:
                self._look_up(pending)
            time.sleep(self.poll_s)

    def _look_up(self, pending: list[str]) -> None:
        body = {"hashes": [{"signal_type": "md5", "value": h} for h in pending]}
        try:
            results = self.client.call("POST", "/v1/lookup", body)["results"]
        except NodeError as e:  # counted, not fatal: the run reports it
            self.errors.append(str(e))
            return
        if len(results) != len(pending):
            self.errors.append(f"{len(results)} lookup results for {len(pending)} hashes")
            return
        now = wall_ms()
        for h, result in zip(pending, results, strict=True):
            if result["found"]:
                self.received[h] = min(s["received_ms"] for s in result["submissions"])
                self.seen[h] = now


@dataclass(frozen=True, slots=True)
class Arrivals:
    """Latencies in ms from submit to stored: on every node, on each other node, seen by polls."""

    all_nodes: list[float]
    each_peer: list[float]
    observed_by_polling: list[float]
    missing: int


def arrivals(sent: dict[str, tuple[float, int]], pollers: list[ArrivalPoller]) -> Arrivals:
    """Latencies of the submissions in `sent` from what the pollers (one a node) found."""
    every, each, seen, missing = [], [], [], 0
    for h, (at, origin) in sent.items():
        found = [p.received.get(h) for p in pollers]
        times = [a for a in found if a is not None]
        if len(times) < len(found):
            missing += 1
            continue
        every.append(max(times) - at)
        seen.append(max(p.seen[h] for p in pollers) - at)
        each += [a - at for j, a in enumerate(times) if j != origin]
    return Arrivals(every, each, seen, missing)


def summary(values: list[float]) -> dict[str, float]:
    """p50, p99, max (rounded to 0.1) and count of a list of figures."""
    return {
        "p50": round(percentile(values, 50), 1),
        "p99": round(percentile(values, 99), 1),
        "max": round(max(values), 1) if values else float("nan"),
        "count": len(values),
    }
