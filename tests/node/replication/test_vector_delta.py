"""A sync round carries only the checkpoints that changed since the asker last handled them
(GET /v1/checkpoints?known=...), and what the asker could not handle is sent again."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.core import wire
from node.credentials.key_files import load_key
from node.errors import PeerError
from node.replication.peer_client import PeerClient
from node.replication.replicator import Replicator
from protocol.entries import Add
from protocol.errors import DecodeError
from tests.node.conftest import StoreFor
from tests.node.services import consortium, now_ms, served


def test_known_digests_decode_strictly() -> None:
    digests = {wire.checkpoint_digest(bytes([i])) for i in range(3)}
    assert wire.decode_known(wire.encode_known(digests)) == digests
    assert wire.decode_known("") == frozenset()
    for bad in ("abc", "AB" * 8, "zz" * 8, "00" * 8 * (wire.MAX_KNOWN + 1)):
        with pytest.raises(DecodeError):
            wire.decode_known(bad)


async def test_a_second_round_fetches_only_checkpoints_that_changed(
    tmp_path: Path, store_for: StoreFor
) -> None:
    # Regression: every round fetched every log's checkpoint with all its cosignatures from
    # every peer: at 27 members about 75 kB a peer a round, most of a crisis run's bytes.
    setup = consortium(tmp_path, 3)
    me, origin, other = setup.configs
    async with (
        served(origin, store_for(origin)) as source,
        served(other, store_for(other)) as third,
        served(me, store_for(me)) as node,
    ):
        for peer in (source, third):
            await peer.service.submit([Add(now_ms(), "md5", bytes([7]) * 16)])
            await peer.service.sign_pending()
        _, key = load_key(me.node_key_path)
        async with PeerClient(me.member_id, key, now_ms, 5.0, 1 << 20, 100) as client:
            fetched: list[list[str]] = []
            checkpoints = client.checkpoints

            async def counted(peer: str, url: str, known: object = ()) -> wire.CheckpointVector:
                vector = await checkpoints(peer, url, known)  # type: ignore[arg-type]
                fetched.append([o for o, _ in vector.checkpoints])
                return vector

            client.checkpoints = counted  # type: ignore[method-assign]
            pulls = Replicator(node.service, client).pulls
            await pulls.sync_peer(origin.member_id, source.peer_url)
            assert set(fetched[-1]) == {origin.origin}  # the peer holds only its own log
            await pulls.sync_peer(origin.member_id, source.peer_url)
            assert fetched[-1] == []  # nothing changed: nothing sent
            await source.service.submit([Add(now_ms(), "md5", bytes([8]) * 16)])
            await source.service.sign_pending()
            await pulls.sync_peer(origin.member_id, source.peer_url)
            assert fetched[-1] == [origin.origin]
            assert node.service.peers.replica(origin.origin).size == 2
            # What one peer sent says nothing of another's: its own log comes in full.
            await pulls.sync_peer(other.member_id, third.peer_url)
            assert fetched[-1] == [other.origin]


async def test_a_checkpoint_whose_pull_failed_is_sent_again(
    tmp_path: Path, store_for: StoreFor
) -> None:
    setup = consortium(tmp_path, 2)
    me, origin = setup.configs
    async with served(origin, store_for(origin)) as source, served(me, store_for(me)) as node:
        await source.service.submit([Add(now_ms(), "md5", bytes([7]) * 16)])
        await source.service.sign_pending()
        _, key = load_key(me.node_key_path)
        async with PeerClient(me.member_id, key, now_ms, 5.0, 1 << 20, 100) as client:
            entries = client.entries

            async def failing(*args: object) -> wire.EntriesPage:
                raise PeerError("member2: connection reset")

            client.entries = failing  # type: ignore[method-assign]
            pulls = Replicator(node.service, client).pulls
            with pytest.raises(PeerError):
                await pulls.sync_peer(origin.member_id, source.peer_url)
            client.entries = entries  # type: ignore[method-assign]
            await pulls.sync_peer(origin.member_id, source.peer_url)
            assert node.service.peers.replica(origin.origin).size == 1


async def test_a_malformed_known_query_is_refused(tmp_path: Path, store_for: StoreFor) -> None:
    setup = consortium(tmp_path, 2)
    me, origin = setup.configs
    async with served(origin, store_for(origin)) as source:
        _, key = load_key(me.node_key_path)
        async with PeerClient(me.member_id, key, now_ms, 5.0, 1 << 20, 100) as client:
            with pytest.raises(PeerError, match=r"400|known"):
                await client.checkpoints(origin.member_id, source.peer_url, [b"short"])
