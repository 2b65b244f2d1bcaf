"""OwnThread: blocking calls run one at a time, in order, on one thread that is not the loop's."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from node.store.sqlite.own_thread import OwnThread


async def test_calls_run_in_order_on_one_thread_and_close_runs_last() -> None:
    thread = OwnThread("test")
    seen: list[tuple[str, int]] = []

    def step(name: str, pause_s: float) -> str:
        time.sleep(pause_s)  # blocking: the event loop must stay free meanwhile
        seen.append((name, threading.get_ident()))
        return name

    await thread.open(lambda: step("open", 0))
    calls = [thread.run(step, f"call {i}", 0.02 * (3 - i)) for i in range(3)]
    results = await asyncio.gather(*calls)
    await thread.close(lambda: step("close", 0))
    assert results == ["call 0", "call 1", "call 2"]
    assert [name for name, _ in seen] == ["open", "call 0", "call 1", "call 2", "close"]
    assert len({ident for _, ident in seen}) == 1
    assert seen[0][1] != threading.get_ident()
    assert not thread.is_open
    await thread.close(lambda: step("again", 0))  # closing twice is closing once
    assert len(seen) == 5


async def test_a_failing_open_leaves_it_closed() -> None:
    thread = OwnThread("test")

    def refuse() -> None:
        raise OSError("no")

    with pytest.raises(OSError, match="no"):
        await thread.open(refuse)
    assert not thread.is_open
