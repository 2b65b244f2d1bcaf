"""The peer API's bounds on what peer input may hold, over real HTTP on loopback: per-log state
only for roster members, a replay cache that refuses rather than forgets, bodies bound to their
signed digest, and a total connection limit."""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
from pathlib import Path

import aiohttp
import pytest

from node.core import wire
from node.credentials.key_files import load_key
from node.credentials.request_auth import NonceCache, RequestVerifier, sign_request
from node.errors import AuthError, BusyError, PeerError
from node.replication.peer_client import PeerClient
from tests.node.services import consortium, now_ms, served


async def test_pushes_naming_logs_no_member_has_leave_no_per_log_state(tmp_path: Path) -> None:
    setup = consortium(tmp_path)
    owner, pusher = setup.configs
    async with served(owner) as node:
        _, key = load_key(pusher.node_key_path)
        async with PeerClient(pusher.member_id, key, now_ms, 5.0, 1 << 20, 100) as client:
            for i in range(300):
                push = wire.Push(f"nobody.example/{i}", b"not a checkpoint", 0, ())
                with pytest.raises(PeerError, match="404"):
                    await client.push(owner.member_id, node.peer_url, push)
        assert len(node.service.peers._locks) == 0
        assert not node.service.peers.replicas()


def _signed(member: str, key_path: Path, recipient: str, body: bytes = b"") -> dict[str, str]:
    _, key = load_key(key_path)
    path = "/v1/checkpoints"
    method = "POST" if body else "GET"
    return sign_request(
        key, member, recipient, method, path, body, now_ms(), secrets.token_bytes(16)
    )


async def test_a_full_replay_cache_refuses_new_requests_and_still_refuses_replays(
    tmp_path: Path,
) -> None:
    # Regression: a full nonce cache forgot its oldest nonces even inside their window, so a
    # request could be replayed once enough others had been sent.
    setup = consortium(tmp_path)
    owner, reader = setup.configs
    verifier = RequestVerifier(owner.member_id, max_nonces=3)
    async with served(owner, verifier=verifier) as node, aiohttp.ClientSession() as http:
        url = f"{node.peer_url}/v1/checkpoints"
        sent = [_signed(reader.member_id, reader.node_key_path, owner.member_id) for _ in range(4)]
        for headers in sent[:3]:
            async with http.get(url, headers=headers) as resp:
                assert resp.status == 200
        async with http.get(url, headers=sent[3]) as resp:
            assert resp.status == 503
            assert resp.headers["Retry-After"] == "1"
            assert "replay cache full, retry" in (await resp.json())["detail"]
        async with http.get(url, headers=sent[0]) as resp:
            assert resp.status == 401
            assert "replayed" in (await resp.json())["detail"]


def test_nonces_past_their_window_make_room_in_a_full_replay_cache() -> None:
    cache = NonceCache(window_ms=1000, capacity=2)
    cache.check_and_add("m", "a", 0)
    cache.check_and_add("m", "b", 10)
    with pytest.raises(BusyError):
        cache.check_and_add("m", "c", 500)
    with pytest.raises(AuthError, match="replayed"):
        cache.check_and_add("m", "b", 500)
    cache.check_and_add("m", "c", 1001)  # "a" is past its window now
    assert len(cache) == 2


async def test_a_body_other_than_the_signed_one_is_refused(tmp_path: Path) -> None:
    setup = consortium(tmp_path)
    owner, pusher = setup.configs
    _, key = load_key(pusher.node_key_path)
    signed_body = wire.encode_push(wire.Push(pusher.origin, b"cp", 0, ()))
    headers = sign_request(
        key,
        pusher.member_id,
        owner.member_id,
        "POST",
        "/v1/push",
        signed_body,
        now_ms(),
        secrets.token_bytes(16),
    )
    async with served(owner) as node, aiohttp.ClientSession() as http:
        other_body = signed_body[:-1] + b"\x01"
        async with http.post(f"{node.peer_url}/v1/push", data=other_body, headers=headers) as resp:
            assert resp.status == 401
            assert "does not match its signed digest" in (await resp.json())["detail"]
        assert not node.service.peers.replicas()


async def test_connections_beyond_the_total_limit_are_refused_503(tmp_path: Path) -> None:
    setup = consortium(tmp_path)
    owner = dataclasses.replace(setup.configs[0], peer_max_connections=4)
    async with served(owner) as node:
        port = int(node.peer_url.rsplit(":", 1)[1])
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            answer = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            assert answer.startswith(b"HTTP/1.1 503")
            assert b"too many connections to this node" in answer
        finally:
            for _, w in held:
                w.close()
