"""Deflated bodies on the peer API: checkpoint vectors travel deflated to askers that accept it
(about 40 % fewer bytes) and as they are to any other asker; pushes may come deflated, their
signed digest and the route's limit applying to the inflated body."""

from __future__ import annotations

import zlib
from dataclasses import replace
from pathlib import Path
from secrets import token_bytes

import aiohttp
import pytest
from aiohttp.test_utils import make_mocked_request

from node.core import wire
from node.credentials.key_files import load_key
from node.credentials.request_auth import sign_request
from node.http.common import deflated_response
from node.replication.peer_client import PeerClient
from protocol.entries import Add
from tests.node.conftest import StoreFor
from tests.node.services import consortium, now_ms, served

BODY = b"demo.hashmesh/member1\n" * 100


def test_a_large_answer_is_deflated_for_an_asker_that_accepts_it() -> None:
    request = make_mocked_request("GET", "/v1/checkpoints", headers={"Accept-Encoding": "deflate"})
    response = deflated_response(request, BODY)
    assert response.headers["Content-Encoding"] == "deflate"
    assert isinstance(response.body, bytes) and zlib.decompress(response.body) == BODY
    assert len(response.body) < len(BODY) // 2


@pytest.mark.parametrize(
    ("accepts", "body"), [("", BODY), ("gzip", BODY), ("deflate", b"\x93\x01\x02\x90")]
)
def test_an_answer_goes_as_it_is_when_not_accepted_or_too_small(accepts: str, body: bytes) -> None:
    headers = {"Accept-Encoding": accepts} if accepts else {}
    response = deflated_response(make_mocked_request("GET", "/", headers=headers), body)
    assert "Content-Encoding" not in response.headers and response.body == body


async def test_a_peer_client_reads_a_deflated_vector_as_the_node_serves_it(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wire, "DEFLATE_MIN_BYTES", 0)  # deflate even our small vector
    owner, reader = consortium(tmp_path).configs
    async with served(owner, store_for(owner)) as node:
        await node.service.submit([Add(now_ms(), "md5", bytes(range(16)))])
        await node.service.sign_pending()
        _, key = load_key(reader.node_key_path)
        async with PeerClient(reader.member_id, key, now_ms, 5.0, 1 << 20, 100) as client:
            vector = await client.checkpoints(owner.member_id, node.peer_url)
        expected = node.service.checkpoint_vector()
        path = "/v1/checkpoints"
        headers = sign_request(
            key, reader.member_id, owner.member_id, "GET", path, b"", now_ms(), token_bytes(16)
        )
        headers["Accept-Encoding"] = "deflate"
        async with (
            aiohttp.ClientSession(auto_decompress=False) as http,
            http.get(node.peer_url + path, headers=headers) as answer,
        ):
            assert answer.headers["Content-Encoding"] == "deflate"
            on_the_wire = await answer.read()
    assert wire.decode_vector(zlib.decompress(on_the_wire), 1 << 20) == expected
    assert vector == expected
    assert wire.encode_vector(vector) == wire.encode_vector(expected)


async def _post_push(node_url: str, key: object, sender: str, recipient: str, body: bytes,
                     sent: bytes) -> tuple[int, str]:  # fmt: skip
    path = "/v1/push"
    headers = sign_request(key, sender, recipient, "POST", path, body, now_ms(), token_bytes(16))  # type: ignore[arg-type]
    headers["Content-Encoding"] = "deflate"
    async with (
        aiohttp.ClientSession() as http,
        http.post(node_url + path, data=sent, headers=headers) as answer,
    ):
        return answer.status, (await answer.read()).decode(errors="replace")


async def test_a_deflated_push_is_inflated_checked_against_its_signed_digest_and_stored(
    tmp_path: Path, store_for: StoreFor
) -> None:
    origin_config, receiver = consortium(tmp_path).configs
    async with served(origin_config, store_for(origin_config)) as origin:
        adds = [Add(now_ms(), "md5", bytes([i]) * 16) for i in range(20)]
        await origin.service.submit(adds)
        signed = await origin.service.sign_pending()
        raws = await origin.service.store.entries(origin_config.origin, 0, 20)
    assert signed is not None
    body = wire.encode_push(wire.Push(origin_config.origin, signed.raw, 0, tuple(raws)))
    _, key = load_key(origin_config.node_key_path)
    async with served(receiver, store_for(receiver)) as node:
        status, _ = await _post_push(
            node.peer_url, key, origin_config.member_id, receiver.member_id, body,
            zlib.compress(body)[:-1] + b"\x00",  # not the body signed: refused
        )  # fmt: skip
        assert status == 400
        assert node.service.peers.replica(origin_config.origin).size == 0
        status, text = await _post_push(
            node.peer_url, key, origin_config.member_id, receiver.member_id, body,
            zlib.compress(body),
        )  # fmt: skip
        assert status == 200, text
        assert node.service.peers.replica(origin_config.origin).size == 20


async def test_a_deflated_push_inflating_beyond_the_routes_limit_is_refused_413(
    tmp_path: Path,
) -> None:
    owner, pusher = consortium(tmp_path).configs
    owner = replace(owner, max_body_bytes=64 * 1024)
    bomb_body = bytes(1024 * 1024)  # deflates to about 1 KiB
    _, key = load_key(pusher.node_key_path)
    async with served(owner) as node:
        status, text = await _post_push(
            node.peer_url, key, pusher.member_id, owner.member_id, bomb_body,
            zlib.compress(bomb_body),
        )  # fmt: skip
    assert status == 413, text
