"""The checkpointer: signs new entries in batches, and outlives a store that fails for a while."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from node.core.status import node_alerts
from node.errors import StoreError
from protocol.entries import Add
from tests.node.conftest import StoreFor
from tests.node.services import consortium, now_ms, served


async def test_a_checkpoint_the_store_failed_to_save_is_signed_later_and_the_node_runs_on(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: a full disk during a checkpoint save ended the checkpointer's task, and with
    # it the node (seen as a flaky full-disk test: the node was gone after the disk was freed).
    monkeypatch.setattr("node.core.own_log.SIGN_RETRY_S", 0.05)
    setup = consortium(tmp_path)
    owner = setup.configs[0]
    async with served(owner, store_for(owner)) as node:
        service = node.service
        real_save = service.store.save_checkpoint
        failures = 0

        async def full_disk_twice(origin: str, size: int, raw: bytes) -> None:
            nonlocal failures
            if failures < 2:
                failures += 1
                raise StoreError("database or disk is full")
            await real_save(origin, size, raw)

        monkeypatch.setattr(service.store, "save_checkpoint", full_disk_twice)
        checkpointer = asyncio.create_task(service.run_checkpointer())
        try:
            await service.submit([Add(now_ms(), "md5", bytes(16))])
            async with asyncio.timeout(10):
                while service.signed_checkpoint(service.origin) is None:
                    assert not checkpointer.done(), "the checkpointer stopped"
                    await asyncio.sleep(0.02)
        finally:
            checkpointer.cancel()
            with pytest.raises(asyncio.CancelledError):
                await checkpointer
        assert failures == 2
        head = (await service.store.log_heads())[service.origin]
        assert head.size == 1 and head.checkpoint is not None


async def test_a_checkpointer_failure_other_than_the_stores_is_alerted_retried_and_the_node_runs_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Regression: the checkpointer caught StoreError only; anything else ended its task, and
    # with it the node's task group.
    monkeypatch.setattr("node.core.own_log.SIGN_RETRY_S", 0.05)
    owner = consortium(tmp_path).configs[0]
    async with served(owner) as node:
        service = node.service
        real_save = service.store.save_checkpoint
        failures = 0

        async def fails_three_times(origin: str, size: int, raw: bytes) -> None:
            nonlocal failures
            if failures < 3:
                failures += 1
                raise RuntimeError("driver bug (simulated): not a StoreError")
            await real_save(origin, size, raw)

        monkeypatch.setattr(service.store, "save_checkpoint", fails_three_times)
        checkpointer = asyncio.create_task(service.run_checkpointer())
        alerted = False
        try:
            await service.submit([Add(now_ms(), "md5", bytes(16))])
            async with asyncio.timeout(10):
                while service.signed_checkpoint(service.origin) is None:
                    assert not checkpointer.done(), "the checkpointer stopped"
                    alerted |= any("not being signed" in a for a in node_alerts(service))
                    await asyncio.sleep(0.01)
        finally:
            checkpointer.cancel()
            with pytest.raises(asyncio.CancelledError):
                await checkpointer
        assert failures == 3 and alerted
        assert not any("not being signed" in a for a in node_alerts(service))
