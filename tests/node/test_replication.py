"""Who a node pushes and relays new entries to: every peer for its own entries, a few random
peers for what it learned from another relay or a pull (gossip), nobody for what the origin
pushed to it (the origin reaches everyone itself), and never a peer that already holds them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from node.keys import load_key
from node.peer_client import PeerClient
from node.replication import Replicator
from tests.node.conftest import StoreFor
from tests.node.services import consortium, now_ms, served


async def test_own_entries_go_to_every_peer_and_relays_to_a_few(
    tmp_path: Path, store_for: StoreFor
) -> None:
    # Regression: relaying to every peer made each takedown cost n^2 pushes; 20 nodes at ten
    # takedowns a second saturated both cores and propagation p99 rose to 10-20 s.
    setup = consortium(tmp_path, 8)
    me, origin = setup.configs[0], setup.configs[1]
    async with served(replace(me, relay_fanout=3), store_for(me)) as node:
        _, key = load_key(me.node_key_path)
        async with PeerClient(me.member_id, key, now_ms, 5.0, 1 << 20, 100) as client:
            replicator = Replicator(node.service, client)
            await replicator._on_new_entries(me.origin, 0, 5, None)
            assert len(replicator.pending_pushes()) == 7  # our own: to every peer
            for peer in replicator.pending_pushes():
                replicator._peers[peer].dirty.clear()
            await replicator._on_new_entries(origin.origin, 0, 5, origin.member_id)
            assert replicator.pending_pushes() == {}  # straight from the origin: no relay
            await replicator._on_new_entries(origin.origin, 0, 5, "member3")
            relayed = replicator.pending_pushes()
            assert len(relayed) == 3
            assert not {"member2", "member3"} & set(relayed)  # never back to origin or source


async def test_a_peer_known_to_hold_the_entries_gets_no_push(
    tmp_path: Path, store_for: StoreFor
) -> None:
    setup = consortium(tmp_path, 3)
    me = setup.configs[0]
    async with served(me, store_for(me)) as node:
        _, key = load_key(me.node_key_path)
        async with PeerClient(me.member_id, key, now_ms, 5.0, 1 << 20, 100) as client:
            replicator = Replicator(node.service, client)
            replicator.peer_status()  # learn the peers
            replicator._peers["member2"].holds[me.origin] = 5
            await replicator._on_new_entries(me.origin, 0, 5, None)
            assert set(replicator.pending_pushes()) == {"member3"}
