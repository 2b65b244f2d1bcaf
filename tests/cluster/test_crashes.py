"""kill -9 during a submit burst and during catch-up: after a restart nothing acknowledged is
lost, nothing is duplicated, and the logs converge. Real node processes on 127.0.0.1; 12 burst
rounds and 8 catch-up rounds, 20 crashes at random points, on each store."""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from node.app.procs import NodeGroup, NodeProcess
from node.cli.operator_client import OperatorClient
from node.errors import NodeError
from tests.cluster.conftest import MakeConsortium
from tests.cluster.support import md5_item, roots, submit, wait_until


def _burst(config: Any, tag: str, acked: list[tuple[dict[str, str], int]]) -> None:
    i = 0
    while True:
        items = [md5_item(f"{tag}-{i}-{j}") for j in range(4)]
        try:
            refs = submit(config, items)
        except NodeError:
            return  # the node died under us: what was acknowledged is in `acked`
        acked.extend((item, ref["index"]) for item, ref in zip(items, refs, strict=True))
        i += 1


def test_kill_9_during_submit_bursts_loses_nothing_acknowledged(
    make_consortium: MakeConsortium,
) -> None:
    setup = make_consortium(2, sync_interval_s=0.5, sync_jitter_s=0.1)
    origin, peer = setup.configs
    rng = random.Random(7)
    acked: list[tuple[dict[str, str], int]] = []
    with NodeGroup([peer]):
        node = NodeProcess(origin)
        try:
            for round_ in range(12):
                node.start()
                worker = threading.Thread(target=_burst, args=(origin, f"b{round_}", acked))
                worker.start()
                time.sleep(rng.uniform(0.2, 0.6))
                node.kill()
                worker.join(30)
                assert not worker.is_alive()
            node.start()
            client = OperatorClient.for_node(origin)
            items = [item for item, _ in acked]
            assert len(items) > 40  # the bursts did real work before each crash
            found = client.call("POST", "/v1/lookup", {"hashes": items})["results"]
            for (item, index), result in zip(acked, found, strict=True):
                # Present, once, at the index we were told.
                assert [(s["log"], s["index"]) for s in result["submissions"]] == [
                    (origin.origin, index)
                ], item
            size = roots(origin)[origin.origin][0]
            assert size >= len(acked)
            assert sorted(i for _, i in acked) == sorted(set(i for _, i in acked))
            # The peer converges on the same log after the crashes.
            wait_until(
                lambda: roots(peer).get(origin.origin) == roots(origin)[origin.origin],
                30,
                "peer converged",
            )
        finally:
            node.stop()


def test_kill_9_during_catch_up_then_restart_converges(make_consortium: MakeConsortium) -> None:
    setup = make_consortium(2, sync_interval_s=0.3, sync_jitter_s=0.05, page_size=100)
    source, joiner = setup.configs
    with NodeGroup([source]):
        for batch in range(10):
            submit(source, [md5_item(f"c{batch}-{j}") for j in range(300)])
        want = roots(source)[source.origin]
        node = NodeProcess(joiner)
        try:
            sizes = []
            for _ in range(8):
                node.start()
                time.sleep(random.uniform(0.3, 0.8))
                node.kill()
                node.start()
                sizes.append(roots(joiner).get(source.origin, (0, ""))[0])
                node.kill()
            node.start()
            wait_until(lambda: roots(joiner).get(source.origin) == want, 30, "caught up")
            assert want[0] == 3000
            assert sizes == sorted(sizes)  # progress kept across crashes, never rolled back
        finally:
            node.stop()
