"""Matching past one process: two read-only match servers share a node's PostgreSQL store and
answer lookups and matches for takedowns the node receives, with the node's token only."""

from __future__ import annotations

import pytest

from node.app.consortium import free_port
from node.app.match_server import READY
from node.app.procs import NodeGroup, NodeProcess
from node.cli.operator_client import OperatorClient
from tests.cluster.conftest import MakeConsortium
from tests.cluster.support import md5_item, submit, wait_until


def test_match_servers_on_a_shared_postgresql_store_serve_new_takedowns(
    make_consortium: MakeConsortium, request: pytest.FixtureRequest
) -> None:
    if "sqlite" in request.node.name:
        pytest.skip("match servers share a PostgreSQL store; the sqlite case has nothing to share")
    setup = make_consortium(2, sync_interval_s=0.5, sync_jitter_s=0.1)
    origin, platform = setup.configs
    ports = [free_port(), free_port()]
    servers = [
        NodeProcess(
            platform,
            ("node", "serve-matches", "--port", str(p), "--refresh-s", "0.2"),
            READY,
            f"matches-{p}.log",
        )
        for p in ports
    ]
    token = platform.token_path.read_text().strip()
    clients = [OperatorClient(f"http://127.0.0.1:{p}", token) for p in ports]
    with NodeGroup(setup.configs):
        try:
            for server in servers:
                server.start()
            item = md5_item("served by many processes")
            pdq = bytes(range(32))
            near = bytes([pdq[0] ^ 0b10110, *pdq[1:]])  # 3 bits away
            submit(origin, [item, {"signal_type": "pdq", "value": pdq.hex()}])
            for client in clients:
                wait_until(
                    lambda c=client: c.call("POST", "/v1/lookup", {"hashes": [item]})["results"][0][
                        "found"
                    ],
                    30,
                    "match server sees the node's new entry",
                )
                result = client.call("POST", "/v1/match", {"hashes": [item]})["results"][0]
                assert result["matches"][0]["submissions"][0]["member"] == origin.member_id
                wait_until(
                    lambda c=client: c.call("GET", "/v1/status")["logs"].get(origin.origin) == 2,
                    30,
                    "match server indexed the new entry",
                )
                assert client.call("GET", "/v1/status")["role"] == "match-server"
                query = {"signal_type": "pdq", "value": near.hex()}
                [hit] = client.call("POST", "/v1/match", {"hashes": [query]})["results"][0][
                    "matches"
                ]
                assert hit["distance"] == 3 and hit["value"] == pdq.hex()
            with pytest.raises(Exception, match="401"):
                OperatorClient(f"http://127.0.0.1:{ports[0]}", "wrong").call("GET", "/v1/status")
        finally:
            for server in servers:
                server.stop()
