"""The event log: recording from real node services over SQLite, and each entry's event
(node/events/recorder.py). Its feed over HTTP: tests/node/http/test_events_api.py."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

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
from node.store.sqlite.store import SqliteStore
from protocol.entries import Add, EntryRef, Retract, encode_entry
from protocol.signals import value_text
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
