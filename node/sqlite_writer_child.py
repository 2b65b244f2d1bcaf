"""The SQLite store's writer process itself: `python -m node.sqlite_writer_child PATH TIMEOUT`.

It owns the database's only write connection (sqlite_writes.configure_writer) and answers
the write requests node/sqlite_writer.py's WriterProcess sends (that module describes the
protocol and the lifetime), one at a time, each in one transaction, until its stdin ends.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from typing import IO, cast

from node.errors import StoreConflictError, StoreError
from node.sqlite_writer import receive, send
from node.store.sqlite_writes import bound_wal, configure_writer, run_write


def serve(path: str, busy_timeout_s: float, requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answer write requests until `requests` ends."""
    what = f"the SQLite store {path}"
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
        configure_writer(conn)
    except (sqlite3.Error, StoreError) as e:
        send(replies, ("error", f"{what}: {e}"))
        return
    try:
        send(replies, ("ok", None))
        while True:
            try:
                request = receive(requests)
            except EOFError:
                return
            name, args = cast(tuple[str, tuple[object, ...]], request)
            try:
                send(replies, ("ok", run_write(conn, name, args)))
            except StoreConflictError as e:
                send(replies, ("conflict", str(e)))
            except StoreError as e:
                send(replies, ("error", str(e)))
            except sqlite3.Error as e:
                send(replies, ("error", f"{what}: {e}"))
            bound_wal(conn, path)  # answered first: the write is durable either way
    finally:
        conn.close()


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the replies
    serve(sys.argv[1], float(sys.argv[2]), sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
