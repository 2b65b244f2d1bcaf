"""The event log: recording from real node services over SQLite, the long poll and SSE stream."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from node.app.consortium import build_consortium
from node.config import NodeConfig
from node.core.listeners import Decodings, DurableRange
from node.core.service import NodeService
from node.credentials.key_files import load_key
from node.events.outbox import Outbox
from node.events.recorder import (
    AddPayloads,
    EntryEvents,
    EventRecorder,
    member_lookup,
)
from node.http.common import errors_middleware
from node.http.events_api import events_on_shutdown, events_routes
from node.store.sqlite.store import SqliteStore
from protocol.entries import Add, EntryRef, Retract, encode_entry
from protocol.signals import value_text
from tests.node.event_fakes import fake_outbox, record_adds
from tests.node.store.test_store import Log


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@asynccontextmanager
async def running(config: NodeConfig, db: str = "data.db") -> AsyncIterator[NodeService]:
    _, key = load_key(config.checkpoint_key_path)
    store = SqliteStore(config.directory / db)
    await store.open()
    try:
        service = NodeService(config, store, key, now_ms)
        await service.start(config.roster_path.read_bytes())
        yield service
    finally:
        await store.close()


def outbox_of(service: NodeService, path: Path, deliver: bool = False) -> Outbox:
    """The node's outbox as the runner makes it: events built from `service`'s store."""
    return Outbox(path, deliver, EntryEvents(service.store, member_lookup(service)))


def recorder_for(service: NodeService, outbox: Outbox) -> EventRecorder:
    recorder = EventRecorder(outbox, service.store, member_lookup(service), service.clock)
    service.on_own_checkpoint(recorder.listener)
    service.peers.subscribe(recorder.listener)
    return recorder


def md5(n: int) -> Add:
    return Add(now_ms(), "md5", bytes([n]) * 16, ("terrorist-attack",), f"incident-{n}")


async def copy_log(source: NodeService, target: NodeService) -> None:
    """What a push does: `target` ingests `source`'s whole signed log."""
    signed = source.signed_checkpoint(source.origin)
    assert signed is not None
    entries = await source.store.entries(source.origin, 0, signed.checkpoint.size)
    result = await target.peers.ingest(source.origin, signed.raw, 0, entries, (), "member2")
    assert result.status == "accepted"


async def bodies(outbox: Outbox) -> list[dict[str, Any]]:
    return [e.body() for e in await outbox.after(0, 1000)]


async def test_adds_retracts_and_disputes_of_every_log_become_events(tmp_path: Path) -> None:
    one, two = build_consortium(tmp_path, 2, now_ms()).configs
    async with running(one) as node1, running(two) as node2:
        outbox = outbox_of(node1, tmp_path / "outbox.db", deliver=True)
        await outbox.open()
        try:
            recorder = recorder_for(node1, outbox)
            assert await recorder.catch_up() == 0
            await node1.submit([md5(1), md5(2)])
            await node1.sign_pending()
            await node1.retract(0, "mistake")
            await node1.sign_pending()
            await node2.submit([md5(3)])
            await node2.sign_pending()
            await copy_log(node2, node1)
            await node1.dispute(EntryRef(two.origin, 0), "wrong-label", "not an attack")
            await node1.sign_pending()
            events = await bodies(outbox)
        finally:
            await outbox.close()
    assert [(e["id"], e["event"], e["log"], e["index"]) for e in events] == [
        (1, "add", one.origin, 0),
        (2, "add", one.origin, 1),
        (3, "retract", one.origin, 2),
        (4, "add", two.origin, 0),
        (5, "dispute", one.origin, 3),
    ]
    add, retract, dispute = events[0], events[2], events[4]
    assert add["member"] == "member1"
    assert add["value"] == "01" * 16 and add["signal_type"] == "md5"
    assert add["labels"] == ["terrorist-attack"] and add["incident"] == "incident-1"
    assert retract["target"] == {"log": one.origin, "index": 0}
    assert retract["value"] == add["value"] and retract["reason"] == "mistake"
    assert events[3]["member"] == "member2"
    assert dispute["target"] == {"log": two.origin, "index": 0}
    assert dispute["target_member"] == "member2"
    assert dispute["value"] == "03" * 16 and dispute["reason_code"] == "wrong-label"
    assert dispute["text"] == "not an attack"


async def test_entries_stored_while_not_listening_are_recorded_at_catch_up(
    tmp_path: Path,
) -> None:
    (one,) = build_consortium(tmp_path, 1, now_ms()).configs
    path = tmp_path / "outbox.db"
    async with running(one) as node:
        await node.submit([md5(1)])  # history before the outbox existed: never replayed
        await node.sign_pending()
        outbox = outbox_of(node, path)
        await outbox.open()
        recorder = recorder_for(node, outbox)
        assert await recorder.catch_up() == 0
        await node.submit([md5(2)])
        await node.sign_pending()
        await outbox.close()
    async with running(one) as node:  # a crash: stored, signed, but no listener ran
        await node.submit([md5(3), md5(4)])
        await node.sign_pending()
    async with running(one) as node:
        outbox = outbox_of(node, path)
        await outbox.open()
        try:
            recorder = recorder_for(node, outbox)
            assert await recorder.catch_up() == 2
            assert await recorder.catch_up() == 0
            told_again = DurableRange(one.origin, 0, 4, None, Decodings.of([]))
            await recorder.listener(told_again)  # reported again: no duplicate
            events = await bodies(outbox)
        finally:
            await outbox.close()
    assert [(e["id"], e["index"]) for e in events] == [(1, 1), (2, 2), (3, 3)]


async def test_a_failing_outbox_does_not_fail_signing_and_heals_with_the_next_entries(
    tmp_path: Path,
) -> None:
    (one,) = build_consortium(tmp_path, 1, now_ms()).configs
    async with running(one) as node:
        outbox = outbox_of(node, tmp_path / "outbox.db")
        await outbox.open()
        try:
            recorder = recorder_for(node, outbox)
            await recorder.catch_up()
            await outbox.close()  # the outbox's disk fails
            await node.submit([md5(1)])
            assert await node.sign_pending() is not None  # signing goes on regardless
            await outbox.open()
            await node.submit([md5(2)])
            await node.sign_pending()
            events = await bodies(outbox)
        finally:
            await outbox.close()
    assert [(e["id"], e["index"]) for e in events] == [(1, 0), (2, 1)]


async def test_retention_keeps_the_newest_events_and_the_undelivered(tmp_path: Path) -> None:
    outbox = fake_outbox(tmp_path / "outbox.db", deliver=False, retain_events=3)
    await outbox.open()
    try:
        for i in range(6):
            await record_adds(outbox, "log-a", i + 1)
        assert [e.id for e in await outbox.after(0, 100)] == [4, 5, 6]
        assert await outbox.latest_id() == 6
    finally:
        await outbox.close()


async def test_a_poll_says_which_events_retention_dropped_so_a_consumer_knows_it_missed_some(
    tmp_path: Path,
) -> None:
    outbox = fake_outbox(tmp_path / "outbox.db", deliver=False, retain_events=3)
    await outbox.open()
    try:
        async with events_api(outbox) as url, aiohttp.ClientSession() as http:
            async with http.get(f"{url}/v1/events?after=0") as r:
                first = await r.json()
            assert (first["events"], first["oldest"], first["latest"]) == ([], 1, 0)
            for i in range(6):
                await record_adds(outbox, "log-a", i + 1)
            async with http.get(f"{url}/v1/events?after=1") as r:
                answer = await r.json()
            # Events 2 and 3 are gone: a consumer at 1 sees oldest - 1 > 1 and starts over.
            assert [e["id"] for e in answer["events"]] == [4, 5, 6]
            assert (answer["oldest"], answer["latest"]) == (4, 6)
            async with http.get(f"{url}/v1/events?after=3") as r:
                assert (await r.json())["oldest"] == 4  # a consumer at 3 missed nothing
    finally:
        await outbox.close()


async def test_a_new_event_log_has_a_feed_id_of_its_own_and_a_reopened_one_keeps_its(
    tmp_path: Path,
) -> None:
    ids = []
    for path in ("a.db", "a.db", "b.db"):
        outbox = fake_outbox(tmp_path / path, deliver=False)
        await outbox.open()
        try:
            async with (
                events_api(outbox) as url,
                aiohttp.ClientSession() as http,
                http.get(f"{url}/v1/events") as r,
            ):
                ids.append((await r.json())["feed"])
        finally:
            await outbox.close()
    # Ids from b.db mean other events than ids from a.db: a consumer must start over.
    assert ids[0] == ids[1] != ids[2] and len(ids[0]) == 16


@asynccontextmanager
async def events_api(outbox: Outbox) -> AsyncIterator[str]:
    app = web.Application(middlewares=[errors_middleware])
    app.add_routes(events_routes(outbox))
    app.on_shutdown.append(events_on_shutdown(outbox))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def outbox(tmp_path: Path) -> AsyncIterator[Outbox]:
    box = fake_outbox(tmp_path / "outbox.db", deliver=False)
    await box.open()
    yield box
    await box.close()


async def add_event(outbox: Outbox, index: int) -> None:
    await record_adds(outbox, "log-a", index + 1)


async def test_long_poll_returns_new_events_as_they_are_recorded(outbox: Outbox) -> None:
    async with events_api(outbox) as url, aiohttp.ClientSession() as http:
        await add_event(outbox, 0)
        async with http.get(f"{url}/v1/events?after=0") as r:
            first = await r.json()
        assert [e["id"] for e in first["events"]] == [1] and first["cursor"] == 1

        started = time.monotonic()
        async with http.get(f"{url}/v1/events?after=1&wait=0.2") as r:
            assert await r.json() == {
                "events": [],
                "cursor": 1,
                "oldest": 1,
                "latest": 1,
                "feed": outbox.feed_id,
            }
        assert time.monotonic() - started >= 0.19

        async def poll() -> dict[str, Any]:
            async with http.get(f"{url}/v1/events?after=1&wait=20") as r:
                result: dict[str, Any] = await r.json()
                return result

        waiting = asyncio.create_task(poll())
        await asyncio.sleep(0.2)
        assert not waiting.done()
        started = time.monotonic()
        await add_event(outbox, 1)
        await add_event(outbox, 2)
        answer = await asyncio.wait_for(waiting, 5)
        assert time.monotonic() - started < 1
        assert answer["events"][0]["id"] == 2 and answer["events"][0]["index"] == 1
        assert answer["cursor"] == answer["events"][-1]["id"]

        async with http.get(f"{url}/v1/events?after=0&limit=2") as r:
            assert [e["id"] for e in (await r.json())["events"]] == [1, 2]
        for bad in ("after=-1", "after=x", "wait=61", "wait=soon"):
            async with http.get(f"{url}/v1/events?{bad}") as r:
                assert r.status == 400, bad


async def read_sse(response: aiohttp.ClientResponse, count: int) -> list[tuple[int, str, Any]]:
    """The next `count` SSE messages as (id, event, data); comments are skipped."""
    out: list[tuple[int, str, Any]] = []
    fields: dict[str, str] = {}
    while len(out) < count:
        line = (await response.content.readline()).decode().rstrip("\n")
        if line == "":
            if fields:
                out.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    return out


async def test_the_stream_resumes_after_the_last_event_id(outbox: Outbox) -> None:
    for i in range(3):
        await add_event(outbox, i)
    async with events_api(outbox) as url, aiohttp.ClientSession() as http:
        async with http.get(f"{url}/v1/events/stream", headers={"Last-Event-ID": "1"}) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            got = await asyncio.wait_for(read_sse(r, 2), 5)
            assert [(i, kind) for i, kind, _ in got] == [(2, "add"), (3, "add")]
            assert got[0][2] == {
                "id": 2,
                "event": "add",
                "log": "log-a",
                "index": 1,
                "value": f"{1:032x}",
            }
            await add_event(outbox, 3)
            live = await asyncio.wait_for(read_sse(r, 1), 5)
            assert live[0][0] == 4
        async with http.get(f"{url}/v1/events/stream?after=3") as r:
            assert [m[0] for m in await asyncio.wait_for(read_sse(r, 1), 5)] == [4]


async def test_shutdown_ends_open_streams_promptly(outbox: Outbox) -> None:
    async with aiohttp.ClientSession() as http:
        async with events_api(outbox) as url:
            response = await http.get(f"{url}/v1/events/stream")
            poll = asyncio.create_task(http.get(f"{url}/v1/events?wait=30"))
            await asyncio.sleep(0.2)
            started = time.monotonic()
        # Leaving events_api ran the app's on_shutdown: both waiters returned at once.
        assert time.monotonic() - started < 5
        assert (await response.content.read()) == b""
        response.close()
        answered = await asyncio.wait_for(poll, 5)
        assert answered.status == 200
        assert (await answered.json())["events"] == []
        answered.close()


@pytest.mark.parametrize(
    ("member", "add"),
    [
        ("member1", Add(1, "pdq", bytes(range(32)), ("terrorist-attack", "violent"), "inc-1")),
        (None, Add(2**53, "md5", bytes(16))),
        ('m\u00e9mber "q"', Add(5, "url", 'https://example.org/\u00fcber?q="x"\\y', (), None)),
    ],
)
def test_add_payloads_built_from_pieces_are_the_json_of_their_body(
    member: str | None, add: Add
) -> None:
    payloads = AddPayloads("example.org/log\u00e9", member, 1_700_000_000_000)
    text = payloads.payload(7, add)
    assert text == json.dumps(payloads.add_body(7, add), ensure_ascii=False)
    assert json.loads(text)["value"] == value_text(add.signal_type, add.value)


async def test_entries_that_do_not_decode_make_no_event_and_the_rest_keep_order(
    tmp_path: Path,
) -> None:
    log = "test.hashmesh/a"
    raws = [
        encode_entry(md5(1)),
        b"\xc1 not an entry",
        encode_entry(Retract(now_ms(), EntryRef(log, 0), "mistake")),
        encode_entry(md5(2)),
    ]
    store = SqliteStore(tmp_path / "data.db")
    outbox = Outbox(tmp_path / "outbox.db", False, EntryEvents(store, lambda origin: "member1"))
    await store.open()
    await outbox.open()
    try:
        await Log(log).append(store, raws)
        await outbox.start_cursors({})
        recorder = EventRecorder(outbox, store, lambda origin: "member1", now_ms)
        assert await recorder.record_up_to(log, 4) == 4  # ids: the bad entry holds one
        events = await bodies(outbox)
    finally:
        await outbox.close()
        await store.close()
    assert [(e["id"], e["index"], e["event"]) for e in events] == [
        (1, 0, "add"),
        (3, 2, "retract"),
        (4, 3, "add"),
    ]
    assert events[1]["value"] == events[0]["value"] and events[1]["reason"] == "mistake"


async def test_a_confirmation_becomes_a_confirm_event_naming_the_hash(tmp_path: Path) -> None:
    one, two = build_consortium(tmp_path, 2, now_ms()).configs
    async with running(one) as node1, running(two) as node2:
        outbox = outbox_of(node1, tmp_path / "outbox.db", deliver=True)
        await outbox.open()
        try:
            recorder = recorder_for(node1, outbox)
            assert await recorder.catch_up() == 0
            await node2.submit([md5(7)])
            await node2.sign_pending()
            await copy_log(node2, node1)
            await node1.confirm(EntryRef(two.origin, 0), "also-removed", "same video")
            await node1.sign_pending()
            events = await bodies(outbox)
        finally:
            await outbox.close()
    assert [(e["event"], e["log"], e["index"]) for e in events] == [
        ("add", two.origin, 0),
        ("confirm", one.origin, 0),
    ]
    confirm = events[1]
    assert confirm["target"] == {"log": two.origin, "index": 0}
    assert confirm["target_member"] == "member2" and confirm["value"] == "07" * 16
    assert confirm["reason_code"] == "also-removed" and confirm["text"] == "same video"
