#!/usr/bin/env python3
"""A wide-area network between nodes on one machine, in user space (netem needs privileges):
a TCP proxy in front of each node's peer API that delays, throttles and resets its traffic.

bench_crisis.py runs it as its own process (so that its event loop does not share a GIL with
the benchmark's clients) with a plan in JSON:

    {"listeners": [{"member": "member1", "listen_port": 20001, "target_port": 20002}, ...],
     "delays_ms": {"member1|member2": 87.5, ...}, "loss": 0.01, "bandwidth_bps": 10000000,
     "seed": 1}

Every member's peers reach it at the one URL the roster names, which is its listener here, so a
connection says who sent it only in its first request's head: the proxy reads that head up to
its blank line, takes the sending member from the signed peer request's `X-Hashmesh-Member`
header, and from then on applies that pair's one-way delay to every byte each way (on the
first request, two more: the TCP handshake's round trip). Each direction of a member pair is a
link of `bandwidth_bps`, shared by all connections between the two; a chunk waits for the link
to be free, takes its size over the bandwidth to cross, then the pair's delay. With
probability `loss` a request (the first bytes sent after the previous answer) has its
connection reset halfway through its first chunk: both sides get a TCP RST.

Bytes are counted per directed link (sender>receiver) as TCP payload. On stdin, `counts` prints
the counts as one JSON line; end of input (or `stop`) prints them once more and exits.

    python scripts/wan_proxy.py PLAN.json
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import struct
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MEMBER_HEADER = b"x-hashmesh-member"
UNKNOWN = "unknown"
CHUNK = 1 << 16
#: Bytes a direction may hold in flight before the proxy stops reading its sender (the
#: sender then sees backpressure, as behind a slow link).
MAX_QUEUED = 1 << 20
HEAD_LIMIT = 1 << 16
CLOSE, RESET = "close", "reset"  # how a direction ends


@dataclass
class Link:
    """One direction between two members: when it is next free, and what crossed it."""

    free_at: float = 0.0
    bytes: int = 0


@dataclass
class Counts:
    connections: int = 0
    requests: int = 0
    resets: int = 0
    unknown_sender: int = 0
    open: int = 0
    peak_open: int = 0
    #: How late the proxy wrote chunks against their due time (its own CPU share): max, sum.
    late_max_s: float = 0.0
    late_sum_s: float = 0.0
    chunks: int = 0


class Pipe:
    """One direction of one connection: chunks wait in order for their delivery time."""

    def __init__(self, link: Link, delay_s: float, bandwidth_bps: float) -> None:
        self.link = link
        self.delay_s = delay_s
        self.bandwidth_bps = bandwidth_bps
        self.queue: deque[tuple[float, bytes | str]] = deque()
        self.queued = 0
        self.ready = asyncio.Event()
        self.drained = asyncio.Event()
        self.last_at = 0.0

    def put(self, data: bytes, extra_s: float = 0.0) -> None:
        """Queue `data` to arrive after the link carried it and the pair's delay passed."""
        now = asyncio.get_running_loop().time()
        start = max(now, self.link.free_at)
        crossing = len(data) * 8 / self.bandwidth_bps if self.bandwidth_bps > 0 else 0.0
        self.link.free_at = start + crossing
        self.link.bytes += len(data)
        at = max(self.link.free_at + self.delay_s + extra_s, self.last_at)
        self.last_at = at
        self._push(at, data)

    def end(self, marker: str) -> None:
        """Queue the end of this direction: CLOSE or RESET, after what is queued."""
        self._push(self.last_at, marker)

    def _push(self, at: float, item: bytes | str) -> None:
        self.queue.append((at, item))
        self.queued += len(item) if isinstance(item, bytes) else 0
        self.drained.clear()
        self.ready.set()

    async def room(self) -> None:
        while self.queued > MAX_QUEUED:
            self.drained.clear()
            await self.drained.wait()


class Wan:
    """The proxy: the plan's listeners, links and counts."""

    def __init__(self, plan: dict[str, Any]) -> None:
        self.plan = plan
        self.delays = {k: v / 1000 for k, v in plan["delays_ms"].items()}
        self.loss = float(plan["loss"])
        self.bandwidth_bps = float(plan["bandwidth_bps"])
        self.members = {entry["member"] for entry in plan["listeners"]}
        self.links: dict[tuple[str, str], Link] = {}
        self.counts = Counts()
        self.rng = random.Random(plan["seed"])  # a reproducible network, no secret

    def delay_s(self, a: str, b: str) -> float:
        return self.delays.get("|".join(sorted((a, b))), 0.0)

    def link(self, sender: str, receiver: str) -> Link:
        return self.links.setdefault((sender, receiver), Link())

    def snapshot(self) -> dict[str, Any]:
        return {
            "links": {f"{a}>{b}": link.bytes for (a, b), link in self.links.items()},
            "connections": self.counts.connections,
            "requests": self.counts.requests,
            "resets": self.counts.resets,
            "unknown_sender": self.counts.unknown_sender,
            "peak_open_connections": self.counts.peak_open,
            "chunks": self.counts.chunks,
            "late_ms": {
                "max": round(1000 * self.counts.late_max_s, 1),
                "mean": round(1000 * self.counts.late_sum_s / max(1, self.counts.chunks), 2),
            },
        }

    async def start(self) -> list[asyncio.Server]:
        servers = []
        for entry in self.plan["listeners"]:
            member, target = entry["member"], entry["target_port"]

            async def handle(
                reader: asyncio.StreamReader,
                writer: asyncio.StreamWriter,
                member: str = member,
                target: int = target,
            ) -> None:
                self.counts.open += 1
                self.counts.peak_open = max(self.counts.peak_open, self.counts.open)
                try:
                    await self.connection(member, target, reader, writer)
                finally:
                    self.counts.open -= 1

            servers.append(
                await asyncio.start_server(
                    handle, "127.0.0.1", entry["listen_port"], limit=HEAD_LIMIT
                )
            )
        return servers

    async def connection(
        self,
        receiver: str,
        target_port: int,
        client_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
    ) -> None:
        self.counts.connections += 1
        try:
            head = await client_r.readuntil(b"\r\n\r\n")
            server_r, server_w = await asyncio.open_connection("127.0.0.1", target_port)
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError):
            client_w.close()
            return
        sender = sender_of(head)
        if sender not in self.members:
            self.counts.unknown_sender += 1
            sender = UNKNOWN
        delay = self.delay_s(sender, receiver)
        up = Pipe(self.link(sender, receiver), delay, self.bandwidth_bps)
        down = Pipe(self.link(receiver, sender), delay, self.bandwidth_bps)
        answered = [True]  # whether the next bytes from the client begin a new request
        writers = (client_w, server_w)

        async def from_client() -> None:
            first = True
            data = head
            while data:
                if answered[0]:
                    answered[0] = False
                    self.counts.requests += 1
                    if self.rng.random() < self.loss:
                        self.counts.resets += 1
                        up.put(data[: max(1, len(data) // 2)], 2 * delay if first else 0.0)
                        up.end(RESET)
                        return
                up.put(data, 2 * delay if first else 0.0)  # the handshake's round trip first
                first = False
                await up.room()
                data = await read(client_r)
            up.end(CLOSE)

        async def from_server() -> None:
            while data := await read(server_r):
                answered[0] = True
                down.put(data)
                await down.room()
            down.end(CLOSE)

        await asyncio.gather(
            from_client(),
            from_server(),
            deliver(up, server_w, writers, self.counts),
            deliver(down, client_w, writers, self.counts),
        )


def sender_of(head: bytes) -> str:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == MEMBER_HEADER:
            return value.strip().decode(errors="replace")
    return UNKNOWN


async def read(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.read(CHUNK)
    except (ConnectionError, OSError):
        return b""


async def deliver(
    pipe: Pipe,
    writer: asyncio.StreamWriter,
    both: tuple[asyncio.StreamWriter, ...],
    counts: Counts,
) -> None:
    """Write the pipe's chunks at their times; at its end close, or reset both sides."""
    loop = asyncio.get_running_loop()
    while True:
        while not pipe.queue:
            pipe.ready.clear()
            await pipe.ready.wait()
        at, data = pipe.queue.popleft()
        await asyncio.sleep(max(0.0, at - loop.time()))
        if data == CLOSE:
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()
            return
        if data == RESET:
            for w in both:
                reset(w)
            return
        assert isinstance(data, bytes)
        late = max(0.0, loop.time() - at)
        counts.chunks += 1
        counts.late_sum_s += late
        counts.late_max_s = max(counts.late_max_s, late)
        pipe.queued -= len(data)
        if pipe.queued <= MAX_QUEUED:
            pipe.drained.set()
        try:
            writer.write(data)
            await writer.drain()
        except (ConnectionError, OSError):
            for w in both:
                reset(w)
            return


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (linger 0), as a connection cut by the network looks."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def main(plan: dict[str, Any]) -> None:
    wan = Wan(plan)
    servers = await wan.start()
    print("ready", flush=True)
    loop = asyncio.get_running_loop()
    while True:
        command = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        print(json.dumps(wan.snapshot()), flush=True)
        if command in ("", "stop") and servers:
            # The counts are out: end at once, the kernel closes every proxied connection (as
            # a network going away would), rather than wind down hundreds of them one by one.
            os._exit(0)


if __name__ == "__main__":
    asyncio.run(main(json.loads(Path(sys.argv[1]).read_text())))
