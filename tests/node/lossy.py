"""Fault injection for tests of unknown outcomes and lossy links: a TCP proxy that loses an
answer or resets a request mid-way, a store that loses the answer to an append, and the
operator API's submit as a client sends it."""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest

from node.errors import StoreError
from node.store.base import Store
from tests.node.services import Served


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 that, once armed, loses the server's answer to the first
    client message containing `trigger`: it forwards that message, waits for the answer
    (so the server has acted on it), drops the answer and closes both connections."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._trigger: bytes | None = None
        self.dropped = 0
        self.resets_left = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()

    def arm(self, trigger: bytes) -> None:
        self._trigger = trigger

    def reset_requests(self, trigger: bytes, times: int = 1) -> None:
        """Reset, half sent, the next `times` client messages containing `trigger` (the
        server sees a connection reset mid-request, the client an error)."""
        self._trigger = trigger
        self.resets_left = times

    async def __aenter__(self) -> DroppingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._pumps):
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._pumps.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
            swallow = asyncio.Event()
            async with asyncio.TaskGroup() as group:
                group.create_task(self._upstream(reader, up_writer, swallow))
                group.create_task(self._downstream(up_reader, writer, swallow))
        except* (OSError, asyncio.IncompleteReadError):
            pass  # one side went away: the connection ends, as it would without a proxy
        finally:
            writer.close()
            self._pumps.discard(task)

    async def _upstream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, swallow: asyncio.Event
    ) -> None:
        try:
            while data := await reader.read(65536):
                if self.resets_left and self._trigger is not None and self._trigger in data:
                    # A reset mid-request: the server gets part of it, the client a reset.
                    self.resets_left -= 1
                    self.dropped += 1
                    if not self.resets_left:
                        self._trigger = None
                    writer.write(data[: len(data) // 2])
                    await writer.drain()
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    writer.transport.abort()  # with SO_LINGER 0: a reset, not an end
                    raise ConnectionResetError("request reset")
                if self._trigger is not None and self._trigger in data:
                    self._trigger = None
                    swallow.set()  # before the server can answer
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def _downstream(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, swallow: asyncio.Event
    ) -> None:
        try:
            while data := await reader.read(65536):
                if swallow.is_set():
                    self.dropped += 1
                    writer.transport.abort()  # the client never hears the answer
                    raise ConnectionResetError("answer dropped")
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()  # the server ended: so does the client's connection


def via(dsn: str, port: int) -> str:
    """`dsn` with its host and port replaced by the proxy's."""
    parts = urlsplit(dsn)
    user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


async def post_submit(
    node: Served, items: list[dict[str, Any]], key: str | None = None, url: str | None = None
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {node.token}"}
    if key is not None:
        headers["Idempotency-Key"] = f'"{key}"'
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{url or node.operator_url}/v1/submit", json={"items": items}, headers=headers
        ) as answer,
    ):
        return answer.status, await answer.json()


def new_md5() -> dict[str, Any]:
    """A new md5 hash to submit."""
    return {"signal_type": "md5", "value": secrets.token_hex(16)}


async def held(store: Store, origin: str) -> list[bytes]:
    return await store.entries(origin, 0, 1000)


def lose_answers(store: Store, monkeypatch: pytest.MonkeyPatch, heads_lost: int) -> None:
    """Fault injection on a real store: the next append is made, then reported failed (its
    answer lost); the next `heads_lost` settled_head calls fail (the store unreachable)."""
    real_append, real_head = store.append, store.settled_head
    lost = {"append": 1, "head": heads_lost}

    async def append(*args: Any, **kwargs: Any) -> None:
        await real_append(*args, **kwargs)
        if lost["append"]:
            lost["append"] -= 1
            raise StoreError("the connection closed before COMMIT was answered")

    async def settled_head(origin: str) -> Any:
        if lost["head"]:
            lost["head"] -= 1
            raise StoreError("the store is unreachable")
        return await real_head(origin)

    monkeypatch.setattr(store, "append", append)
    monkeypatch.setattr(store, "settled_head", settled_head)
