"""Setting up local members: ports for local nodes, join requests."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from node.app.consortium import JoinRequest, free_port, init_member
from node.config import NodeConfig
from node.errors import ConfigError


def test_local_ports_come_from_below_the_ephemeral_range() -> None:
    # Regression: ports the OS gave for port 0 came from the ephemeral range, where a running
    # node's outgoing connection could take one before the node meant to listen on it started.
    ports = {free_port() for _ in range(50)}
    assert all(20_000 <= p < 32_768 for p in ports)
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports.pop()))  # and it is free


def test_a_join_request_round_trips_and_a_malformed_one_is_refused(tmp_path: Path) -> None:
    config = NodeConfig(member_id="acme", origin="acme.example/log", directory=tmp_path / "n")
    request = init_member(config, display_name="Acme", contact="tns@acme.example")
    assert JoinRequest.from_json(request.to_json()) == request
    assert request.member().origin == "acme.example/log"
    with pytest.raises(ConfigError, match="malformed join request"):
        JoinRequest.from_json('{"type": "hashmesh-join-request-v1"}')


def test_free_port_never_gives_the_same_port_twice_in_a_process() -> None:
    # Regression: two nodes of one test consortium were given the same port (a port is only
    # bound when its node starts), and the second failed with "address already in use".
    ports = [free_port() for _ in range(1000)]  # with repeats allowed, one is all but sure
    assert len(set(ports)) == len(ports)
