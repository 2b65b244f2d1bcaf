"""kill -9 of a node's SQLite writer process (not of the node) while the node catches up on a
peer's log and takes submissions: the node goes on with a new writer, loses nothing it
acknowledged, stores nothing twice, and converges. Real node processes on 127.0.0.1."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

from node.app.procs import NodeGroup, NodeProcess
from node.errors import NodeError
from tests.cluster.support import api, consortium, md5_item, roots, submit, wait_until


def writer_of(node_pid: int) -> int | None:
    """The pid of a node's SQLite writer process, if it runs."""
    for task in Path(f"/proc/{node_pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"node.store.sqlite.writer_child" in command:
                return int(child)
    return None


def test_kill_9_of_the_sqlite_writer_loses_nothing_and_the_node_goes_on(tmp_path: Path) -> None:
    setup = consortium(tmp_path, 2, sync_interval_s=0.3, sync_jitter_s=0.05, page_size=100)
    source, joiner = setup.configs
    rng = random.Random(11)
    with NodeGroup([source]):
        for batch in range(16):
            submit(source, [md5_item(f"s{batch}-{j}") for j in range(500)])
        want = roots(source)[source.origin]
        node = NodeProcess(joiner)
        acked: list[tuple[dict[str, str], int]] = []
        killed: set[int] = set()
        try:
            node.start()
            assert node.pid is not None
            for round_ in range(8):
                time.sleep(rng.uniform(0.05, 0.3))
                writer = writer_of(node.pid)
                if writer is not None:
                    os.kill(writer, signal.SIGKILL)
                    killed.add(writer)
                items = [md5_item(f"j{round_}-{j}") for j in range(3)]
                try:
                    refs = submit(joiner, items)
                except NodeError:
                    continue  # refused (the write's fate unknown): not acknowledged
                acked.extend((item, ref["index"]) for item, ref in zip(items, refs, strict=True))
            assert len(killed) >= 4  # writers really died, and new ones took over
            # The kills are over: the next submission lands without a restart, after the rest.
            last = md5_item("after the kills")
            [ref] = submit(joiner, [last])
            acked.append((last, ref["index"]))
            assert ref["index"] == max(index for _, index in acked)
            wait_until(lambda: roots(joiner).get(source.origin) == want, 60, "caught up")
            assert node.running
            assert acked  # most submissions got through despite the kills
            found = api(joiner).call("POST", "/v1/lookup", {"hashes": [i for i, _ in acked]})
            for (item, index), result in zip(acked, found["results"], strict=True):
                assert [(s["log"], s["index"]) for s in result["submissions"]] == [
                    (joiner.origin, index)
                ], item
            wait_until(
                lambda: roots(source).get(joiner.origin) == roots(joiner)[joiner.origin],
                30,
                "the source holds the joiner's log",
            )
        finally:
            node.stop()
