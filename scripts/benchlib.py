"""Shared helpers of the benchmarks in scripts/: timing, percentiles, resident memory read
from /proc, a byte-counting TCP proxy for loopback traffic, the machine's description and the
figures' output (human lines, or one JSON object with --json).

The benchmarks import this as `benchlib` (scripts/ is on sys.path when a script runs) and put
the repository root on sys.path so that `node` and `protocol` import without installing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import sys
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


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as t: ...` leaves the elapsed seconds in t[0]."""
    box = [0.0]
    start = time.perf_counter()
    try:
        yield box
    finally:
        box[0] = time.perf_counter() - start


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
