"""PagePipeline: page k+1 verified while page k is stored, committed in order, on both stores."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import pytest

import node.core.pipeline as pipeline_module
from node.config import NodeConfig
from node.core.listeners import DurableRange
from node.core.service import NodeService
from node.errors import StoreError
from node.store import decoded as entry_cache
from node.store.base import EntryRow, Store
from protocol.checkpoint import Checkpoint, parse_signed_checkpoint
from protocol.entries import Add, Entry
from protocol.errors import ProofError
from protocol.merkle import NodeId
from tests.node.conftest import StoreFor
from tests.node.services import Served, consortium, now_ms, served

PAGE = 4


Appended = list[tuple[int, int, int | None]]


def intercept_appends(
    store: Store, monkeypatch: pytest.MonkeyPatch, before: Callable[[int], Awaitable[None]]
) -> Appended:
    """Record each append as (start, end, checkpoint size) once it is made; `before(number)`
    runs first and may wait or raise (then the append is not made)."""
    real_append = store.append
    made: Appended = []
    calls = 0

    async def append(
        origin: str,
        start: int,
        entries: Sequence[EntryRow],
        nodes: Sequence[tuple[NodeId, bytes]],
        checkpoint: bytes | None,
        checkpoint_size: int | None = None,
    ) -> None:
        nonlocal calls
        calls += 1
        await before(calls)
        made.append((start, start + len(entries), checkpoint_size))
        await real_append(origin, start, entries, nodes, checkpoint, checkpoint_size)

    monkeypatch.setattr(store, "append", append)
    return made


def first_waits_for(event: asyncio.Event) -> Callable[[int], Awaitable[None]]:
    """For intercept_appends: the first append waits until `event` is set."""

    async def before(number: int) -> None:
        if number == 1:
            await event.wait()

    return before


def body(raw: bytes) -> Checkpoint:
    return parse_signed_checkpoint(raw).checkpoint


async def pages_of(
    origin: NodeService, count: int
) -> tuple[bytes, list[list[bytes]], list[list[bytes]]]:
    """`count` pages of PAGE entries under one checkpoint, with each page's proof."""
    await origin.submit([Add(now_ms(), "md5", bytes([i]) * 16) for i in range(count * PAGE)])
    signed = await origin.sign_pending()
    assert signed is not None
    size = count * PAGE
    raws = await origin.store.entries(origin.origin, 0, size)
    pages = [raws[i : i + PAGE] for i in range(0, size, PAGE)]
    proofs = [
        list(await origin.proofs.consistency(origin.origin, end, size)) if end < size else []
        for end in range(PAGE, size + 1, PAGE)
    ]
    return signed.raw, pages, proofs


@contextlib.asynccontextmanager
async def fed_reader(
    tmp_path: Path, store_for: StoreFor, count: int
) -> AsyncIterator[tuple[NodeConfig, Served, bytes, list[list[bytes]], list[list[bytes]]]]:
    """A reader node, and `count` pages of the owner's log (the owner has stopped) to offer
    it: (the owner's config, the reader, checkpoint, pages, proofs)."""
    setup = consortium(tmp_path)
    owner, reader = setup.configs
    async with served(owner, store_for(owner)) as source:
        checkpoint, pages, proofs = await pages_of(source.service, count)
    async with served(reader, store_for(reader)) as node:
        yield owner, node, checkpoint, pages, proofs


async def test_pages_through_a_pipeline_are_durable_before_listeners_hear_of_them(
    tmp_path: Path, store_for: StoreFor
) -> None:
    async with fed_reader(tmp_path, store_for, 3) as (owner, node, checkpoint, pages, proofs):
        peers = node.service.peers
        heard: list[tuple[int, int, int]] = []

        async def listener(told: DurableRange) -> None:
            stored = (await node.service.store.log_heads())[told.origin].size
            heard.append((told.start, told.end, stored))

        peers.subscribe(listener)
        async with peers.pipeline(owner.origin, "member1") as pipeline:
            for k, (page, proof) in enumerate(zip(pages, proofs, strict=True)):
                result = await pipeline.offer(checkpoint, k * PAGE, page, proof)
                assert result.status == "accepted" and result.size == (k + 1) * PAGE
        # Pages stored together are heard of together: contiguous ranges, in order.
        starts = [s for s, _, _ in heard]
        ends = [e for _, e, _ in heard]
        assert starts[0] == 0 and ends[-1] == 12 and starts[1:] == ends[:-1]
        assert all(stored >= end for _, end, stored in heard)
        replica = peers.replica(owner.origin)
        head = (await node.service.store.log_heads())[owner.origin]
        assert replica.size == head.size == 12
        assert head.checkpoint is not None  # (cosigned by the reader: compare the body)
        assert body(head.checkpoint) == body(checkpoint)


async def test_a_store_failure_in_a_pipeline_leaves_the_replica_equal_to_the_store(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fed_reader(tmp_path, store_for, 3) as (owner, node, checkpoint, pages, proofs):
        peers, store = node.service.peers, node.service.store

        async def fail_the_second(number: int) -> None:
            if number == 2:
                raise StoreError("disk full (simulated)")

        intercept_appends(store, monkeypatch, fail_the_second)
        with pytest.raises(StoreError, match="disk full"):
            async with peers.pipeline(owner.origin, "member1") as pipeline:
                for k, (page, proof) in enumerate(zip(pages, proofs, strict=True)):
                    await pipeline.offer(checkpoint, k * PAGE, page, proof)
        assert peers.replica(owner.origin).size == 4
        assert (await store.log_heads())[owner.origin].size == 4
        result = await peers.ingest(owner.origin, checkpoint, 4, pages[1] + pages[2], [], None)
        assert result.status == "accepted" and result.size == 12


async def test_a_bad_page_in_a_pipeline_keeps_the_pages_before_it(
    tmp_path: Path, store_for: StoreFor
) -> None:
    async with fed_reader(tmp_path, store_for, 3) as (owner, node, checkpoint, pages, proofs):
        peers = node.service.peers
        with pytest.raises(ProofError):
            async with peers.pipeline(owner.origin, "member1") as pipeline:
                await pipeline.offer(checkpoint, 0, pages[0], proofs[0])
                await pipeline.offer(checkpoint, 4, pages[2], proofs[1])  # wrong entries
        assert peers.replica(owner.origin).size == 4
        assert (await node.service.store.log_heads())[owner.origin].size == 4


async def test_pages_queued_behind_a_slow_store_are_stored_in_one_transaction(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fed_reader(tmp_path, store_for, 5) as (owner, node, checkpoint, pages, proofs):
        peers, store = node.service.peers, node.service.store
        first_store_may_finish = asyncio.Event()
        batches = intercept_appends(store, monkeypatch, first_waits_for(first_store_may_finish))
        async with peers.pipeline(owner.origin, "member1") as pipeline:
            for k, (page, proof) in enumerate(zip(pages, proofs, strict=True)):
                await pipeline.offer(checkpoint, k * PAGE, page, proof)
                assert peers.replica(owner.origin).size == 0  # nothing durable yet
            first_store_may_finish.set()
        # The first page alone, then the four verified meanwhile in one transaction.
        assert batches == [(0, 4, None), (4, 20, 20)]
        assert peers.replica(owner.origin).size == 20
        head = (await store.log_heads())[owner.origin]
        assert head.size == 20 and head.checkpoint is not None


async def test_a_batch_ends_at_a_page_that_reaches_a_checkpoint_so_each_is_kept(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup = consortium(tmp_path)
    owner, reader = setup.configs
    async with served(owner, store_for(owner)) as source:
        first_cp, first_pages, first_proofs = await pages_of(source.service, 2)
        await source.service.submit([Add(now_ms(), "md5", bytes([99 - i]) * 16) for i in range(8)])
        second = await source.service.sign_pending()
        assert second is not None
        raws = await source.service.store.entries(owner.origin, 8, 16)
        middle_proof = list(await source.service.proofs.consistency(owner.origin, 12, 16))
    async with served(reader, store_for(reader)) as node:
        peers, store = node.service.peers, node.service.store
        first_store_may_finish = asyncio.Event()
        batches = intercept_appends(store, monkeypatch, first_waits_for(first_store_may_finish))
        async with peers.pipeline(owner.origin, "member1") as pipeline:
            await pipeline.offer(first_cp, 0, first_pages[0], first_proofs[0])
            await pipeline.offer(first_cp, 4, first_pages[1], first_proofs[1])  # reaches 8
            await pipeline.offer(second.raw, 8, raws[:4], middle_proof)
            await pipeline.offer(second.raw, 12, raws[4:], [])  # reaches 16
            first_store_may_finish.set()
        assert batches == [(0, 4, None), (4, 8, 8), (8, 16, 16)]
        assert [size for size, _ in await store.checkpoints(owner.origin)] == [8, 16]


async def test_pages_queued_behind_a_busy_store_are_stored_without_waiting_for_another_page(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fed_reader(tmp_path, store_for, 3) as (owner, node, checkpoint, pages, proofs):
        peers, store = node.service.peers, node.service.store
        first_store_may_finish = asyncio.Event()
        batches = intercept_appends(store, monkeypatch, first_waits_for(first_store_may_finish))
        all_heard_of = asyncio.Event()

        async def listener(told: DurableRange) -> None:
            if told.end == 12:
                all_heard_of.set()

        peers.subscribe(listener)
        async with peers.pipeline(owner.origin, "member1") as pipeline:
            for k, (page, proof) in enumerate(zip(pages, proofs, strict=True)):
                await pipeline.offer(checkpoint, k * PAGE, page, proof)
            first_store_may_finish.set()
            # No further page and no leaving: the store takes the queued pages by itself.
            await asyncio.wait_for(all_heard_of.wait(), 10)
            assert batches == [(0, 4, None), (4, 12, 12)]
            assert peers.replica(owner.origin).size == 12


async def test_a_store_that_appends_in_call_order_gets_the_next_batch_before_the_last_returns(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fed_reader(tmp_path, store_for, 3) as (owner, node, checkpoint, pages, proofs):
        peers, store = node.service.peers, node.service.store
        real_append = store.append
        first_may_return = asyncio.Event()
        calls: list[int] = []
        in_store = most_in_store = 0

        async def append(origin: str, start: int, *rest: object) -> None:
            nonlocal in_store, most_in_store
            calls.append(start)
            in_store += 1
            most_in_store = max(most_in_store, in_store)
            try:  # made at once, in call order; the first one's return is held back
                made = asyncio.ensure_future(real_append(origin, start, *rest))  # type: ignore[arg-type]
                if len(calls) == 1:
                    await first_may_return.wait()
                await made
            finally:
                in_store -= 1

        monkeypatch.setattr(store, "append", append)
        monkeypatch.setattr(pipeline_module, "EARLY_BATCH_ENTRIES", PAGE + 1)  # two pages
        async with peers.pipeline(owner.origin, "member1") as pipeline:
            await pipeline.offer(checkpoint, 0, pages[0], proofs[0])
            await pipeline.offer(checkpoint, 4, pages[1], proofs[1])
            for _ in range(20):  # one page is not enough to send it early
                await asyncio.sleep(0.01)
            assert calls == [0]
            await pipeline.offer(checkpoint, 8, pages[2], proofs[2])
            for _ in range(20):  # let the storer act on the two pages if it may
                await asyncio.sleep(0.01)
            first_may_return.set()
        assert most_in_store == peers.stores_in_flight == (2 if store.ordered_appends else 1)
        assert calls == [0, 4]  # the second batch early (in order) or once the first returned
        assert peers.replica(owner.origin).size == 12
        assert await store.entries(owner.origin, 0, 12) == [r for p in pages for r in p]


async def test_an_offer_waits_while_the_queue_is_full_and_goes_on_once_the_store_takes_it(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fed_reader(tmp_path, store_for, 4) as (owner, node, checkpoint, pages, proofs):
        peers, store = node.service.peers, node.service.store
        monkeypatch.setattr(pipeline_module, "MAX_QUEUED_ENTRIES", 2 * PAGE)
        first_store_may_finish = asyncio.Event()
        batches = intercept_appends(store, monkeypatch, first_waits_for(first_store_may_finish))
        async with peers.pipeline(owner.origin, "member1") as pipeline:
            await pipeline.offer(checkpoint, 0, pages[0], proofs[0])  # in the store
            await pipeline.offer(checkpoint, 4, pages[1], proofs[1])  # queued
            third = asyncio.ensure_future(pipeline.offer(checkpoint, 8, pages[2], proofs[2]))
            await asyncio.sleep(0.2)
            assert not third.done()  # two pages queued: the queue is full
            first_store_may_finish.set()
            assert (await asyncio.wait_for(third, 10)).status == "accepted"
            await pipeline.offer(checkpoint, 12, pages[3], proofs[3])
        assert batches[0] == (0, 4, None) and batches[-1][1:] == (16, 16)
        assert peers.replica(owner.origin).size == 16
        assert await store.entries(owner.origin, 0, 16) == [r for p in pages for r in p]


async def test_listeners_still_hear_of_a_stored_batch_when_a_later_store_fails(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fed_reader(tmp_path, store_for, 2) as (owner, node, checkpoint, pages, proofs):
        peers, store = node.service.peers, node.service.store
        heard: list[tuple[int, int]] = []

        async def slow_listener(told: DurableRange) -> None:
            await asyncio.sleep(0.3)  # still hearing of the first batch when the second fails
            heard.append((told.start, told.end))

        async def fail_the_second(number: int) -> None:
            if number == 2:
                raise StoreError("disk full (simulated)")

        peers.subscribe(slow_listener)
        intercept_appends(store, monkeypatch, fail_the_second)
        with pytest.raises(StoreError, match="disk full"):
            async with peers.pipeline(owner.origin, "member1") as pipeline:
                await pipeline.offer(checkpoint, 0, pages[0], proofs[0])
                await pipeline.offer(checkpoint, 4, pages[1], proofs[1])
        assert peers.replica(owner.origin).size == 4
        assert heard == [(0, 4)]  # the durable batch was heard of, not cut short


async def test_listeners_find_their_batch_decoded_though_later_batches_were_stored_meanwhile(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: decodings were remembered when a batch was stored, so in a catch-up the
    # batches stored meanwhile pushed them out of the cache, and the match index decoded
    # every entry again (a tenth of the joiner's time).
    async with fed_reader(tmp_path, store_for, 3) as (owner, node, checkpoint, pages, proofs):
        peers, store = node.service.peers, node.service.store
        cache = peers.listeners._decoded
        monkeypatch.setattr(cache, "_capacity", 2 * PAGE)  # one batch at most
        decoded_again = 0
        real_decode = entry_cache.decode_entry

        def counting_decode(raw: bytes) -> Entry:
            nonlocal decoded_again
            decoded_again += 1
            return real_decode(raw)

        monkeypatch.setattr(entry_cache, "decode_entry", counting_decode)
        first_store_may_finish = asyncio.Event()
        intercept_appends(store, monkeypatch, first_waits_for(first_store_may_finish))
        heard: list[tuple[int, int]] = []

        async def listener(told: DurableRange) -> None:
            await asyncio.sleep(0.05)  # the next batch is being stored meanwhile
            decoded = await told.entries()
            assert (
                all(isinstance(e, Add) for e in decoded) and len(decoded) == told.end - told.start
            )
            heard.append((told.start, told.end))

        peers.subscribe(listener)
        async with peers.pipeline(owner.origin, "member1") as pipeline:
            for k, (page, proof) in enumerate(zip(pages, proofs, strict=True)):
                await pipeline.offer(checkpoint, k * PAGE, page, proof)
            first_store_may_finish.set()
        assert heard == [(0, 4), (4, 12)]
        assert decoded_again == 0


async def test_a_listener_failing_on_a_batch_fails_neither_the_pipeline_nor_the_next_batch(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: a listener's error surfaced inside the next batch's commit, failing the
    # pipeline, and that next batch's notification was lost.
    async with fed_reader(tmp_path, store_for, 3) as (owner, node, checkpoint, pages, proofs):
        peers, store = node.service.peers, node.service.store
        first_store_may_finish = asyncio.Event()
        intercept_appends(store, monkeypatch, first_waits_for(first_store_may_finish))
        calls = 0
        handled: list[tuple[int, int]] = []
        heard: list[tuple[int, int]] = []

        async def fails_first(told: DurableRange) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("listener bug (simulated)")
            handled.append((told.start, told.end))

        async def listener(told: DurableRange) -> None:
            heard.append((told.start, told.end))

        peers.subscribe(fails_first, "fails_first")
        peers.subscribe(listener, "listener")
        async with peers.pipeline(owner.origin, "member1") as pipeline:
            for k, (page, proof) in enumerate(zip(pages, proofs, strict=True)):
                await pipeline.offer(checkpoint, k * PAGE, page, proof)
            first_store_may_finish.set()
        assert peers.replica(owner.origin).size == 12
        assert heard == [(0, 4), (4, 12)]  # batches stored while the first was being made
        assert handled == [(0, 12)]  # the failed batch again, in front of the next
        assert peers.listeners.failures()["fails_first"] == 1
        assert not any(peers.listeners.owed_entries().values())


async def test_listeners_cut_short_by_a_cancelled_pipeline_hear_of_its_stored_batch_again(
    tmp_path: Path, store_for: StoreFor
) -> None:
    # Regression: cancelling a pipeline (a pull cut short) cancelled the listeners of a batch
    # already committed; the match index then missed those entries until a restart.
    async with fed_reader(tmp_path, store_for, 1) as (owner, node, checkpoint, pages, proofs):
        peers = node.service.peers
        hearing = asyncio.Event()
        calls = 0
        heard: list[tuple[str, int, int]] = []

        async def slow_first(told: DurableRange) -> None:
            nonlocal calls
            calls += 1
            if calls == 1:
                hearing.set()
                await asyncio.sleep(30)  # cancelled meanwhile
            heard.append(("slow_first", told.start, told.end))

        async def after_it(told: DurableRange) -> None:
            heard.append(("after_it", told.start, told.end))

        peers.subscribe(slow_first, "slow_first")
        peers.subscribe(after_it, "after_it")

        async def pull() -> None:
            async with peers.pipeline(owner.origin, "member1") as pipeline:
                await pipeline.offer(checkpoint, 0, pages[0], proofs[0])

        task = asyncio.create_task(pull())
        await asyncio.wait_for(hearing.wait(), 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert peers.replica(owner.origin).size == PAGE and heard == []
        owed = peers.listeners.owed_entries()
        assert owed["slow_first"] == owed["after_it"] == PAGE and owed["match_index"] == 0
        await peers.listeners.retry_owed()
        assert sorted(heard) == [("after_it", 0, PAGE), ("slow_first", 0, PAGE)]
        assert not any(peers.listeners.failures().values())  # a cancellation is no failure
