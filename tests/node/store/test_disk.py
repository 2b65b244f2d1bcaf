"""The disk watch (node/store/disk_watch.py): when low space and failed writes raise alerts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from node.errors import StoreConflictError, StoreError
from node.store.disk_watch import FAILURE_WINDOW_MS, MIB, DiskSpace, DiskWatch, WatchedStore
from node.store.sqlite import writes as sqlite_writes
from node.store.sqlite.store import SqliteStore
from node.store.sqlite.writes import bound_wal, configure_writer


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def watch_with(space: DiskSpace, percent: float = 5.0, mib: float = 256.0) -> DiskWatch:
    watch = DiskWatch(Path("/srv/node/data"), Clock(), percent, mib)
    watch.space = lambda: space  # type: ignore[method-assign]
    return watch


def test_low_space_alerts_below_the_larger_of_the_share_and_the_floor() -> None:
    big = 1000 * 1024 * MIB  # 1000 GiB: 5 % is 50 GiB, more than the 256 MiB floor
    assert watch_with(DiskSpace(60 * 1024 * MIB, big)).alerts() == []
    [alert] = watch_with(DiskSpace(40 * 1024 * MIB, big)).alerts()
    assert alert.startswith("low disk space: 40960.0 MiB free") and "/srv/node/data" in alert
    small = 1024 * MIB  # 1 GiB: 5 % is 51 MiB, less than the 256 MiB floor
    assert watch_with(DiskSpace(300 * MIB, small)).alerts() == []
    assert watch_with(DiskSpace(200 * MIB, small)).alerts() != []
    assert watch_with(DiskSpace(200 * MIB, small), mib=100).alerts() == []


def test_failed_writes_alert_for_ten_minutes_after_the_last() -> None:
    watch = watch_with(DiskSpace(900 * MIB, 1024 * MIB))
    clock = watch.clock
    assert isinstance(clock, Clock)
    watch.write_failed(StoreError("database or disk is full"))
    clock.ms += 1000
    watch.write_failed(StoreError("database or disk is full"))
    [alert] = watch.alerts()
    assert alert == (
        "2 store write(s) failed in the last 10 min; the last: database or disk is full"
    )
    clock.ms += FAILURE_WINDOW_MS - 1
    assert len(watch.alerts()) == 1
    clock.ms += 2
    assert watch.alerts() == [] and watch.write_failures == 2


async def test_the_watched_store_counts_failed_writes_but_not_conflicts(tmp_path: Path) -> None:
    watch = DiskWatch(tmp_path, Clock())
    store = WatchedStore(SqliteStore(tmp_path / "s.db", busy_timeout_s=0.2), watch)
    await store.open()
    try:
        await store.save_roster(1, b"one")
        with pytest.raises(StoreConflictError):
            await store.save_roster(1, b"another")
        assert watch.write_failures == 0
        blocker = sqlite3.connect(tmp_path / "s.db")
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            with pytest.raises(StoreError, match="locked"):
                await store.save_roster(2, b"two")
        finally:
            blocker.rollback()
            blocker.close()
        assert watch.write_failures == 1
        assert await store.rosters() == [b"one"]
    finally:
        await store.close()


class FakeStatvfs:
    def __init__(self, free_bytes: int) -> None:
        self.f_bavail, self.f_frsize, self.f_blocks = free_bytes // 4096, 4096, 1 << 30


@pytest.mark.parametrize(("free_mib", "cut"), [(1024, False), (1, True)])
def test_the_writer_truncates_its_wal_once_it_outgrows_a_quarter_of_the_free_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, free_mib: int, cut: bool
) -> None:
    path = str(tmp_path / "s.db")
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        configure_writer(conn)
        conn.execute("CREATE TABLE t (b BLOB)")
        for _ in range(80):
            conn.execute("INSERT INTO t VALUES (randomblob(16384))")
        wal = Path(f"{path}-wal")
        assert wal.stat().st_size > MIB  # under the autocheckpoint: still all in the WAL
        monkeypatch.setattr(sqlite_writes.os, "statvfs", lambda _: FakeStatvfs(free_mib * MIB))
        assert bound_wal(conn, path) is cut
        assert (wal.stat().st_size == 0) is cut
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (80,)
    finally:
        conn.close()
