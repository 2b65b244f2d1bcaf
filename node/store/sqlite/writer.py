"""The SQLite store's writer: a child process that owns the store's only write connection.

Why a process: a node catching up is bound by the GIL. Binding a batch's values into SQLite
statements is Python C-API work under the GIL, so a writer thread stalls the event loop's
verifying and the event loop stalls the writer. In its own process the writer has its own
interpreter, and the node only marshals plain tuples (about a fifth of a microsecond a row).

This module is the node's end (WriterProcess); the child is
node/store/sqlite/writer_child.py, and the framing both ends use is
node/store/sqlite/framing.py. Over the child's stdin and stdout each message is an 8-byte
big-endian length and a `marshal` of plain values (tuples, lists, str, bytes, int, None):
both ends run this interpreter, and marshal packs a catch-up batch in a third of the time
pickle takes, and reads it back in three quarters. A request is (write name, arguments),
naming one of node/store/sqlite/writes.py's WRITES; each runs in one IMMEDIATE transaction;
the reply is ("ok", result), ("conflict", message) or ("error", message). Both ends are this
node's own code on an anonymous pipe; no peer's bytes are ever unmarshalled, they travel
inside as `bytes` values. The child answers requests one at a time, in the order sent; the
node may send the next before the answer to the last is in (pipelining), so the child never
waits for the node to marshal a batch, and reads the answers in order on a thread of their
own.

Lifetime: the child ends when its stdin closes, which is at `close` or when the node dies by
any means (even kill -9), after finishing the transaction it is in. It ignores SIGINT and
SIGTERM so the node's own shutdown decides when writing stops. If the child dies, the next
write starts a new one: a write whose request never reached it is sent again; a write it
may have made (every one sent and not answered) is reported as StoreOutcomeUnknownError,
for the store to settle by reading. Every append checks that it continues the stored log,
so a batch sent behind one that was lost is refused, never stored out of order.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import IO

from node.errors import StoreConflictError, StoreError, StoreOutcomeUnknownError
from node.store.sqlite.framing import receive, send
from node.store.sqlite.own_thread import OwnThread

#: How long `close` waits for the child to finish its last transaction before killing it.
CLOSE_WAIT_S = 30.0
_PACKAGE_ROOT = str(Path(__file__).resolve().parent.parent)
#: glibc's allocator in the child (read at its start): one arena, as it allocates from one
#: thread, and large blocks (a batch's message, a few MiB) mapped for their use and returned
#: when freed, where glibc's adaptive threshold would soon keep them in the heap for reuse:
#: at a million entries the child then held tens of MiB above its page cache.
CHILD_MALLOC = {"MALLOC_ARENA_MAX": "1", "MALLOC_MMAP_THRESHOLD_": str(256 << 10)}


#: The request pipe's buffer (Linux's default is 64 KiB): a catch-up batch is a few MiB, and
#: through a small pipe the child reading it waits on the node's thread to write each part.
PIPE_BYTES = 1 << 20


def _widen_pipe(stream: IO[bytes]) -> None:
    """Ask for a PIPE_BYTES buffer; without it (another OS, a lower limit) the default stays."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None)
    if set_size is not None:
        with contextlib.suppress(OSError):
            fcntl.fcntl(stream.fileno(), set_size, PIPE_BYTES)


class WriterProcess:
    """The parent's end: starts the child, sends it writes and reads its answers.

    Writes are sent in call order from one thread and their answers read in the same order
    on another, so a write may be sent while the one before it is still being made: the
    child reads it as soon as it is free. `write` returns when its own answer is in.
    """

    def __init__(self, path: Path, what: str, busy_timeout_s: float = 5.0) -> None:
        self.path = path
        self.what = what
        self.busy_timeout_s = busy_timeout_s
        self._sending = OwnThread("sqlite-writer")
        self._answers = OwnThread("sqlite-writer-answers")
        self._proc: subprocess.Popen[bytes] | None = None
        self._proc_lock = threading.RLock()  # the current child; both threads may reap it

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return proc.pid if proc is not None else None

    async def open(self) -> None:
        await self._answers.open(lambda: None)
        try:
            await self._sending.open(self._current)
        except BaseException:
            await self._answers.close(lambda: None)
            raise

    async def close(self) -> None:
        # Every write sent is answered before the child is told to end.
        await self._sending.close(lambda: None)
        await self._answers.close(self._stop)

    async def write(self, name: str, *args: object) -> object:
        """Run the write `name` in the child, in one transaction; its result."""
        if not self._sending.is_open:
            raise StoreError(f"{self.what} {self.path} is not open")
        answer = await self._sending.run(self._send_request, name, args)
        # Sent: its answer must be read even if this call is cancelled, or the answers' thread
        # would give it to the next write.
        return await asyncio.shield(asyncio.wrap_future(answer))

    # On the sending thread.

    def _current(self) -> subprocess.Popen[bytes]:
        with self._proc_lock:
            return self._proc or self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        env = {**os.environ, **CHILD_MALLOC}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [_PACKAGE_ROOT, env.get("PYTHONPATH")]))
        try:
            proc = subprocess.Popen(  # noqa: S603  # our own interpreter and module
                [
                    sys.executable,
                    "-m",
                    "node.store.sqlite.writer_child",
                    str(self.path),
                    str(self.busy_timeout_s),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
            )
        except OSError as e:  # no processes or memory left
            raise StoreError(f"cannot start the writer of {self.what} {self.path}: {e}") from e
        assert proc.stdout is not None and proc.stdin is not None
        _widen_pipe(proc.stdin)
        self._proc = proc
        try:
            self._check(receive(proc.stdout))  # the child's word that it is connected
        except (EOFError, OSError, StoreError) as e:
            self._reap(proc)
            if isinstance(e, StoreError):
                raise
            raise StoreError(f"the writer of {self.what} {self.path} ended while starting") from e
        return proc

    def _send_request(self, name: str, args: tuple[object, ...]) -> Future[object]:
        """Send one request; the future of its answer, queued for the answers' thread here,
        on this thread, so answers are read in the order their requests were sent."""
        proc = self._current()
        try:
            self._send_to(proc, name, args)
        except (OSError, ValueError):
            # The child was gone before it read the whole request, so it wrote nothing: once
            # more, with a new child. (ValueError: the answers' thread already closed it.)
            self._reap(proc)
            proc = self._current()
            try:
                self._send_to(proc, name, args)
            except (OSError, ValueError) as e:
                code = self._reap(proc)
                raise StoreError(
                    f"{self.what} {self.path}: the writer process ended (status {code}) before"
                    f" it read {name}; nothing was stored"
                ) from e
        return self._answers.submit(self._answer, proc, name)

    @staticmethod
    def _send_to(proc: subprocess.Popen[bytes], name: str, args: tuple[object, ...]) -> None:
        assert proc.stdin is not None
        send(proc.stdin, (name, args))

    # On the answers' thread.

    def _answer(self, proc: subprocess.Popen[bytes], name: str) -> object:
        assert proc.stdout is not None
        try:
            reply = receive(proc.stdout)
        except (EOFError, OSError, ValueError) as e:
            code = self._reap(proc)
            raise StoreOutcomeUnknownError(
                f"{self.what} {self.path}: the writer process ended (status {code}) during"
                f" {name}; it may or may not have been stored"
            ) from e
        return self._check(reply)

    @staticmethod
    def _check(reply: object) -> object:
        status, value = reply if isinstance(reply, tuple) and len(reply) == 2 else ("bad", reply)
        if status == "ok":
            return value
        if status == "conflict":
            raise StoreConflictError(str(value))
        raise StoreError(str(value))

    def _reap(self, proc: subprocess.Popen[bytes]) -> int | None:
        """Close our ends of `proc`'s pipes and wait for it; it is no longer the current child."""
        with self._proc_lock:
            if self._proc is proc:
                self._proc = None
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                # A broken pipe has nothing left to flush; closing it may still complain.
                with contextlib.suppress(OSError, ValueError):
                    stream.close()
        try:
            return proc.wait(timeout=CLOSE_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.wait()

    def _stop(self) -> None:
        proc = self._proc
        code = None if proc is None else self._reap(proc)
        if code not in (None, 0):
            raise StoreError(f"the writer of {self.what} {self.path} ended with status {code}")
