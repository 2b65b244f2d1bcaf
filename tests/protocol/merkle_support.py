"""Shared fixtures of the Merkle tests: a reference tree of 2048 leaves and all its nodes."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from protocol import merkle
from protocol.merkle import CompactRange, NodeId
from tests.protocol.merkle_reference import CT_LEAVES, ReferenceTree

MAX_EXHAUSTIVE = 300
BIG = 2048
REF = ReferenceTree([i.to_bytes(4, "big") for i in range(BIG)])
SOME_HASH = hashlib.sha256(b"some other hash").digest()


def all_nodes(leaf_hashes: list[bytes]) -> dict[NodeId, bytes]:
    tree = CompactRange()
    nodes: dict[NodeId, bytes] = {}
    for leaf in leaf_hashes:
        nodes.update(tree.append(leaf))
    return nodes


NODES = all_nodes([REF.leaf(i) for i in range(BIG)])
CT_TREE = all_nodes([merkle.leaf_hash(entry) for entry in CT_LEAVES])


def only(ids: list[NodeId], nodes: Mapping[NodeId, bytes] = NODES) -> dict[NodeId, bytes]:
    """Just the nodes asked for: proves the ids are sufficient."""
    return {node_id: nodes[node_id] for node_id in ids}


def hx(hashes: list[str]) -> list[bytes]:
    return [bytes.fromhex(h) for h in hashes]
