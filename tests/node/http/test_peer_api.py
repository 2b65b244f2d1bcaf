"""The peer API over real HTTP on loopback: signed requests, paging, push and its answers."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import aiohttp

from node.config import NodeConfig
from node.core import wire
from node.credentials.key_files import load_key
from node.replication.peer_client import PeerClient
from protocol.entries import Add
from tests.node.conftest import StoreFor
from tests.node.services import consortium, now_ms, served


async def test_a_signed_request_whose_query_holds_an_escaped_slash_is_authenticated(
    tmp_path: Path, store_for: StoreFor
) -> None:
    # Regression: origins contain '/', which the client's URL library unescapes on the wire;
    # the signature must cover exactly what is sent, or every entries request gets 401.
    setup = consortium(tmp_path)
    owner, reader = setup.configs
    async with served(owner, store_for(owner)) as node:
        await node.service.submit([Add(now_ms(), "md5", bytes(range(16)))])
        await node.service.sign_pending()
        _, key = load_key(reader.node_key_path)
        async with PeerClient(reader.member_id, key, now_ms, 5.0, 1 << 20, 100) as client:
            page = await client.entries(owner.member_id, node.peer_url, owner.origin, 0)
    assert page.start == 0 and len(page.entries) == 1


async def push_leaving_a_gap(
    tmp_path: Path, store_for: StoreFor, page_size: int
) -> tuple[wire.PushResult, list[str], list[tuple[str, str, int]], NodeConfig]:
    """Push the last entry of a 12-entry log to a receiver that holds none of it: what it answers,
    and whether it asked for a sync round or a catch-up of that log."""
    setup = consortium(tmp_path)
    owner, receiver = setup.configs
    receiver = replace(receiver, page_size=page_size)
    async with (
        served(owner, store_for(owner)) as origin,
        served(receiver, store_for(receiver)) as node,
    ):
        rounds: list[str] = []
        catch_ups: list[tuple[str, str, int]] = []
        node.service.request_sync = lambda: rounds.append("round")
        node.service.request_catch_up = lambda *asked: catch_ups.append(asked)
        await origin.service.submit([Add(now_ms(), "md5", bytes([i]) * 16) for i in range(12)])
        signed = await origin.service.sign_pending()
        assert signed is not None
        tail = await origin.service.store.entries(owner.origin, 11, 12)
        _, key = load_key(owner.node_key_path)
        async with PeerClient(owner.member_id, key, now_ms, 5.0, 1 << 20, 100) as client:
            result = await client.push(
                receiver.member_id,
                node.peer_url,
                wire.Push(owner.origin, signed.raw, 11, tuple(tail)),
            )
    return result, rounds, catch_ups, owner


async def test_a_push_that_leaves_a_gap_wider_than_a_page_fetches_that_log_not_a_round(
    tmp_path: Path, store_for: StoreFor
) -> None:
    # Regression: every "gap" answer started a full sync round with every peer; at 27 members
    # in a burst, those rounds carried most of the bytes on the wire.
    result, rounds, catch_ups, owner = await push_leaving_a_gap(tmp_path, store_for, page_size=5)
    assert result.status == "gap" and result.size == 0
    assert rounds == []
    assert catch_ups == [(owner.origin, owner.member_id, 12)]


async def test_a_push_that_leaves_a_gap_within_a_page_waits_for_the_pusher_to_fill_it(
    tmp_path: Path, store_for: StoreFor
) -> None:
    # The pusher, told the receiver's size, pushes the missing entries next (one request).
    result, rounds, catch_ups, _ = await push_leaving_a_gap(tmp_path, store_for, page_size=100)
    assert result.status == "gap" and result.size == 0
    assert rounds == [] and catch_ups == []


async def test_a_page_larger_than_one_network_read_arrives_whole(
    tmp_path: Path, store_for: StoreFor
) -> None:
    # Regression: the client read one chunk of the body (content.read(n) returns what has
    # arrived so far), so pages of a few hundred KiB came cut short and failed to decode.
    setup = consortium(tmp_path)
    owner, reader = setup.configs
    async with served(owner, store_for(owner)) as node:
        adds = [
            Add(now_ms(), "md5", i.to_bytes(16, "big"), reference=bytes([i % 256]) * 200)
            for i in range(1000)
        ]
        await node.service.submit(adds)
        await node.service.sign_pending()
        _, key = load_key(reader.node_key_path)
        async with PeerClient(reader.member_id, key, now_ms, 5.0, 4 << 20, 1000) as client:
            page = await client.entries(owner.member_id, node.peer_url, owner.origin, 0)
    assert len(page.entries) == 1000
    assert sum(len(e) for e in page.entries) > 200_000


async def test_a_node_stopped_between_two_checkpoints_still_serves_the_earlier_one(
    tmp_path: Path, store_for: StoreFor
) -> None:
    # Regression: after a restart mid catch-up (entries stored past the last checkpoint reached)
    # the log had no head checkpoint, so the node served nothing of it until the next page.
    setup = consortium(tmp_path)
    owner, reader = setup.configs
    async with served(owner, store_for(owner)) as origin:
        await origin.service.submit([Add(now_ms(), "md5", bytes([i]) * 16) for i in range(4)])
        first = await origin.service.sign_pending()
        await origin.service.submit([Add(now_ms(), "md5", bytes([i]) * 16) for i in range(4, 10)])
        second = await origin.service.sign_pending()
        assert first is not None and second is not None
        raws = await origin.service.store.entries(owner.origin, 0, 10)
        proof = await origin.service.proofs.consistency(owner.origin, 6, 10)
    async with served(reader, store_for(reader)) as node:
        peers = node.service.peers
        await peers.ingest(owner.origin, first.raw, 0, raws[:4], [], None)
        await peers.ingest(owner.origin, second.raw, 4, raws[4:6], proof, None)  # toward 10
        still = node.service.signed_checkpoint(owner.origin)
        assert still is not None and still.checkpoint == first.checkpoint  # (now cosigned)
    async with served(reader, store_for(reader)) as restarted:
        served_now = restarted.service.signed_checkpoint(owner.origin)
        assert restarted.service.peers.replica(owner.origin).size == 6
        assert served_now is not None and served_now.checkpoint == first.checkpoint


async def test_a_batch_lookup_answers_every_hash_in_order_with_its_own_provenance(
    tmp_path: Path, store_for: StoreFor
) -> None:
    # Regression companion: the lookup of a batch is grouped once per batch (it was quadratic);
    # each answer must still be the view of its own hash, in the order asked, repeats included.
    setup = consortium(tmp_path)
    owner = setup.configs[0]
    async with served(owner, store_for(owner)) as node:
        values = [i.to_bytes(16, "big") for i in range(300)]
        await node.service.submit([Add(now_ms(), "md5", v, labels=()) for v in values[::2]])
        asked = [values[7], values[4], values[4], values[299], values[0]]
        views = await node.service.lookup("md5", asked)
    assert [v.value for v in views] == asked
    assert [bool(v.submissions) for v in views] == [False, True, True, False, True]
    assert views[1].submissions[0].ref.index == 2 and views[4].submissions[0].ref.index == 0


async def test_peer_api_answers_name_the_server_in_a_few_bytes(tmp_path: Path) -> None:
    # Every answer to a push carried aiohttp's 30-byte version string.
    owner, _ = consortium(tmp_path).configs
    async with (
        served(owner) as node,
        aiohttp.ClientSession() as http,
        http.get(f"{node.peer_url}/v1/checkpoints") as answer,
    ):
        assert answer.status == 401 and answer.headers["Server"] == "hashmesh"
