"""The SQLite store's writer process: it is replaced when it dies, a write it may have made is
settled by reading the log, and it never outlives the node."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import struct
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from node.errors import StoreConflictError, StoreError, StoreOutcomeUnknownError
from node.store.base import EntryRow
from node.store.sqlite.store import SqliteStore
from node.store.sqlite.writer import WriterProcess, receive
from protocol.merkle import NodeId
from tests.node.store.test_store import A, Log


def _wait_gone(pid: int, timeout_s: float = 10.0) -> bool:
    """True once `pid` has exited (gone, or a zombie its parent has not reaped yet)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


async def test_a_killed_writer_is_replaced_and_the_next_write_lands(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "w.db")
    await store.open()
    try:
        log = Log(A)
        await log.append(store, [b"e0", b"e1"])
        first = store.writer_pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        assert _wait_gone(first)
        await log.append(store, [b"e2"])
        assert store.writer_pid not in (None, first)
        assert await store.entries(A, 0, 5) == [b"e0", b"e1", b"e2"]
        assert (await store.log_heads())[A].size == 3
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def store_holding_e0(tmp_path: Path) -> AsyncIterator[tuple[SqliteStore, Log, int]]:
    """An open store whose log A holds b"e0": (the store, that Log, its writer's pid)."""
    store = SqliteStore(tmp_path / "w.db")
    await store.open()
    try:
        log = Log(A)
        await log.append(store, [b"e0"])
        pid = store.writer_pid
        assert pid is not None
        yield store, log, pid
    finally:
        await store.close()


def appends_to_a_stopped_writer(
    store: SqliteStore,
    pid: int,
    batches: list[tuple[int, list[EntryRow], list[tuple[NodeId, bytes]]]],
) -> list[asyncio.Future[None]]:
    """Stop the writer (it reads the next request, or not, but writes nothing), then append."""
    os.kill(pid, signal.SIGSTOP)
    return [
        asyncio.ensure_future(store.append(A, start, rows, nodes, None))
        for start, rows, nodes in batches
    ]


async def test_a_writer_killed_inside_an_append_loses_it_cleanly(tmp_path: Path) -> None:
    async with store_holding_e0(tmp_path) as (store, log, pid):
        (task,) = appends_to_a_stopped_writer(store, pid, [log.batch([b"e1"])])
        await asyncio.sleep(0.3)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(StoreOutcomeUnknownError, match="may or may not"):
            await task
        assert (await store.log_heads())[A].size == 1
        retry = Log(A)
        retry.batch([b"e0"])  # the stored prefix
        await retry.append(store, [b"e1"])
        assert await store.entries(A, 0, 5) == [b"e0", b"e1"]


async def test_appends_sent_behind_one_being_made_land_in_order(tmp_path: Path) -> None:
    async with store_holding_e0(tmp_path) as (store, log, pid):
        batches = [log.batch([b"e1"]), log.batch([b"e2", b"e3"])]
        try:  # both are sent while the writer cannot answer
            tasks = appends_to_a_stopped_writer(store, pid, batches)
            await asyncio.sleep(0.3)
            assert not any(t.done() for t in tasks)
        finally:
            os.kill(pid, signal.SIGCONT)
        await asyncio.gather(*tasks)
        assert await store.entries(A, 0, 9) == [b"e0", b"e1", b"e2", b"e3"]
        assert store.writer_pid == pid


async def test_a_write_cancelled_while_its_answer_is_due_leaves_the_next_write_its_own(
    tmp_path: Path,
) -> None:
    async with store_holding_e0(tmp_path) as (store, log, pid):
        first, second = log.batch([b"e1"]), log.batch([b"e2"])
        try:
            done, cancelled = appends_to_a_stopped_writer(store, pid, [first, second])
            await asyncio.sleep(0.3)
            cancelled.cancel()  # its answer is queued behind the first one's
            start, rows, nodes = log.batch([b"e3"])
            refused = asyncio.ensure_future(store.append(A, start + 5, rows, nodes, None))
            await asyncio.sleep(0.3)
        finally:
            os.kill(pid, signal.SIGCONT)
        await done
        with pytest.raises(StoreConflictError):  # its own answer, not the cancelled one's
            await refused
        assert await store.entries(A, 0, 9) == [b"e0", b"e1", b"e2"]  # sent, so made


async def test_a_writer_killed_with_two_appends_sent_stores_neither(tmp_path: Path) -> None:
    async with store_holding_e0(tmp_path) as (store, log, pid):
        batches = [log.batch([b"e1"]), log.batch([b"e2"])]
        tasks = appends_to_a_stopped_writer(store, pid, batches)
        await asyncio.sleep(0.3)
        os.kill(pid, signal.SIGKILL)
        for task in tasks:
            with pytest.raises(StoreOutcomeUnknownError, match="may or may not"):
                await task
        assert (await store.log_heads())[A].size == 1
        retry = Log(A)
        retry.batch([b"e0"])
        await retry.append(store, [b"e1"])
        await retry.append(store, [b"e2"])
        assert await store.entries(A, 0, 5) == [b"e0", b"e1", b"e2"]


class _AnswerLost:
    """A writer whose answer is lost after it wrote: the case the store settles by reading.

    With `following` (a later batch's append arguments) it makes that batch too before the
    answer is lost: a batch sent behind another landed, so the log is longer than the first.
    """

    def __init__(self, inner: object, following: tuple[object, ...] | None = None) -> None:
        self.inner = inner
        self.following = following

    async def write(self, name: str, *args: object) -> object:
        await self.inner.write(name, *args)  # type: ignore[attr-defined]
        if self.following is not None:
            await self.inner.write(name, *self.following)  # type: ignore[attr-defined]
        raise StoreOutcomeUnknownError("the writer process ended during a write")


@contextlib.asynccontextmanager
async def answers_lost(
    tmp_path: Path, following: tuple[object, ...] | None = None
) -> AsyncIterator[SqliteStore]:
    """An open store whose writes all lose their answer (see _AnswerLost)."""
    store = SqliteStore(tmp_path / "w.db")
    await store.open()
    real = store._writer  # the unit under test is the settling in append
    try:
        store._writer = _AnswerLost(real, following)  # type: ignore[assignment]
        yield store
    finally:
        store._writer = real
        await store.close()


async def test_an_append_whose_answer_was_lost_counts_as_stored_if_the_log_went_beyond_it(
    tmp_path: Path,
) -> None:
    log = Log(A)
    first, (start, rows, nodes) = log.batch([b"e0"]), log.batch([b"e1"])
    following = (A, start, [tuple(r) for r in rows], nodes, None, None)
    async with answers_lost(tmp_path, following) as store:
        await store.append(A, first[0], first[1], first[2], None)  # settled: the log holds it
        assert await store.entries(A, 0, 5) == [b"e0", b"e1"]


async def test_an_append_whose_answer_was_lost_counts_as_stored_once_stored(
    tmp_path: Path,
) -> None:
    async with answers_lost(tmp_path) as store:
        await Log(A).append(store, [b"e0", b"e1"])  # no error: the stored size says it landed
        assert await store.entries(A, 0, 5) == [b"e0", b"e1"]
        with pytest.raises(StoreOutcomeUnknownError):  # other writes cannot be settled so
            await store.save_roster(1, b"roster")


_HOLDER = """
import asyncio, sys
from node.store.sqlite.writer import WriterProcess, receive
from node.store.sqlite.store import SqliteStore

async def main():
    store = SqliteStore(sys.argv[1])
    await store.open()
    print(store.writer_pid, flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


def test_the_writer_ends_when_its_node_is_killed(tmp_path: Path) -> None:
    root = str(Path(__file__).resolve().parents[4])
    env = {**os.environ, "PYTHONPATH": root}
    holder = subprocess.Popen(  # our own interpreter
        [sys.executable, "-c", _HOLDER, str(tmp_path / "w.db")],
        stdout=subprocess.PIPE,
        env=env,
    )
    try:
        assert holder.stdout is not None
        with holder.stdout:
            writer = int(holder.stdout.readline())
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        assert _wait_gone(writer), "the writer outlived the node"
    finally:
        holder.kill()
        holder.wait()


async def test_a_closed_store_has_no_writer_and_refuses_writes(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "w.db")
    await store.open()
    pid = store.writer_pid
    assert pid is not None
    await store.close()
    assert store.writer_pid is None
    assert _wait_gone(pid)
    with pytest.raises(StoreError, match="not open"):
        await store.save_roster(1, b"roster")


async def test_a_writer_that_cannot_open_its_database_fails_to_start(tmp_path: Path) -> None:
    writer = WriterProcess(tmp_path / "missing-dir" / "w.db", "the SQLite store")
    with pytest.raises(StoreError, match="unable to open"):
        await writer.open()
    assert writer.pid is None
    await writer.close()


async def test_the_writer_runs_only_the_writes_it_knows(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "w.db")
    await store.open()
    writer = WriterProcess(tmp_path / "w.db", "the SQLite store")
    await writer.open()
    try:
        with pytest.raises(StoreError, match="knows no write called 'drop_everything'"):
            await writer.write("drop_everything")
        await writer.write("save_roster", 1, b"roster")  # and it goes on serving
        assert await store.rosters() == [b"roster"]
    finally:
        await writer.close()
        await store.close()


@pytest.mark.parametrize(
    "module",
    [
        "node.store.sqlite.store",
        "node.store.sqlite.writer",
        "node.store.sqlite.writer_child",
        "node.store",
    ],
)
def test_each_writer_module_imports_first_in_a_fresh_interpreter(module: str) -> None:
    # Regression: node.store.sqlite.store imported first met a circular import through the writer.
    root = str(Path(__file__).resolve().parents[4])
    done = subprocess.run(  # our own interpreter
        [sys.executable, "-c", f"import {module}"],
        env={**os.environ, "PYTHONPATH": root},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def test_a_write_of_more_than_plain_values_is_refused_and_the_writer_goes_on(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "w.db")
    await store.open()
    writer = WriterProcess(tmp_path / "w.db", "the SQLite store")
    await writer.open()
    try:
        pid = writer.pid
        row = EntryRow(0, b"e0", None, None, None, None, None, 0, 0)  # a tuple subclass
        with pytest.raises(StoreError, match="unmarshallable"):
            await writer.write("append", A, 0, [row], [], None, None)
        await writer.write("save_roster", 1, b"roster")  # the same child, nothing lost
        assert writer.pid == pid
        assert await store.rosters() == [b"roster"]
        assert await store.entries(A, 0, 1) == []
    finally:
        await writer.close()
        await store.close()


def test_a_message_that_is_not_what_send_wrote_is_refused_as_malformed() -> None:
    stream = io.BytesIO(struct.pack("!Q", 3) + b"\xff\x00\x01")
    with pytest.raises(ValueError, match="malformed"):
        receive(stream)


@pytest.mark.parametrize(
    "request_args",
    [
        ("append", (A,)),  # too few arguments: TypeError inside the write
        ("append", 7),  # arguments that are not a tuple: TypeError before the write
        ("log_head", (A, "one too many")),
    ],
)
async def test_a_request_that_raises_anything_gets_an_error_reply_and_the_writer_goes_on(
    tmp_path: Path, request_args: tuple[str, object]
) -> None:
    store = SqliteStore(tmp_path / "w.db")
    await store.open()
    writer = WriterProcess(tmp_path / "w.db", "the SQLite store")
    await writer.open()
    try:
        await writer.write("save_roster", 1, b"first")
        pid = writer.pid
        name, args = request_args
        with pytest.raises(StoreError, match="TypeError") as refused:
            # Sent as WriterProcess.write sends, but with arguments it would not build.
            answer = await writer._sending.run(writer._send_request, name, args)
            await asyncio.wrap_future(answer)
        assert not isinstance(refused.value, StoreOutcomeUnknownError)
        await writer.write("save_roster", 2, b"second")  # the same child, nothing lost
        assert writer.pid == pid
        assert await store.rosters() == [b"first", b"second"]
    finally:
        await writer.close()
        await store.close()


def test_the_writer_process_loads_no_event_loop_modules() -> None:
    # Its resident memory counts in a catch-up's: asyncio and ssl are about 5 MiB of it.
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, node.store.sqlite.writer_child;"
            " print(sorted({'asyncio', 'ssl', 'node.store.sqlite.store'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[4])},
    )
    assert loaded.stdout.strip() == "[]"
