"""Writes whose outcome is unknown: a lost answer to COMMIT, a cancelled caller, a lost HTTP
answer. The node gets back in step with its store by itself, and a retry with the same
Idempotency-Key adds nothing twice. Real stores, real HTTP, a real TCP proxy on loopback."""

from __future__ import annotations

import asyncio
import secrets
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest

from node.cli import operator as operator_cli
from node.errors import StoreError
from node.jsonview import parse_add
from node.operator_client import OperatorClient
from node.store import postgres as postgres_store
from node.store import sqlite_writes
from node.store.base import EntryRow, Store, Submission
from node.store.postgres import PostgresStore
from node.store.schema import SUBMISSION_RETENTION_MS
from protocol.merkle import NodeId
from tests.node.conftest import PG_DSN, StoreFor, _drop_schema, _require_postgres
from tests.node.services import Served, consortium, now_ms, served
from tests.node.test_ingest_pipeline import PAGE, fed_reader
from tests.node.test_store import A, Log


class DroppingProxy:
    """A TCP proxy on 127.0.0.1 that, once armed, loses the server's answer to the first
    client message containing `trigger`: it forwards that message, waits for the answer
    (so the server has acted on it), drops the answer and closes both connections."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._trigger: bytes | None = None
        self.dropped = 0
        self.port = 0
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()

    def arm(self, trigger: bytes) -> None:
        self._trigger = trigger

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


def _via(dsn: str, port: int) -> str:
    """`dsn` with its host and port replaced by the proxy's."""
    parts = urlsplit(dsn)
    user = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{port}"))


async def _post(
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


def _md5() -> dict[str, Any]:
    """A new md5 hash to submit."""
    return {"signal_type": "md5", "value": secrets.token_hex(16)}


async def _held(store: Store, origin: str) -> list[bytes]:
    return await store.entries(origin, 0, 1000)


async def test_a_lost_answer_to_commit_leaves_the_entry_stored_once_and_submits_go_on(
    tmp_path: Path,
) -> None:
    await _require_postgres()
    host = urlsplit(PG_DSN)
    schema = f"t_{secrets.token_hex(6)}"
    config = consortium(tmp_path).configs[0]
    try:
        async with DroppingProxy(host.hostname or "127.0.0.1", host.port or 5432) as proxy:
            store = PostgresStore(_via(PG_DSN, proxy.port), schema=schema, timeout_s=10)
            async with served(config, store) as node:
                proxy.arm(b"COMMIT")
                lost = _md5()
                status, body = await _post(node, [lost])
                assert proxy.dropped == 1  # the answer to COMMIT never reached the node
                # The store made it: the node believes the store and acknowledges it.
                assert status == 200, body
                assert body["entries"] == [{"log": config.origin, "index": 0}]
                for index in (1, 2):
                    status, body = await _post(node, [_md5()])
                    assert status == 200, body
                    assert body["entries"][0]["index"] == index
                assert len(await _held(store, config.origin)) == 3
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
            first = asyncio.create_task(service.submit([parse_add(_md5(), now_ms())]))
            await asyncio.sleep(1.0)  # the request is with the writer, which waits
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
        finally:
            blocker.rollback()  # the writer now makes the cancelled write
            blocker.close()
        refs = await service.submit([parse_add(_md5(), now_ms())])
        assert [r.index for r in refs] == [1]  # after the cancelled one, which was made
        assert service.own_size == 2
        assert len(set(await _held(service.store, config.origin))) == 2
        refs = await service.submit([parse_add(_md5(), now_ms())])
        assert [r.index for r in refs] == [2]


async def test_a_retry_with_the_same_idempotency_key_after_a_lost_answer_adds_one_entry(
    tmp_path: Path, store_for: StoreFor
) -> None:
    config = consortium(tmp_path).configs[0]
    items = [_md5(), _md5()]
    async with served(config, store_for(config)) as node:
        port = urlsplit(node.operator_url).port
        assert port is not None
        async with DroppingProxy("127.0.0.1", port) as proxy:
            proxy.arm(b"POST /v1/submit")
            with pytest.raises(aiohttp.ClientError):
                await _post(node, items, key="k-1", url=f"http://127.0.0.1:{proxy.port}")
            assert proxy.dropped == 1
        status, body = await _post(node, items, key="k-1")
        assert status == 200, body
        assert [e["index"] for e in body["entries"]] == [0, 1]
        assert node.service.own_size == 2
        # The same key for another request is refused; without a key it is a new submission.
        status, body = await _post(node, [_md5()], key="k-1")
        assert status == 422, body
        status, body = await _post(node, items)
        assert [e["index"] for e in body["entries"]] == [2, 3]
    # The key outlives a restart.
    async with served(config, store_for(config)) as node:
        status, body = await _post(node, items, key="k-1")
        assert [e["index"] for e in body["entries"]] == [0, 1]
        assert node.service.own_size == 4


async def test_a_peer_batch_stored_though_its_store_reported_a_failure_is_kept_and_the_log_goes_on(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fed_reader(tmp_path, store_for, 3) as (owner, node, checkpoint, pages, proofs):
        peers, store = node.service.peers, node.service.store
        real_append = store.append
        heard: list[tuple[int, int]] = []

        async def heard_of(origin: str, start: int, end: int, via: str | None) -> None:
            heard.append((start, end))

        peers.subscribe(heard_of)

        async def append_then_lose_the_answer(
            origin: str,
            start: int,
            entries: Sequence[EntryRow],
            nodes: Sequence[tuple[NodeId, bytes]],
            checkpoint: bytes | None,
            checkpoint_size: int | None = None,
            **more: Any,
        ) -> None:
            await real_append(origin, start, entries, nodes, checkpoint, checkpoint_size, **more)
            if start == 0:
                raise StoreError("the connection closed before COMMIT was answered")

        monkeypatch.setattr(store, "append", append_then_lose_the_answer)
        with pytest.raises(StoreError, match="before COMMIT"):
            await peers.ingest(owner.origin, checkpoint, 0, pages[0], proofs[0], None)
        # The store holds the page: so does the replica, and the listeners heard of it.
        assert peers.replica(owner.origin).size == PAGE
        assert heard == [(0, PAGE)]
        rest = [e for page in pages[1:] for e in page]
        result = await peers.ingest(owner.origin, checkpoint, PAGE, rest, [], None)
        assert result.status == "accepted" and result.size == 3 * PAGE
        assert (await store.log_heads())[owner.origin].size == 3 * PAGE


async def test_the_cli_retries_a_submit_whose_answer_was_lost_with_its_key_and_adds_it_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(operator_cli, "SUBMIT_RETRY_S", 0.1)
    config = consortium(tmp_path).configs[0]
    async with served(config) as node:
        port = urlsplit(node.operator_url).port
        assert port is not None
        async with DroppingProxy("127.0.0.1", port) as proxy:
            proxy.arm(b"POST /v1/submit")
            api = OperatorClient(f"http://127.0.0.1:{proxy.port}", node.token, timeout_s=10)
            items = [_md5(), _md5()]
            # The CLI's own client, on a thread of its own: it blocks as the command does.
            result = await asyncio.to_thread(
                operator_cli.submit_with_retries, api, items, "cli-run-1"
            )
            assert proxy.dropped == 1  # the first answer was lost; the retry got the entries
        assert [e["index"] for e in result["entries"]] == [0, 1]
        assert node.service.own_size == 2


async def _keyed_append(store: Store, log: Log, key: str, created_ms: int) -> None:
    start, rows, nodes = log.batch([key.encode()])
    kept = Submission(key, b"digest", start, 1, created_ms)
    await store.append(log.origin, start, rows, nodes, None, submission=kept)


async def test_idempotency_keys_are_kept_for_their_retention_then_dropped(store: Store) -> None:
    log = Log(A)
    await _keyed_append(store, log, "old", 1_000)
    await _keyed_append(store, log, "recent", 2_000)
    assert await store.submission("old") == Submission("old", b"digest", 0, 1, 1_000)
    await _keyed_append(store, log, "new", 1_001 + SUBMISSION_RETENTION_MS)
    assert await store.submission("old") is None  # older than the retention
    assert await store.submission("recent") is not None
    assert await store.submission("new") == Submission(
        "new", b"digest", 2, 1, 1_001 + SUBMISSION_RETENTION_MS
    )
    assert len(await store.entries(A, 0, 10)) == 3  # the entries themselves stay


async def test_idempotency_keys_beyond_the_newest_allowed_are_dropped(
    tmp_path: Path, backend: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = Log(A)
    if backend == "sqlite":
        # The bound applies in the writer process: run its write here, where it is patched.
        monkeypatch.setattr(sqlite_writes, "MAX_SUBMISSIONS", 3)
        conn = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
        try:
            for n in range(5):
                start, rows, nodes = log.batch([b"e%d" % n])
                keyed = (f"k{n}", b"digest", start, 1, n)
                sqlite_writes.run_write(
                    conn, "append", (A, start, list(map(tuple, rows)), nodes, None, None, keyed)
                )
        finally:
            conn.close()
    else:
        monkeypatch.setattr(postgres_store, "MAX_SUBMISSIONS", 3)
        for n in range(5):
            await _keyed_append(store, log, f"k{n}", n)
    kept = [key for key in ("k0", "k1", "k2", "k3", "k4") if await store.submission(key)]
    assert kept == ["k2", "k3", "k4"]


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


async def test_a_submit_whose_outcome_cannot_be_settled_yet_is_settled_before_the_next(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = consortium(tmp_path).configs[0]
    first = [_md5()]
    async with served(config, store_for(config)) as node:
        lose_answers(node.service.store, monkeypatch, heads_lost=1)
        status, body = await _post(node, first, key="k-unsettled")
        assert status == 503, body  # made, but neither its answer nor the store's head came
        status, body = await _post(node, [_md5()])
        assert status == 200 and body["entries"][0]["index"] == 1, body  # settled first
        status, body = await _post(node, first, key="k-unsettled")
        assert status == 200 and body["entries"][0]["index"] == 0, body  # the retry: no copy
        assert node.service.own_size == 2
        assert len(await _held(node.service.store, config.origin)) == 2


async def test_two_requests_with_one_idempotency_key_at_once_add_the_items_once(
    tmp_path: Path,
) -> None:
    config = consortium(tmp_path).configs[0]
    items = [_md5(), _md5(), _md5()]
    async with served(config) as node:
        answers = await asyncio.gather(*(_post(node, items, key="same") for _ in range(4)))
        assert {status for status, _ in answers} == {200}
        assert all(body == answers[0][1] for _, body in answers)
        assert node.service.own_size == 3


async def test_a_peer_batch_whose_outcome_cannot_be_settled_yet_is_settled_by_the_next_pipeline(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fed_reader(tmp_path, store_for, 3) as (owner, node, checkpoint, pages, proofs):
        peers, store = node.service.peers, node.service.store
        heard: list[tuple[int, int]] = []

        async def heard_of(origin: str, start: int, end: int, via: str | None) -> None:
            heard.append((start, end))

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
