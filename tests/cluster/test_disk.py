"""A node on a small disk (a real tmpfs): it warns before the disk fills, refuses writes with
503 once it has, loses nothing it acknowledged, keeps its write-ahead log small enough to be
checkpointed, and carries on by itself once space is freed. Real node processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.app.procs import NodeGroup
from node.cli.common import EXIT_NODE
from node.cli.main import main
from node.config import NodeConfig
from node.errors import RequestError
from tests.cluster.support import api, consortium, found, md5_item, status, submit, wait_until

MIB = 1 << 20


def mounted_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill ({done.stderr.strip()}); needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.fixture
def disk_16m(tmp_path: Path) -> Iterator[Path]:
    yield from mounted_tmpfs(tmp_path / "disk", "16m")


@pytest.fixture
def disk_4m(tmp_path: Path) -> Iterator[Path]:
    yield from mounted_tmpfs(tmp_path / "disk", "4m")


def ballast(path: Path, size: int) -> Path:
    with path.open("wb") as f:
        f.write(b"\0" * size)
    return path


def fill_up(path: Path) -> None:
    """Write `path` until the disk has no byte left."""
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass


def on_disk(config: NodeConfig, disk: Path) -> None:
    config.data_dir.parent.mkdir(parents=True, exist_ok=True)
    config.data_dir.symlink_to(disk)


def alerts(config: NodeConfig) -> list[str]:
    return list(status(config)["alerts"])


def metric(config: NodeConfig, name: str) -> float:
    text = api(config).call("GET", "/metrics").decode()
    [line] = [x for x in text.splitlines() if x.startswith(name + " ")]
    return float(line.split()[1])


def all_found(config: NodeConfig, items: list[dict[str, str]]) -> bool:
    """Whether the node holds every one of `items` (looked up 5,000 at a time)."""
    for start in range(0, len(items), 5000):
        body = {"hashes": items[start : start + 5000]}
        results = api(config).call("POST", "/v1/lookup", body)["results"]
        if not all(r["found"] for r in results):
            return False
    return True


def fill_until_refused(config: NodeConfig, tag: str, acked: list[dict[str, str]]) -> int | None:
    """Submit until a 503; the number acknowledged when the low-space alert first showed."""
    alerted_at = None
    with pytest.raises(RequestError, match=r"503.*full"):
        for i in range(100_000):
            items = [md5_item(f"{tag} {i} {j}") for j in range(400)]
            submit(config, items)
            acked.extend(items)
            if alerted_at is None and any("low disk space" in a for a in alerts(config)):
                alerted_at = len(acked)
    return alerted_at


def test_a_filling_disk_alerts_before_writes_fail_and_the_node_recovers_once_space_is_freed(
    tmp_path: Path, disk_16m: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [config] = consortium(tmp_path, 1, disk_alert_free_mib=3.0).configs
    on_disk(config, disk_16m)
    spare = ballast(disk_16m / "spare", 2 * MIB)  # what the operator will delete
    acked: list[dict[str, str]] = []
    with NodeGroup([config]):
        assert alerts(config) == []
        assert metric(config, "hashmesh_data_free_bytes") > 8 * MIB
        alerted_at = fill_until_refused(config, "fill", acked)
        assert alerted_at is not None, "no low-space alert before the first refused write"
        assert 0 < alerted_at <= len(acked)
        shown = alerts(config)
        assert any("low disk space" in a for a in shown), shown
        assert any("store write(s) failed in the last 10 min" in a for a in shown), shown
        assert metric(config, "hashmesh_store_write_failures_total") >= 1
        assert metric(config, "hashmesh_data_free_bytes") < 3 * MIB
        assert main(["status", "--node", str(config.directory)]) == 0
        shown_by_cli = capsys.readouterr().out
        assert "ALERT: low disk space" in shown_by_cli and "failed writes" in shown_by_cli
        # The WAL was checkpointed into the database as space ran low, not left to fill it.
        db = (disk_16m / "hashmesh.db").stat().st_size
        wal_path = disk_16m / "hashmesh.db-wal"
        wal = wal_path.stat().st_size if wal_path.exists() else 0
        assert db > 8 * MIB and wal < 2 * MIB, (db, wal)

        spare.unlink()  # the operator frees space; the node is not restarted
        wait_until(lambda: metric(config, "hashmesh_data_free_bytes") > 2 * MIB, 10, "freed")
        submit(config, [md5_item("after space was freed")])
        assert found(config, md5_item("after space was freed"))
        assert all_found(config, acked)
    assert main(["audit", "verify", str(config.directory)]) == 0


def test_a_node_restarted_on_a_full_disk_exits_with_the_store_code_and_starts_once_freed(
    tmp_path: Path, disk_4m: Path
) -> None:
    [config] = consortium(tmp_path, 1, disk_alert_free_mib=1.0).configs
    on_disk(config, disk_4m)
    items = [md5_item(f"before the restart {i}") for i in range(300)]
    with NodeGroup([config]):
        submit(config, items)
    fill_up(disk_4m / "filler")
    done = subprocess.run(
        [sys.executable, "-m", "node.cli.main", "node", "run", str(config.directory)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_NODE, output
    assert "Traceback" not in output
    last = output.strip().splitlines()[-1]
    assert last.startswith("hashmesh: ") and "the disk is full or nearly" in last, output
    (disk_4m / "filler").unlink()
    with NodeGroup([config]):
        assert all_found(config, items)
