"""Writes whose outcome is unknown: a lost answer to COMMIT, a cancelled caller, a store that
cannot answer, a locked database. The node gets back in step with its store by itself, own
log and peers' alike. Real stores, real HTTP, a real TCP proxy on loopback."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from node.core.listeners import DurableRange
from node.errors import StoreError
from node.formats.json_views import parse_add
from node.store.postgres import PostgresStore
from node.store.sqlite.store import SqliteStore
from tests.node.conftest import PG_DSN, StoreFor, _drop_schema, _require_postgres
from tests.node.core.test_ingest_pipeline import PAGE, fed_reader
from tests.node.lossy import DroppingProxy, held, lose_answers, new_md5, post_submit, via
from tests.node.services import consortium, now_ms, served


async def test_a_lost_answer_to_commit_leaves_the_entry_stored_once_and_submits_go_on(
    tmp_path: Path,
) -> None:
    await _require_postgres()
    host = urlsplit(PG_DSN)
    schema = f"t_{secrets.token_hex(6)}"
    config = consortium(tmp_path).configs[0]
    try:
        async with DroppingProxy(host.hostname or "127.0.0.1", host.port or 5432) as proxy:
            store = PostgresStore(via(PG_DSN, proxy.port), schema=schema, timeout_s=10)
            async with served(config, store) as node:
                proxy.arm(b"COMMIT")
                lost = new_md5()
                status, body = await post_submit(node, [lost])
                assert proxy.dropped == 1  # the answer to COMMIT never reached the node
                # The store made it: the node believes the store and acknowledges it.
                assert status == 200, body
                assert body["entries"] == [{"log": config.origin, "index": 0}]
                for index in (1, 2):
                    status, body = await post_submit(node, [new_md5()])
                    assert status == 200, body
                    assert body["entries"][0]["index"] == index
                assert len(await held(store, config.origin)) == 3
                hits = await node.service.lookup("md5", [bytes.fromhex(lost["value"])])
                assert [(s.ref.log, s.ref.index) for s in hits[0].submissions] == [
                    (config.origin, 0)
                ]
    finally:
        await _drop_schema(schema)


async def test_a_submit_cancelled_while_the_writer_writes_it_leaves_the_log_writable(
    tmp_path: Path,
) -> None:
    config = consortium(tmp_path).configs[0]
    async with served(config) as node:
        service = node.service
        blocker = sqlite3.connect(config.directory / "data.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # the writer process waits for this lock
        try:
            first = asyncio.create_task(service.submit([parse_add(new_md5(), now_ms())]))
            await asyncio.sleep(1.0)  # the request is with the writer, which waits
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
        finally:
            blocker.rollback()  # the writer now makes the cancelled write
            blocker.close()
        refs = await service.submit([parse_add(new_md5(), now_ms())])
        assert [r.index for r in refs] == [1]  # after the cancelled one, which was made
        assert service.own_size == 2
        assert len(set(await held(service.store, config.origin))) == 2
        refs = await service.submit([parse_add(new_md5(), now_ms())])
        assert [r.index for r in refs] == [2]


async def test_a_peer_batch_stored_though_its_store_reported_a_failure_is_kept_and_the_log_goes_on(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fed_reader(tmp_path, store_for, 3) as (owner, node, checkpoint, pages, proofs):
        peers, store = node.service.peers, node.service.store
        heard: list[tuple[int, int]] = []

        async def heard_of(told: DurableRange) -> None:
            heard.append((told.start, told.end))

        peers.subscribe(heard_of)
        lose_answers(store, monkeypatch, heads_lost=0)
        with pytest.raises(StoreError, match="before COMMIT"):
            await peers.ingest(owner.origin, checkpoint, 0, pages[0], proofs[0], None)
        # The store holds the page: so does the replica, and the listeners heard of it.
        assert peers.replica(owner.origin).size == PAGE
        assert heard == [(0, PAGE)]
        rest = [e for page in pages[1:] for e in page]
        result = await peers.ingest(owner.origin, checkpoint, PAGE, rest, [], None)
        assert result.status == "accepted" and result.size == 3 * PAGE
        assert (await store.log_heads())[owner.origin].size == 3 * PAGE


async def test_a_submit_whose_outcome_cannot_be_settled_yet_is_settled_before_the_next(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = consortium(tmp_path).configs[0]
    first = [new_md5()]
    async with served(config, store_for(config)) as node:
        lose_answers(node.service.store, monkeypatch, heads_lost=1)
        status, body = await post_submit(node, first, key="k-unsettled")
        assert status == 503, body  # made, but neither its answer nor the store's head came
        status, body = await post_submit(node, [new_md5()])
        assert status == 200 and body["entries"][0]["index"] == 1, body  # settled first
        status, body = await post_submit(node, first, key="k-unsettled")
        assert status == 200 and body["entries"][0]["index"] == 0, body  # the retry: no copy
        assert node.service.own_size == 2
        assert len(await held(node.service.store, config.origin)) == 2


async def test_a_peer_batch_whose_outcome_cannot_be_settled_yet_is_settled_by_the_next_pipeline(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fed_reader(tmp_path, store_for, 3) as (owner, node, checkpoint, pages, proofs):
        peers, store = node.service.peers, node.service.store
        heard: list[tuple[int, int]] = []

        async def heard_of(told: DurableRange) -> None:
            heard.append((told.start, told.end))

        peers.subscribe(heard_of)
        lose_answers(store, monkeypatch, heads_lost=1)
        with pytest.raises(StoreError, match="before COMMIT"):
            await peers.ingest(owner.origin, checkpoint, 0, pages[0], proofs[0], None)
        assert peers.replica(owner.origin).size == 0  # not known yet
        everything = [e for page in pages for e in page]
        result = await peers.ingest(owner.origin, checkpoint, 0, everything, [], None)
        assert result.status == "accepted" and result.size == 3 * PAGE
        assert heard == [(0, PAGE), (PAGE, 3 * PAGE)]
        assert (await store.log_heads())[owner.origin].size == 3 * PAGE


async def test_a_submit_refused_by_a_locked_database_fails_after_one_busy_wait_then_one_lands(
    tmp_path: Path,
) -> None:
    config = consortium(tmp_path).configs[0]
    busy_s = 3.0
    async with served(config, SqliteStore(config.directory / "data.db", busy_s)) as node:
        blocker = sqlite3.connect(config.directory / "data.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            began = time.monotonic()
            status, body = await post_submit(node, [new_md5()])
            waited = time.monotonic() - began
        finally:
            blocker.rollback()
            blocker.close()
        assert status == 503 and "locked" in body["detail"], body
        # Settling reads the log without waiting for the lock a second time.
        assert busy_s <= waited < 1.6 * busy_s, waited
        status, body = await post_submit(node, [new_md5()])
        assert status == 200 and body["entries"][0]["index"] == 0, body
