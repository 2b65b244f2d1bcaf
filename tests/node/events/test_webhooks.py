"""Webhook delivery against a real aiohttp receiver on 127.0.0.1, from a real outbox file."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from node.errors import ConfigError
from node.events.outbox import Outbox
from node.events.webhooks import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    WebhookSender,
    load_webhook_secret,
    sign_body,
    verify_signature,
)
from tests.node.event_fakes import fake_outbox, record_adds

SECRET = b"a-shared-secret-of-some-length"


@dataclass
class Receiver:
    """A platform's endpoint: answers `fail_status` to the first `fail_first` POSTs."""

    url: str = ""
    fail_first: int = 0
    fail_status: int = 503
    stall_s: float = 0.0
    attempts: int = 0
    accepted: list[dict[str, object]] = field(default_factory=list)
    bad_signatures: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self, *_: object) -> None:
        """Something happened (here, or in a sender whose on_result is this)."""
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    async def until(self, check: Callable[[], bool], timeout_s: float = 10.0) -> None:
        async with asyncio.timeout(timeout_s):
            while not check():
                await self.changed.wait()

    def unique_ids(self) -> list[int]:
        seen: list[int] = []
        for body in self.accepted:
            event_id = int(str(body["id"]))
            if event_id not in seen:
                seen.append(event_id)
        return seen


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    state = Receiver()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        state.attempts += 1
        state.note()
        if not verify_signature(SECRET, body, request.headers.get(SIGNATURE_HEADER)):
            state.bad_signatures += 1
            return web.Response(status=401)
        if state.stall_s:
            await asyncio.sleep(state.stall_s)
        if state.attempts <= state.fail_first:
            return web.Response(status=state.fail_status)
        data = json.loads(body)
        assert request.headers[EVENT_ID_HEADER] == str(data["id"])
        state.accepted.append(data)
        state.note()
        return web.Response(status=204)

    app = web.Application()
    app.add_routes([web.post("/hook", hook)])
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state.url = f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    try:
        yield state
    finally:
        await runner.cleanup()


def sender(outbox: Outbox, receiver: Receiver, **kwargs: float) -> WebhookSender:
    settings = {"max_backoff_s": 0.05, "base_backoff_s": 0.01, "timeout_s": 2.0, **kwargs}
    return WebhookSender(outbox, receiver.url, SECRET, on_result=receiver.note, **settings)


async def test_failed_deliveries_are_retried_and_each_event_arrives_once_in_order(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.fail_first = 3
    outbox = fake_outbox(tmp_path / "outbox.db", deliver=True)
    await outbox.open()
    try:
        await record_adds(outbox, "log-a", 5)
        webhook = sender(outbox, receiver)
        async with asyncio.TaskGroup() as group:
            task = group.create_task(webhook.run())
            await receiver.until(lambda: len(receiver.accepted) == 5)
            await record_adds(outbox, "log-a", 7)  # arriving while the sender idles
            await receiver.until(lambda: webhook.delivered == 7)
            task.cancel()
        assert receiver.unique_ids() == [1, 2, 3, 4, 5, 6, 7]
        assert len(receiver.accepted) == 7  # acknowledged events are never sent again
        assert receiver.attempts == 7 + 3
        assert receiver.bad_signatures == 0
        assert [e["index"] for e in receiver.accepted] == list(range(7))
        assert all(e["event"] == "add" for e in receiver.accepted)
        assert webhook.failures == 3
        assert webhook.delivered == 7
        assert await outbox.pending_count() == 0
    finally:
        await outbox.close()


async def test_unacknowledged_events_are_delivered_after_a_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    path = tmp_path / "outbox.db"
    outbox = fake_outbox(path, deliver=True)
    await outbox.open()
    await record_adds(outbox, "log-a", 4)
    receiver.fail_first = 10**9  # the platform is down
    async with asyncio.TaskGroup() as group:
        task = group.create_task(sender(outbox, receiver).run())
        await receiver.until(lambda: receiver.attempts >= 3)
        task.cancel()
    await outbox.close()
    assert receiver.accepted == []

    receiver.fail_first = 0  # the platform is back; the node restarts with new objects
    reopened = fake_outbox(path, deliver=True)
    await reopened.open()
    try:
        assert await reopened.pending_count() == 4
        webhook = sender(reopened, receiver)
        async with asyncio.TaskGroup() as group:
            task = group.create_task(webhook.run())
            await receiver.until(lambda: webhook.delivered == 4)
            task.cancel()
        assert receiver.unique_ids() == [1, 2, 3, 4]
        assert await reopened.pending_count() == 0
    finally:
        await reopened.close()


async def test_acknowledged_events_are_not_sent_again_after_a_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    path = tmp_path / "outbox.db"
    outbox = fake_outbox(path, deliver=True)
    await outbox.open()
    await record_adds(outbox, "log-a", 2)
    webhook = sender(outbox, receiver)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(webhook.run())
        await receiver.until(lambda: webhook.delivered == 2)
        task.cancel()
    await outbox.close()

    reopened = fake_outbox(path, deliver=True)
    await reopened.open()
    try:
        await record_adds(reopened, "log-a", 3)
        webhook = sender(reopened, receiver)
        async with asyncio.TaskGroup() as group:
            task = group.create_task(webhook.run())
            await receiver.until(lambda: webhook.delivered == 1)
            task.cancel()
        assert [e["id"] for e in receiver.accepted] == [1, 2, 3]
    finally:
        await reopened.close()


async def test_a_stalled_endpoint_times_out_and_is_retried(
    tmp_path: Path, receiver: Receiver
) -> None:
    receiver.stall_s = 0.5
    receiver.fail_first = 1  # the first (stalled) attempt would fail anyway
    outbox = fake_outbox(tmp_path / "outbox.db", deliver=True)
    await outbox.open()
    try:
        await record_adds(outbox, "log-a", 1)
        webhook = sender(outbox, receiver, timeout_s=0.1)
        async with asyncio.TaskGroup() as group:
            task = group.create_task(webhook.run())
            # A second attempt began: the first one (stalled) timed out; so will this one.
            await receiver.until(lambda: receiver.attempts >= 2)
            receiver.stall_s = 0.0
            await receiver.until(lambda: len(receiver.accepted) >= 1)
            task.cancel()
        assert receiver.unique_ids() == [1]
        assert webhook.failures >= 2
    finally:
        await outbox.close()


async def test_without_a_webhook_events_are_not_queued(tmp_path: Path) -> None:
    outbox = fake_outbox(tmp_path / "outbox.db", deliver=False)
    await outbox.open()
    try:
        await record_adds(outbox, "log-a", 3)
        assert await outbox.pending_count() == 0
        assert [e.id for e in await outbox.after(0, 10)] == [1, 2, 3]
    finally:
        await outbox.close()


def test_signatures_verify_only_the_exact_body_and_secret() -> None:
    body = b'{"id":1,"event":"add"}'
    header = sign_body(SECRET, body)
    assert header.startswith("sha256=") and len(header) == 7 + 64
    assert verify_signature(SECRET, body, header)
    assert not verify_signature(SECRET, body + b" ", header)
    assert not verify_signature(b"another-secret-entirely", body, header)
    assert not verify_signature(SECRET, body, None)


def test_webhook_secret_file_and_url_are_checked(tmp_path: Path) -> None:
    short = tmp_path / "short"
    short.write_text("tiny\n")
    with pytest.raises(ConfigError):
        load_webhook_secret(short)
    good = tmp_path / "good"
    good.write_text("x" * 32 + "\n")
    assert load_webhook_secret(good) == b"x" * 32
    with pytest.raises(ConfigError):
        WebhookSender(fake_outbox(tmp_path / "o.db", deliver=True), "ftp://example", SECRET)
