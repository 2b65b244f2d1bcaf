"""insert_rows: a batch goes into SQLite in a few multi-row statements, not one a row."""

from __future__ import annotations

import sqlite3

from node.store.sqlite.statements import MAX_ROWS_PER_STATEMENT, insert_rows


def table() -> tuple[sqlite3.Connection, list[str]]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB NOT NULL)")
    executed: list[str] = []
    conn.set_trace_callback(executed.append)
    return conn, executed


def test_a_batch_is_written_in_few_statements_not_one_a_row() -> None:
    # Regression: executemany steps once a row, and each step lets go of the GIL and waits to
    # get it back; beside a busy event loop the store wrote under 1,000 rows a second.
    conn, executed = table()
    count = 2 * MAX_ROWS_PER_STATEMENT + 905  # 905 = 512 + 256 + 128 + 8 + 1
    rows = [(k, bytes([k % 256]) * 3) for k in range(count)]
    statements = insert_rows(conn, "INSERT INTO t (k, v)", rows)
    inserts = [s for s in executed if s.startswith("INSERT")]
    assert statements == len(inserts) == 2 + 5
    assert conn.execute("SELECT k, v FROM t ORDER BY k").fetchall() == rows


def test_statements_stay_within_the_connections_parameter_limit() -> None:
    conn, executed = table()
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)  # 50 rows of 2 -> chunks of 32
    rows = [(k, b"x") for k in range(100)]
    statements = insert_rows(conn, "INSERT INTO t (k, v)", rows)
    assert statements == len([s for s in executed if s.startswith("INSERT")]) == 4  # 32*3 + 4
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (100,)


def test_an_empty_batch_runs_no_statement() -> None:
    conn, executed = table()
    assert insert_rows(conn, "INSERT INTO t (k, v)", []) == 0
    assert not [s for s in executed if s.startswith("INSERT")]
