"""A peer that resets its connection mid-request costs that peer: the peer API counts it and
logs one warning line without a traceback, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import struct
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from node.credentials.key_files import load_key
from node.credentials.request_auth import sign_request
from tests.node.services import consortium, now_ms, served


async def test_a_peer_resetting_its_push_mid_body_is_one_counted_warning_without_traceback(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: aiohttp logged "Error handling request" at ERROR with a traceback from
    # read_body (and the guard's write_eof) for each reset on a lossy link.
    owner, pusher = consortium(tmp_path).configs
    body = secrets.token_bytes(1000)
    _, key = load_key(pusher.node_key_path)
    headers = sign_request(
        key, pusher.member_id, owner.member_id, "POST", "/v1/push", body, now_ms(), b"n" * 16
    )
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    async with served(owner) as node:
        assert node.guard is not None
        address = urlsplit(node.peer_url)
        _, writer = await asyncio.open_connection(address.hostname, address.port)
        request = f"POST /v1/push HTTP/1.1\r\nHost: x\r\n{head}Content-Length: {len(body)}\r\n"
        writer.write(f"{request}\r\n".encode() + body[:100])
        await writer.drain()
        await asyncio.sleep(0.1)  # the head is read and authenticated, the body awaited
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()  # a reset
        deadline = time.monotonic() + 10
        while node.guard.resets == 0:
            assert time.monotonic() < deadline, "the reset was not counted"
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.1)  # anything logged after the count shows too
    assert node.guard.resets == 1
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    assert warnings[0].levelno == logging.WARNING and warnings[0].exc_info is None
    assert f"POST /v1/push from 127.0.0.1 (member {pusher.member_id})" in warnings[0].getMessage()
    assert "connection lost" in warnings[0].getMessage()
