"""A takedown on one node becomes matchable on every node: by push, by the scheduled pull alone
(also when the origin goes offline right after one peer got it), and for a member that joins late.
Real node processes on 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from node.app.consortium import JOIN_REQUEST
from node.app.procs import NodeGroup, NodeProcess
from node.config import NodeConfig
from tests.cluster.conftest import MakeConsortium
from tests.cluster.support import (
    api,
    consortium,
    found,
    md5_item,
    roots,
    status,
    submit,
    wait_until,
)
from tests.cluster.test_governance import cli, draft, sign


def test_push_makes_a_hash_matchable_on_all_five_nodes_within_a_second(
    make_consortium: MakeConsortium,
) -> None:
    # The pull interval is far longer than the test: only the push can deliver in time.
    group_setup = make_consortium(5, sync_interval_s=600.0)
    with NodeGroup(group_setup.configs):
        item = md5_item("push")
        start = time.monotonic()
        submit(group_setup.configs[0], [item])
        for config in group_setup.configs[1:]:
            elapsed = time.monotonic() - start
            wait_until(lambda c=config: found(c, item), max(0.0, 1.0 - elapsed), config.member_id)
        assert time.monotonic() - start < 1.0


def test_the_scheduled_pull_alone_delivers_even_after_the_origin_stops(tmp_path: Path) -> None:
    interval = 2.0
    setup = consortium(tmp_path, 4, push=False, sync_interval_s=interval, sync_jitter_s=0.2)
    with NodeGroup(setup.configs) as group:
        item = md5_item("pull")
        submit(setup.configs[0], [item])
        # push=False: only the peers' scheduled pulls carry it. (This test once also checked
        # that no peer had it 0.3 s after the submit; that raced a peer's scheduled pull
        # whenever the nodes took long to start, and failed on a slow machine.)
        # Wait until one peer has it, then take the origin offline.
        wait_until(lambda: any(found(c, item) for c in setup.configs[1:]), 2 * interval, "first")
        group[0].stop()
        stopped = time.monotonic()
        for config in setup.configs[1:]:
            wait_until(lambda c=config: found(c, item), 2 * interval + 1.0, config.member_id)
        # It spread from a relay, within about one sync interval of the origin going away.
        assert time.monotonic() - stopped < 2 * interval + 1.0


def test_a_member_that_joins_late_catches_up_on_every_log(make_consortium: MakeConsortium) -> None:
    setup = make_consortium(4, sync_interval_s=1.0, sync_jitter_s=0.1, page_size=50)
    early, late = setup.configs[:3], setup.configs[3]
    with NodeGroup(early):
        for i, config in enumerate(early):
            submit(config, [md5_item(f"early-{i}-{j}") for j in range(120)])
        wait_until(lambda: len({str(roots(c)) for c in early}) == 1, 30, "early nodes agree")
        with NodeGroup([late]):
            target = roots(early[0])
            # The late member also lists its own (empty) log, which the others never heard of.
            wait_until(
                lambda: {o: r for o, r in roots(late).items() if o in target} == target,
                30,
                "late joiner caught up",
            )
            assert all(found(late, md5_item(f"early-{i}-119")) for i in range(3))
            assert sorted(size for size, _ in roots(late).values())[-3:] == [120, 120, 120]


def test_a_restarted_node_serves_what_it_held(make_consortium: MakeConsortium) -> None:
    setup = make_consortium(2, sync_interval_s=600.0)
    node = NodeProcess(setup.configs[0]).start()
    try:
        refs = submit(setup.configs[0], [md5_item(f"r{i}") for i in range(5)])
        assert [r["index"] for r in refs] == [0, 1, 2, 3, 4]
        node.stop()
        node.start()
        assert all(found(setup.configs[0], md5_item(f"r{i}")) for i in range(5))
        assert roots(setup.configs[0])[setup.configs[0].origin][0] == 5
    finally:
        node.stop()


def pusher_tasks(config: NodeConfig) -> float:
    """The node's hashmesh_pusher_tasks gauge, from GET /metrics."""
    text = api(config).call("GET", "/metrics").decode()
    families = text_string_to_metric_families(text)
    (value,) = [s.value for f in families for s in f.samples if s.name == "hashmesh_pusher_tasks"]
    return float(value)


def test_a_member_removed_and_added_back_gets_pushes_again_from_one_pusher(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Regression: a removed member's pusher waited on its deleted state's event and was never
    # replaced; added back, the member got no push again (only the scheduled pull), and one
    # blocked task leaked per removal. The pull interval is far longer than the test: only a
    # push can deliver.
    setup = consortium(tmp_path, 2, sync_interval_s=3600.0)
    origin, peer = setup.configs
    (admin,) = setup.admin_key_paths
    with NodeGroup(setup.configs):
        before = md5_item("before the removal")
        submit(origin, [before])
        wait_until(lambda: found(peer, before), 20, "push before the removal")

        removed = draft(capsys, origin.directory, tmp_path / "v2.roster", "remove-member",
                        "--member", peer.member_id)  # fmt: skip
        sign(capsys, removed, admin)
        publish = ("admin", "publish", str(removed), "--node", str(origin.directory))
        assert cli(capsys, *publish)[0] == 0
        wait_until(lambda: not status(origin)["peers"], 20, "the member removed")
        wait_until(lambda: pusher_tasks(origin) == 0, 20, "the removed member's pusher ended")

        back = draft(capsys, origin.directory, tmp_path / "v3.roster", "add-member",
                     "--join", str(peer.directory / JOIN_REQUEST))  # fmt: skip
        sign(capsys, back, admin)
        publish = ("admin", "publish", str(back), "--node", str(origin.directory))
        assert cli(capsys, *publish)[0] == 0
        wait_until(lambda: pusher_tasks(origin) == 1, 20, "a pusher for the member added back")
        after = md5_item("after the member came back")
        submit(origin, [after])
        wait_until(lambda: found(peer, after), 20, "push after the member came back")
        assert pusher_tasks(origin) == 1
