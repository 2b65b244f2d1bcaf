"""The operator API's pull stream over the event log (node/http/events_api.py): the long
poll, the SSE stream, what retention dropped, the feed's identity, shutdown."""

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

from node.events.outbox import Outbox
from node.http.common import errors_middleware
from node.http.events_api import events_on_shutdown, events_routes
from tests.node.event_fakes import fake_outbox, record_adds


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
