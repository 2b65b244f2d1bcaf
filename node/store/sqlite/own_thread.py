"""OwnThread: one dedicated thread that runs blocking calls one at a time, in order.

The SQLite worker keeps its connection on one and the SQLite writer's node end keeps its pipe
to the writer process on another: only that thread ever touches the resource, so calls need
no lock and the event loop never blocks on disk or on the child.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")


class OwnThread:
    def __init__(self, name: str) -> None:
        self.name = name
        self._executor: ThreadPoolExecutor | None = None

    @property
    def is_open(self) -> bool:
        return self._executor is not None

    async def open(self, first: Callable[[], object]) -> None:
        """Start the thread and run `first` on it (say, connect); if that fails, stop again."""
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        try:
            await asyncio.get_running_loop().run_in_executor(self._executor, first)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self, last: Callable[[], object]) -> None:
        """Run `last` on the thread after every call before it, then stop; twice is once."""
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            await asyncio.get_running_loop().run_in_executor(executor, last)
        finally:
            executor.shutdown(wait=True)

    def submit(self, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> Future[_R]:
        """Queue `fn(...)` on the thread from any thread, after the calls queued before it."""
        executor = self._executor
        assert executor is not None, "OwnThread.submit before open"
        return executor.submit(fn, *args, **kwargs)

    async def run(self, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """`fn(...)` on the thread, after the calls before it. The caller checks `is_open`."""
        executor = self._executor
        assert executor is not None, "OwnThread.run before open"
        return await asyncio.get_running_loop().run_in_executor(
            executor, lambda: fn(*args, **kwargs)
        )
