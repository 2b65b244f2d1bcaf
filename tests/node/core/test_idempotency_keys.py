"""Idempotency keys of POST /v1/submit: a retry after a lost answer, by a client or by
`hashmesh submit` itself, adds nothing twice; keys outlive restarts and are bounded."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from node.cli import entry_writes as operator_cli
from node.cli.operator_client import OperatorClient
from node.store import postgres_writes
from node.store.base import Store, Submission
from node.store.schema import SUBMISSION_RETENTION_MS
from node.store.sqlite import writes as sqlite_writes
from tests.node.conftest import StoreFor
from tests.node.lossy import DroppingProxy, new_md5, post_submit
from tests.node.services import consortium, served
from tests.node.store.test_store import A, Log


async def test_a_retry_with_the_same_idempotency_key_after_a_lost_answer_adds_one_entry(
    tmp_path: Path, store_for: StoreFor
) -> None:
    config = consortium(tmp_path).configs[0]
    items = [new_md5(), new_md5()]
    async with served(config, store_for(config)) as node:
        port = urlsplit(node.operator_url).port
        assert port is not None
        async with DroppingProxy("127.0.0.1", port) as proxy:
            proxy.arm(b"POST /v1/submit")
            with pytest.raises(aiohttp.ClientError):
                await post_submit(node, items, key="k-1", url=f"http://127.0.0.1:{proxy.port}")
            assert proxy.dropped == 1
        status, body = await post_submit(node, items, key="k-1")
        assert status == 200, body
        assert [e["index"] for e in body["entries"]] == [0, 1]
        assert node.service.own_size == 2
        # The same key for another request is refused; without a key it is a new submission.
        status, body = await post_submit(node, [new_md5()], key="k-1")
        assert status == 422, body
        status, body = await post_submit(node, items)
        assert [e["index"] for e in body["entries"]] == [2, 3]
    # The key outlives a restart.
    async with served(config, store_for(config)) as node:
        status, body = await post_submit(node, items, key="k-1")
        assert [e["index"] for e in body["entries"]] == [0, 1]
        assert node.service.own_size == 4


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
            items = [new_md5(), new_md5()]
            # The CLI's own client, on a thread of its own: it blocks as the command does.
            result = await asyncio.to_thread(
                operator_cli.submit_with_retries, api, items, "cli-run-1"
            )
            assert proxy.dropped == 1  # the first answer was lost; the retry got the entries
        assert [e["index"] for e in result["entries"]] == [0, 1]
        assert node.service.own_size == 2


async def test_two_requests_with_one_idempotency_key_at_once_add_the_items_once(
    tmp_path: Path,
) -> None:
    config = consortium(tmp_path).configs[0]
    items = [new_md5(), new_md5(), new_md5()]
    async with served(config) as node:
        answers = await asyncio.gather(*(post_submit(node, items, key="same") for _ in range(4)))
        assert {status for status, _ in answers} == {200}
        assert all(body == answers[0][1] for _, body in answers)
        assert node.service.own_size == 3


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
        monkeypatch.setattr(postgres_writes, "MAX_SUBMISSIONS", 3)
        for n in range(5):
            await _keyed_append(store, log, f"k{n}", n)
    kept = [key for key in ("k0", "k1", "k2", "k3", "k4") if await store.submission(key)]
    assert kept == ["k2", "k3", "k4"]


async def test_a_key_past_its_retention_is_forgotten_even_before_it_is_dropped(
    tmp_path: Path, store_for: StoreFor
) -> None:
    config = consortium(tmp_path).configs[0]
    items = [new_md5()]
    async with served(config, store_for(config)) as node:
        status, body = await post_submit(node, items, key="day-old")
        assert body["entries"][0]["index"] == 0
        own_log, real_clock = node.service.own_log, node.service.clock
        own_log.clock = lambda: real_clock() + SUBMISSION_RETENTION_MS + 1000
        status, body = await post_submit(node, items, key="day-old")
        assert status == 200 and body["entries"][0]["index"] == 1, body  # a new submission
        status, body = await post_submit(node, items, key="day-old")
        assert body["entries"][0]["index"] == 1  # and that one is kept under the key now
