"""The locks of peers' logs (node/core/log_locks.py): who waits, and when a holder hands over."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from node.core import log_locks
from node.core.log_locks import LogLock, LogLocks
from node.errors import PeerError


async def test_a_log_lock_says_whether_another_task_waits_for_it() -> None:
    lock = LogLock()
    assert not lock.wanted
    async with lock:
        assert not lock.wanted  # held, but no one waits
        waiter = asyncio.create_task(lock.acquire())
        await asyncio.sleep(0)
        assert lock.wanted
    await waiter
    assert not lock.wanted  # the waiter holds it now
    lock.release()
    cancelled = asyncio.create_task(lock.acquire())
    async with lock:
        await asyncio.sleep(0)
        cancelled.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await cancelled
        assert not lock.wanted  # a waiter that gave up no longer counts


async def test_a_log_lock_is_due_to_be_handed_over_once_someone_waits_and_hold_lock_s_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(log_locks, "HOLD_LOCK_S", 0.2)
    lock = LogLock()
    async with lock:
        await asyncio.sleep(0.3)
        assert not lock.hand_over_due  # held long enough, but no one waits
        waiter = asyncio.create_task(lock.acquire())
        await asyncio.sleep(0)
        assert lock.hand_over_due
    await waiter
    assert not lock.hand_over_due  # the waiter just took it; no one waits for it either
    second = asyncio.create_task(lock.acquire())
    await asyncio.sleep(0)
    assert not lock.hand_over_due  # someone waits, but the lock was taken just now
    lock.release()
    await second
    lock.release()


def test_log_locks_are_made_only_for_names_the_check_accepts() -> None:
    def members_only(origin: str) -> None:
        if origin != "member-log":
            raise PeerError(f"no member has the log {origin!r}")

    locks = LogLocks(members_only)
    assert locks.of("member-log") is locks.of("member-log")
    with pytest.raises(PeerError):
        locks.of("made-up")
