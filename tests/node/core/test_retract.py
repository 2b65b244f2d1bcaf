"""NodeService.retract: an entry of ours is retracted once, however often or concurrently it
is asked; a retraction is not retracted; disputes and confirmations of ours can be."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.app.consortium import build_consortium
from node.core.service import NodeService
from node.errors import RequestError, StoreError
from node.formats.json_views import parse_add
from protocol.entries import EntryRef, Retract, decode_entry
from tests.node.conftest import StoreFor
from tests.node.events.test_events import copy_log, md5, now_ms, running
from tests.node.lossy import held, lose_answers, new_md5
from tests.node.services import consortium, served


async def retractions_of(service: NodeService, index: int) -> list[int]:
    """The indexes of our log's retractions of our entry `index`."""
    raws = await service.store.entries(service.origin, 0, service.own_size)
    return [
        i
        for i, raw in enumerate(raws)
        if isinstance(entry := decode_entry(raw), Retract)
        and entry.target == EntryRef(service.origin, index)
    ]


async def test_retracting_an_entry_again_answers_the_first_retraction_and_appends_nothing(
    tmp_path: Path, store_for: StoreFor
) -> None:
    config = consortium(tmp_path).configs[0]
    async with served(config, store_for(config)) as node:
        service = node.service
        await service.submit([parse_add(new_md5(), now_ms()), parse_add(new_md5(), now_ms())])
        first = await service.retract(0, "mistake")
        assert first.appended and first.ref == EntryRef(config.origin, 2)
        # Not checkpointed yet: the retraction the store holds counts all the same.
        assert service.own_checkpoint is None
        again = await service.retract(0, "another reason")
        assert not again.appended and again.ref == first.ref
        assert service.own_size == 3
        (raw,) = await service.store.entries(config.origin, 2, 3)
        retraction = decode_entry(raw)
        assert isinstance(retraction, Retract) and retraction.reason == "mistake"
    # What the store holds, not what this process remembers, answers after a restart.
    async with served(config, store_for(config)) as node:
        again = await node.service.retract(0, "mistake")
        assert not again.appended and again.ref == EntryRef(config.origin, 2)
        other = await node.service.retract(1, "mistake")
        assert other.appended and other.ref == EntryRef(config.origin, 3)
        assert await retractions_of(node.service, 0) == [2]


async def test_concurrent_retractions_of_one_entry_append_exactly_one(
    tmp_path: Path, store_for: StoreFor
) -> None:
    config = consortium(tmp_path).configs[0]
    async with served(config, store_for(config)) as node:
        await node.service.submit([parse_add(new_md5(), now_ms())])
        done = await asyncio.gather(*(node.service.retract(0, f"try {i}") for i in range(5)))
        assert sorted(d.appended for d in done) == [False] * 4 + [True]
        assert {d.ref for d in done} == {EntryRef(config.origin, 1)}
        assert await retractions_of(node.service, 0) == [1]
        assert node.service.own_size == 2


async def test_a_retraction_cannot_be_retracted_nor_an_entry_our_log_does_not_have(
    tmp_path: Path, store_for: StoreFor
) -> None:
    config = consortium(tmp_path).configs[0]
    async with served(config, store_for(config)) as node:
        await node.service.submit([parse_add(new_md5(), now_ms())])
        retraction = await node.service.retract(0, "mistake")
        with pytest.raises(RequestError, match="entry 1 is a retraction"):
            await node.service.retract(retraction.ref.index, "undo")
        for index in (-1, 2):
            with pytest.raises(RequestError, match=f"no entry {index}"):
                await node.service.retract(index, "")
        assert node.service.own_size == 2


async def test_a_retraction_whose_answer_the_store_lost_is_found_by_the_next_retract(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = consortium(tmp_path).configs[0]
    store = store_for(config)
    async with served(config, store) as node:
        await node.service.submit([parse_add(new_md5(), now_ms())])
        lose_answers(store, monkeypatch, heads_lost=1)
        with pytest.raises(StoreError):  # the outcome is unknown to the node
            await node.service.retract(0, "mistake")
        # The retry settles that write first, then finds the retraction it made.
        again = await node.service.retract(0, "mistake")
        assert not again.appended and again.ref == EntryRef(config.origin, 1)
        assert len(await held(store, config.origin)) == 2


async def test_a_dispute_or_a_confirmation_of_ours_can_be_retracted_once(tmp_path: Path) -> None:
    one, two = build_consortium(tmp_path, 2, now_ms()).configs
    async with running(one) as node1, running(two) as node2:
        await node2.submit([md5(1), md5(2)])
        await node2.sign_pending()
        await copy_log(node2, node1)
        dispute = await node1.dispute(EntryRef(two.origin, 0), "wrong-label", "")
        confirm = await node1.confirm(EntryRef(two.origin, 1), "reviewed", "")
        for ref in (dispute, confirm):
            done = await node1.retract(ref.index, "withdrawn")
            assert done.appended
            assert not (await node1.retract(ref.index, "withdrawn")).appended
            assert await retractions_of(node1, ref.index) == [done.ref.index]
        assert node1.own_size == 4
