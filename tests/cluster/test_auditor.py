"""An auditor in the roster runs a node that reads every member's log and writes nothing: it
catches up on every log, its copy passes `audit verify`, and its attempts to write (submit,
push, offer a roster) are refused with 403."""

from __future__ import annotations

from pathlib import Path

import pytest

from node import wire
from node.cli.main import main
from node.errors import RequestError
from node.procs import NodeGroup
from tests.cluster.support import consortium, md5_item, roots, submit, wait_until
from tests.cluster.test_hostile import Rogue, _page, _send, _signed


def test_an_auditor_reads_every_log_and_may_write_nothing(tmp_path: Path) -> None:
    setup = consortium(tmp_path, 2, auditors=1, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b, auditor = setup.configs
    with NodeGroup(setup.configs):
        submit(a, [md5_item(f"a{i}") for i in range(30)])
        submit(b, [md5_item(f"b{i}") for i in range(20)])

        def audited() -> dict[str, tuple[int, str]]:
            return {o: r for o, r in roots(auditor).items() if o in (a.origin, b.origin)}

        def complete() -> bool:
            return audited() == {a.origin: roots(a)[a.origin], b.origin: roots(b)[b.origin]}

        wait_until(complete, 30, "auditor holds every log")
        with pytest.raises(RequestError, match="403"):
            submit(auditor, [md5_item("an auditor's takedown")])
        # Its node key reads through the peer API but cannot write.
        as_peer = Rogue(auditor)
        path = "/v1/checkpoints"
        headers = _signed(a, auditor.member_id, as_peer.node_key, "GET", path)
        code, body = _send(a, "GET", path, headers=headers)
        assert code == 200 and len(wire.decode_vector(body, 1 << 20).checkpoints) >= 2
        code, body = as_peer.push(b, _page(as_peer, [1, 2]))
        assert code == 403 and b"read-only" in body
    assert main(["audit", "verify", str(auditor.directory)]) == 0
