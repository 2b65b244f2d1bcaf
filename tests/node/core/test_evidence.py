"""Holds on equivocation: set only on self-contained evidence that verifies with the roster, on
both stores, kept across a restart; evidence a peer offers is verified before anything is kept."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from node.credentials.key_files import load_key
from node.errors import PeerError
from node.store.base import Evidence
from node.store.sqlite.store import SqliteStore
from protocol.checkpoint import Checkpoint, parse_signed_checkpoint, sign_checkpoint
from protocol.cosignature import ALG_COSIGNATURE
from protocol.entries import Add
from protocol.errors import ProofError, ProtocolError
from protocol.evidence import encode_evidence, verify_evidence
from protocol.note import NoteSignature, add_signatures, key_id
from tests.node.conftest import StoreFor
from tests.node.services import consortium, now_ms, served

PAGE = 4
SIZE = 12


async def _log(tmp_path: Path, store_for: StoreFor):  # type: ignore[no-untyped-def]
    """The owner's log of SIZE entries, signed at SIZE: (owner config, reader config, checkpoint,
    entries, proof from PAGE to SIZE)."""
    setup = consortium(tmp_path)
    owner, reader = setup.configs
    async with served(owner, store_for(owner)) as source:
        service = source.service
        await service.submit([Add(now_ms(), "md5", bytes([i]) * 16) for i in range(SIZE)])
        signed = await service.sign_pending()
        assert signed is not None
        raws = await service.store.entries(owner.origin, 0, SIZE)
        proof = list(await service.proofs.consistency(owner.origin, PAGE, SIZE))
    return owner, reader, signed.raw, raws, proof


def _fork(owner, size: int) -> bytes:  # type: ignore[no-untyped-def]
    _, key = load_key(owner.checkpoint_key_path)
    return sign_checkpoint(Checkpoint(owner.origin, size, bytes(32)), key).raw


async def test_a_node_restarted_mid_catch_up_holds_only_on_evidence_it_can_show(
    tmp_path: Path, store_for: StoreFor
) -> None:
    owner, reader, checkpoint, raws, proof = await _log(tmp_path, store_for)
    async with served(reader, store_for(reader)) as node:
        result = await node.service.peers.ingest(
            owner.origin, checkpoint, 0, raws[:PAGE], proof, None
        )
        assert result.status == "accepted"
    async with served(reader, store_for(reader)) as node:  # restarted: entries, no checkpoint
        peers = node.service.peers
        with pytest.raises(ProofError, match="not held"):
            await peers.offer_checkpoint(owner.origin, _fork(owner, 3))
        assert not peers.is_held(owner.origin) and peers.evidence() == []
        assert await node.service.store.evidence() == []
        # Once the entries reach a checkpoint, the same fork is shown with its proof, and held.
        assert (await peers.ingest(owner.origin, checkpoint, PAGE, raws[PAGE:], [], None)).status
        assert await peers.offer_checkpoint(owner.origin, _fork(owner, 3)) is None
        assert peers.is_held(owner.origin)
        (evidence,) = peers.evidence()
    roster = node.service.rosters.roster
    proven = verify_evidence(roster, evidence)
    assert (proven.first.checkpoint.size, proven.second.checkpoint.size) == (3, SIZE)
    async with served(reader, store_for(reader)) as node:  # the hold survives a restart
        assert node.service.peers.evidence() == [evidence]


async def test_evidence_a_peer_offers_is_held_only_if_it_verifies(
    tmp_path: Path, store_for: StoreFor
) -> None:
    owner, reader, checkpoint, raws, _ = await _log(tmp_path, store_for)
    async with served(reader, store_for(reader)) as node:
        peers = node.service.peers
        fork = parse_signed_checkpoint(_fork(owner, SIZE)).raw
        honest = parse_signed_checkpoint(checkpoint).raw
        wrong_order = encode_evidence(*sorted((fork, honest), reverse=True))
        for bad in (encode_evidence(honest, honest), b"\x93\x01", wrong_order):
            with pytest.raises(ProtocolError):
                await peers.offer_evidence(bad)
        assert not peers.is_held(owner.origin)
        good = encode_evidence(*sorted((fork, honest)))
        assert await peers.offer_evidence(good) is True
        assert await peers.offer_evidence(good) is False
        assert peers.evidence() == [good] and peers.is_held(owner.origin)
        # Its entries are held back from now on.
        result = await peers.ingest(owner.origin, checkpoint, 0, raws, [], None)
        assert result.status == "held"
    with pytest.raises(PeerError):
        async with served(owner, store_for(owner)) as source:
            await source.service.peers.offer_evidence(good)  # evidence of its own log


async def test_an_older_database_gains_the_evidence_encoding_column(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE evidence (id INTEGER PRIMARY KEY AUTOINCREMENT, origin TEXT NOT NULL,"
            " first BLOB NOT NULL, second BLOB NOT NULL, detail TEXT NOT NULL,"
            " seen_ms INTEGER NOT NULL)"
        )
        db.execute("INSERT INTO evidence VALUES (1, 'o', x'01', x'02', 'fork', 5)")
    db.close()
    store = SqliteStore(path)
    await store.open()
    try:
        (old,) = await store.evidence()
        assert (old.origin, old.encoded) == ("o", b"")
    finally:
        await store.close()


@pytest.mark.parametrize("fork_size", [4, 5, 8, 11])
async def test_a_fork_remembered_ahead_is_held_on_evidence_from_the_page_that_passes_it(
    tmp_path: Path, store_for: StoreFor, fork_size: int
) -> None:
    """A checkpoint seen ahead is contradicted by a later page (stored entries before it, the
    page's own after): the node holds on two-size evidence made from both, as anyone checks."""
    owner, reader, checkpoint, raws, _ = await _log(tmp_path, store_for)
    stored = 3
    async with served(owner, store_for(owner)) as source:
        proof = list(await source.service.proofs.consistency(owner.origin, stored, SIZE))
    async with served(reader, store_for(reader)) as node:
        peers = node.service.peers
        result = await peers.ingest(owner.origin, checkpoint, 0, raws[:stored], proof, None)
        assert result.status == "accepted"
        assert await peers.offer_checkpoint(owner.origin, _fork(owner, fork_size)) is not None
        result = await peers.ingest(owner.origin, checkpoint, stored, raws[stored:], [], None)
        assert result.status == "held"
        (evidence,) = peers.evidence()
        roster = node.service.rosters.roster
    proven = verify_evidence(roster, evidence)
    assert (proven.first.checkpoint.size, proven.second.checkpoint.size) == (fork_size, SIZE)
    assert proven.second.checkpoint == parse_signed_checkpoint(checkpoint).checkpoint


async def test_holds_stored_before_evidence_was_self_contained_stay_only_if_they_prove_it(
    tmp_path: Path, store_for: StoreFor
) -> None:
    owner, reader, checkpoint, _, _ = await _log(tmp_path, store_for)
    store = store_for(reader)
    await store.open()
    fork = _fork(owner, SIZE)
    # An empty pair (a restart mid catch-up made those) and a pair of one size, two roots.
    await store.save_evidence(Evidence(owner.origin, b"", fork, "contradicts", 1))
    await store.close()
    async with served(reader, store_for(reader)) as node:
        assert not node.service.peers.is_held(owner.origin)
    store = store_for(reader)
    await store.open()
    await store.save_evidence(Evidence(owner.origin, checkpoint, fork, "two roots", 2))
    await store.close()
    async with served(reader, store_for(reader)) as node:
        peers = node.service.peers
        assert peers.is_held(owner.origin)
        (evidence,) = peers.evidence()
        proven = verify_evidence(node.service.rosters.roster, evidence)
    assert proven.detail == f"{owner.origin} signed two different roots at size {SIZE}"


async def test_a_checkpoint_stored_with_forged_witness_lines_is_served_without_them(
    tmp_path: Path, store_for: StoreFor
) -> None:
    """A copy stored before only verified lines were kept is cleaned when the node starts."""
    owner, reader, checkpoint, raws, _ = await _log(tmp_path, store_for)
    async with served(reader, store_for(reader)) as node:
        peers = node.service.peers
        assert (await peers.ingest(owner.origin, checkpoint, 0, raws, [], None)).status
        witness = node.service.rosters.roster.member(reader.member_id)
        kid = key_id(witness.member_id, witness.node_key, ALG_COSIGNATURE)
        forged = [NoteSignature(witness.member_id, kid, bytes([i]) * 72) for i in range(50)]
        await node.service.store.save_checkpoint(
            owner.origin, SIZE, add_signatures(checkpoint, forged)
        )
    async with served(reader, store_for(reader)) as node:
        served_now = node.service.signed_checkpoint(owner.origin)
    assert served_now is not None and served_now.raw == checkpoint
