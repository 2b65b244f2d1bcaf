"""The SQLite store's writer process itself:
`python -m node.store.sqlite.writer_child PATH TIMEOUT`.

It owns the database's only write connection (sqlite_writes.configure_writer) and answers
the write requests node/store/sqlite/writer.py's WriterProcess sends (that module describes the
protocol and the lifetime), one at a time, each in one transaction, until its stdin ends.
Every request is answered, even one that raised something unexpected: only the child's
death leaves a write's outcome unknown.
"""

from __future__ import annotations

import marshal
import os
import signal
import sqlite3
import sys
from typing import IO, cast

from node.errors import StoreConflictError, StoreError
from node.store.sqlite.framing import receive, send
from node.store.sqlite.writes import bound_wal, configure_writer, run_write


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
            except ValueError as e:  # framed, so the next request still starts cleanly
                send(replies, ("error", f"{what}: {e}"))
                continue
            send(replies, answer(conn, what, request))
            bound_wal(conn, path)  # answered first: the write is durable either way
    finally:
        conn.close()


def answer(conn: sqlite3.Connection, what: str, request: object) -> tuple[str, object]:
    """The reply to one request. Every request gets one, whatever it raised (the transaction
    is rolled back first), so the node never has to guess whether a write was made."""
    try:
        name, args = cast(tuple[str, tuple[object, ...]], request)
        result = run_write(conn, name, args)
        marshal.dumps(result)  # type: ignore[arg-type]  # a result `send` cannot write fails here
    except StoreConflictError as e:
        return "conflict", str(e)
    except StoreError as e:
        return "error", str(e)
    except sqlite3.Error as e:
        return "error", f"{what}: {e}"
    except Exception as e:  # a bug in a write: answered, and the child goes on
        return "error", f"{what}: the writer failed: {type(e).__name__}: {e}"
    return "ok", result


def main() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the replies
    serve(sys.argv[1], float(sys.argv[2]), sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
