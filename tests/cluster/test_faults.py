"""Faults a node meets in production: a peer away for a while, a database locked by another
process, a full disk. Each gives a clear error and no corruption, and the node recovers by
itself once the cause is gone. Real node processes on 127.0.0.1."""

from __future__ import annotations

import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.app.procs import NodeGroup, NodeProcess
from node.cli.main import main
from node.errors import RequestError
from tests.cluster.support import consortium, found, md5_item, roots, submit, wait_until


def test_a_node_away_for_a_while_converges_on_its_return(tmp_path: Path) -> None:
    setup = consortium(tmp_path, 3, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b, c = setup.configs
    with NodeGroup([a, b]):
        away = NodeProcess(c).start()
        submit(a, [md5_item("before")])
        wait_until(lambda: found(c, md5_item("before")), 30, "before")
        away.stop()
        for i in range(20):
            submit(a if i % 2 else b, [md5_item(f"while away {i}")])
        away.start()
        try:
            # c also lists its own empty log, which a and b never heard of.
            others = lambda: {o: r for o, r in roots(c).items() if o != c.origin}  # noqa: E731
            wait_until(lambda: others() == roots(a) == roots(b), 30, "converged")
        finally:
            away.stop()


def test_a_locked_database_gives_a_clear_error_and_the_node_recovers(tmp_path: Path) -> None:
    setup = consortium(tmp_path, 1)
    [config] = setup.configs
    with NodeGroup([config]):
        submit(config, [md5_item("first")])
        blocker = sqlite3.connect(config.data_dir / "hashmesh.db", timeout=1)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            with pytest.raises(RequestError, match=r"503.*locked"):
                submit(config, [md5_item("while locked")])
        finally:
            blocker.rollback()
            blocker.close()
        submit(config, [md5_item("after")])
        assert found(config, md5_item("first")) and found(config, md5_item("after"))
        assert not found(config, md5_item("while locked"))
    assert main(["audit", "verify", str(config.directory)]) == 0


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({done.stderr.strip()}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_gives_a_clear_error_and_the_node_recovers(
    tmp_path: Path, small_disk: Path
) -> None:
    setup = consortium(tmp_path, 1)
    [config] = setup.configs
    config.data_dir.parent.mkdir(parents=True, exist_ok=True)
    config.data_dir.symlink_to(small_disk)
    acked: list[dict[str, str]] = []
    with NodeGroup([config]):
        with pytest.raises(RequestError, match=r"503.*full") as caught:
            for i in range(100_000):
                items = [md5_item(f"fill {i} {j}") for j in range(200)]
                submit(config, items)
                acked.extend(items)
        assert "disk" in str(caught.value)
        assert len(acked) > 0
        # The cause goes away: the same node, without a restart, takes submissions again.
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
        time.sleep(0.2)
        submit(config, [md5_item("after the disk was freed")])
        assert found(config, md5_item("after the disk was freed"))
        assert found(config, acked[0]) and found(config, acked[-1])
    assert main(["audit", "verify", str(config.directory)]) == 0
