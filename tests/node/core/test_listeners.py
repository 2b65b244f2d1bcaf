"""Listeners of a real node service (SQLite): a listener that raises costs only itself, the
others hear of the range, and it hears of the range again (next range, or the retry loop);
the listeners of a range are handed its decodings, resolved once."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from node.core import listeners as listeners_module
from node.core.listeners import DurableRange, Listeners
from node.core.status import node_alerts
from protocol.entries import Add, Entry, encode_entry
from tests.node.services import consortium, now_ms, served

NEAR_ZERO = bytes(32)
NEAR_ONES = b"\xff" * 32  # 256 bits from NEAR_ZERO: never a near-duplicate of it


async def test_a_match_index_failure_costs_no_other_listener_and_the_entry_is_indexed_with_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: the first listener that raised skipped the others, and out of sign_pending
    # the signed position had moved: those entries were never indexed nor pushed until restart.
    owner = consortium(tmp_path).configs[0]
    async with served(owner) as node:
        service = node.service
        heard: list[tuple[int, int]] = []

        async def after_the_index(told: DurableRange) -> None:
            heard.append((told.start, told.end))

        service.on_own_checkpoint(after_the_index, "after_the_index")
        index = service.matcher.index
        real_add = index.add_pdq_run
        failures = 0

        def fails_once(*args: object, **kwargs: object) -> None:
            nonlocal failures
            if not failures:
                failures += 1
                raise RuntimeError("index add failed (simulated)")
            real_add(*args, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(index, "add_pdq_run", fails_once)
        await service.submit([Add(now_ms(), "pdq", NEAR_ZERO)])
        signed = await service.sign_pending()
        assert signed is not None and signed.checkpoint.size == 1
        assert heard == [(0, 1)]  # the listener after the failed one heard of it
        assert await service.match("pdq", NEAR_ZERO) == []
        assert service.listeners.failures()["match_index"] == 1
        assert service.listeners.owed_entries()["match_index"] == 1
        (alert,) = [a for a in node_alerts(service) if "listener match_index" in a]
        assert "failed 1 times" in alert and "1 entries wait" in alert

        await service.submit([Add(now_ms(), "pdq", NEAR_ONES)])
        await service.sign_pending()
        assert heard == [(0, 1), (1, 2)]
        assert len(await service.match("pdq", NEAR_ZERO)) == 1  # re-delivered with the next
        assert len(await service.match("pdq", NEAR_ONES)) == 1
        assert service.listeners.owed_entries()["match_index"] == 0
        assert not any("entries wait" in a for a in node_alerts(service))


async def test_a_failed_delivery_is_retried_by_itself_and_its_traceback_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(listeners_module, "RETRY_S", 0.02)
    owner = consortium(tmp_path).configs[0]
    async with served(owner) as node:
        service = node.service
        calls: list[tuple[int, int]] = []
        handled: list[tuple[int, int]] = []
        recovered = asyncio.Event()

        async def flaky(told: DurableRange) -> None:
            calls.append((told.start, told.end))
            if len(calls) <= 3:
                raise ConnectionError("webhook relay down (simulated)")
            handled.append((told.start, told.end))
            recovered.set()

        service.on_own_checkpoint(flaky, "flaky")
        retries = asyncio.create_task(service.listeners.run_retries())
        try:
            with caplog.at_level(logging.ERROR, logger="node.core.listeners"):
                await service.submit([Add(now_ms(), "md5", bytes(16))])
                assert await service.sign_pending() is not None
                await asyncio.wait_for(recovered.wait(), 10)
        finally:
            retries.cancel()
            with pytest.raises(asyncio.CancelledError):
                await retries
        assert calls == [(0, 1)] * 4 and handled == [(0, 1)]
        failed = [r for r in caplog.records if "listener flaky failed" in r.getMessage()]
        assert len(failed) == 3
        assert [r.exc_info is not None for r in failed] == [True, False, False]
        assert service.listeners.failures()["flaky"] == 3
        assert service.listeners.owed_entries()["flaky"] == 0
        # Alerted for a while after the failure, without anything waiting.
        (alert,) = [a for a in node_alerts(service) if "listener flaky" in a]
        assert "failed 3 times" in alert and "ConnectionError" in alert and "wait" not in alert


async def test_a_re_delivery_passes_the_owed_entries_in_bounded_chunks_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listeners_module, "REDELIVERY_CHUNK", 2)
    owner = consortium(tmp_path).configs[0]
    async with served(owner) as node:
        service = node.service
        calls: list[tuple[int, int]] = []

        async def fails_first(told: DurableRange) -> None:
            calls.append((told.start, told.end))
            if len(calls) == 1:
                raise RuntimeError("first delivery fails (simulated)")

        service.on_own_checkpoint(fails_first, "fails_first")
        await service.submit([Add(now_ms(), "md5", bytes([i]) * 16) for i in range(5)])
        await service.sign_pending()  # one range of 5: a new range is never cut
        await service.listeners.retry_owed()
        assert calls == [(0, 5), (0, 2), (2, 4), (4, 5)]
        assert service.listeners.owed_entries()["fails_first"] == 0


class _CountingStore:
    """Entries of any log: a run of adds, each read counted."""

    def __init__(self) -> None:
        self.reads: list[tuple[int, int]] = []

    async def entries(self, origin: str, start: int, end: int) -> list[bytes]:
        self.reads.append((start, end))
        return [encode_entry(Add(i, "md5", bytes([i]) * 16)) for i in range(start, end)]


async def test_the_listeners_of_a_range_share_its_decodings_read_once_when_not_remembered() -> None:
    store = _CountingStore()
    listeners = Listeners("own", store, now_ms)  # type: ignore[arg-type]
    handed: list[Sequence[Entry | None]] = []

    async def reads(told: DurableRange) -> None:
        handed.append(await told.entries())

    async def reads_nothing(told: DurableRange) -> None:
        pass

    listeners.add(reads, own=False, name="first")
    listeners.add(reads_nothing, own=False, name="idle")
    listeners.add(reads, own=False, name="second")
    await listeners.notify("peer", 3, 6, "member2")
    assert store.reads == [(3, 6)]
    assert handed[0] is handed[1] and [e.timestamp_ms for e in handed[0] if e] == [3, 4, 5]

    remembered: list[Entry | None] = [Add(9, "md5", bytes(16)), None]
    listeners.remember("peer", 6, remembered)
    await listeners.notify("peer", 6, 8, "member2")
    assert store.reads == [(3, 6)]  # what its maker remembered is not read again
    assert list(handed[2]) == remembered


async def test_a_re_delivered_chunk_is_handed_its_own_decodings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(listeners_module, "REDELIVERY_CHUNK", 2)
    store = _CountingStore()
    listeners = Listeners("own", store, now_ms)  # type: ignore[arg-type]
    handed: list[tuple[int, int, list[int]]] = []

    async def fails_first(told: DurableRange) -> None:
        if not handed:
            handed.append((told.start, told.end, []))
            raise RuntimeError("first delivery fails (simulated)")
        stamps = [e.timestamp_ms for e in await told.entries() if e]
        handed.append((told.start, told.end, stamps))

    listeners.add(fails_first, own=False)
    await listeners.notify("peer", 0, 3, "member2")
    await listeners.retry_owed()
    assert handed == [(0, 3, []), (0, 2, [0, 1]), (2, 3, [2])]
