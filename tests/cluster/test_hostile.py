"""A rogue member and outsiders against a live node: every bad request is refused with a clear
error, nothing it sent is stored, and an honest peer keeps syncing. Real processes, loopback."""

from __future__ import annotations

import dataclasses
import json
import secrets
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from node.app.procs import NodeGroup
from node.config import NodeConfig
from node.core import wire
from node.credentials.key_files import load_key
from node.credentials.request_auth import sign_request
from protocol.entries import Add, encode_entry
from protocol.roster import SignedRoster
from protocol.signing import SigningKey
from protocol.writer import LogWriter
from tests.cluster.support import consortium, found, md5_item, status, submit, wait_until


def _now() -> int:
    return time.time_ns() // 1_000_000


def _send(
    victim: NodeConfig,
    method: str,
    path: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    url = f"http://127.0.0.1:{victim.peer_port}{path}"
    request = urllib.request.Request(url, data=body or None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


def _signed(
    victim: NodeConfig, member: str, key: SigningKey, method: str, path: str, body: bytes = b""
) -> dict[str, str]:
    return sign_request(
        key, member, victim.member_id, method, path, body, _now(), secrets.token_bytes(16)
    )


class Rogue:
    """Member 2, played by the test with its real keys."""

    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        _, self.node_key = load_key(config.node_key_path)
        _, self.log_key = load_key(config.checkpoint_key_path)

    def push(self, victim: NodeConfig, body: bytes) -> tuple[int, bytes]:
        headers = _signed(victim, self.config.member_id, self.node_key, "POST", "/v1/push", body)
        return _send(victim, "POST", "/v1/push", body, headers)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root: Path = tmp_path_factory.mktemp("hostile")
    setup = consortium(
        root,
        3,
        sync_interval_s=0.5,
        sync_jitter_s=0.1,
        max_body_bytes=256 * 1024,
        page_size=50,
        peer_timeout_s=1.0,
    )
    victim, rogue_config, honest = setup.configs
    with NodeGroup([victim, honest]) as group:
        PIDS["victim"] = group[0].pid or 0
        yield victim, Rogue(rogue_config), honest


PIDS: dict[str, int] = {}


def _error(body: bytes) -> str:
    return str(json.loads(body)["detail"])


def test_unauthenticated_peer_and_operator_requests_get_401(hostile: Any) -> None:
    victim, _, _ = hostile
    status_code, body = _send(victim, "GET", "/v1/checkpoints")
    assert status_code == 401 and "no member header" in _error(body)
    request = urllib.request.Request(f"{victim.operator_url}/v1/status")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    caught.value.close()
    assert caught.value.code == 401
    request.add_header("Authorization", "Bearer wrong")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=5)
    caught.value.close()
    assert caught.value.code == 401


def test_unknown_members_forged_signatures_and_replays_get_401(hostile: Any) -> None:
    victim, rogue, _ = hostile
    outsider = SigningKey.generate()
    code, body = _send(
        victim,
        "GET",
        "/v1/checkpoints",
        headers=_signed(victim, "mallory", outsider, "GET", "/v1/checkpoints"),
    )
    assert code == 401 and "unknown member" in _error(body)
    forged = _signed(victim, rogue.config.member_id, outsider, "GET", "/v1/checkpoints")
    code, body = _send(victim, "GET", "/v1/checkpoints", headers=forged)
    assert code == 401 and "bad request signature" in _error(body)
    good = _signed(victim, rogue.config.member_id, rogue.node_key, "GET", "/v1/checkpoints")
    assert _send(victim, "GET", "/v1/checkpoints", headers=good)[0] == 200
    code, body = _send(victim, "GET", "/v1/checkpoints", headers=good)
    assert code == 401 and "replayed" in _error(body)
    stale = sign_request(
        rogue.node_key,
        rogue.config.member_id,
        victim.member_id,
        "GET",
        "/v1/checkpoints",
        b"",
        _now() - 3_600_000,
        secrets.token_bytes(16),
    )
    code, body = _send(victim, "GET", "/v1/checkpoints", headers=stale)
    assert code == 401 and "skew" in _error(body)


def test_malformed_and_oversized_bodies_are_refused_and_nothing_is_stored(hostile: Any) -> None:
    victim, rogue, _ = hostile
    for garbage in (
        b"\xc1",
        b"\x95\x01",
        wire.encode_push(wire.Push(rogue.config.origin, b"x", 0, ())) + b"\x00",
    ):
        code, body = rogue.push(victim, garbage)
        assert code == 400, body
    code, _ = rogue.push(victim, b"\x00" * (300 * 1024))
    assert code == 413
    assert (
        rogue.config.origin not in status(victim)["logs"]
        or status(victim)["logs"][rogue.config.origin]["size"] == 0
    )


def _page(
    rogue: Rogue, values: list[int], key: SigningKey | None = None, claim: int | None = None
) -> bytes:
    writer = LogWriter(rogue.config.origin, key or rogue.log_key)
    raws = [encode_entry(Add(1_800_000_000_000, "md5", v.to_bytes(16, "big"))) for v in values]
    if claim is not None:  # a true checkpoint of the first `claim` entries, sent with more
        writer.commit(writer.plan(raws[:claim]))
        cp = writer.sign().raw
        return wire.encode_push(wire.Push(rogue.config.origin, cp, 0, tuple(raws)))
    writer.commit(writer.plan(raws))
    cp = writer.sign().raw
    return wire.encode_push(wire.Push(rogue.config.origin, cp, 0, tuple(raws)))


def test_bad_signatures_and_entries_beyond_the_checkpoint_are_refused(hostile: Any) -> None:
    victim, rogue, _ = hostile
    code, body = rogue.push(victim, _page(rogue, [1, 2], key=SigningKey.generate()))
    assert code == 400 and "no valid signature" in _error(body)
    code, body = rogue.push(victim, _page(rogue, [10, 11, 12], claim=2))
    assert code == 400 and "beyond the checkpoint" in _error(body)
    assert not found(victim, {"signal_type": "md5", "value": (10).to_bytes(16, "big").hex()})


def test_a_forked_log_is_kept_as_evidence_and_held_while_the_node_keeps_serving(
    hostile: Any,
) -> None:
    victim, rogue, honest = hostile
    code, body = rogue.push(victim, _page(rogue, [10, 11]))
    assert code == 200 and wire.decode_push_result(body).status == "accepted", body
    wait_until(
        lambda: found(victim, {"signal_type": "md5", "value": (10).to_bytes(16, "big").hex()}),
        30,
        "honest entries accepted",
    )
    code, body = rogue.push(victim, _page(rogue, [20, 21]))  # same size, another root: a fork
    assert code == 200 and wire.decode_push_result(body).status == "held"
    state = status(victim)
    assert [e["origin"] for e in state["equivocations"]] == [rogue.config.origin]
    assert state["logs"][rogue.config.origin]["held"]
    assert any("equivocation" in a for a in state["alerts"])
    assert not found(victim, {"signal_type": "md5", "value": (20).to_bytes(16, "big").hex()})
    # Honest members are still served and still sync.
    item = md5_item("after the fork")
    submit(honest, [item])
    wait_until(lambda: found(victim, item), 30, "honest peer still syncing")


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_stalled_body_times_out_while_honest_requests_are_served(hostile: Any) -> None:
    victim, rogue, honest = hostile
    path = "/v1/push"
    headers = _signed(victim, rogue.config.member_id, rogue.node_key, "POST", path, b"x" * 1000)
    with socket.create_connection(("127.0.0.1", victim.peer_port), timeout=10) as conn:
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        conn.sendall(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n{head}\r\n".encode()
        )
        conn.sendall(b"x" * 10)  # ... and the rest never comes
        item = md5_item("served during the stall")
        submit(honest, [item])
        wait_until(lambda: found(victim, item), 30, "honest peer served meanwhile")
        started = time.monotonic()
        answer = conn.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:100]
    assert time.monotonic() - started < 5


def test_page_sizes_are_bounded_whatever_a_peer_asks(hostile: Any) -> None:
    victim, rogue, honest = hostile
    submit(honest, [md5_item(f"page {i}") for i in range(120)])
    wait_until(lambda: status(victim)["logs"][honest.origin]["size"] >= 120, 30, "entries")
    path = f"/v1/entries?log={urllib.parse.quote(honest.origin, safe='')}&start=0&limit=100000000"
    code, body = _send(
        victim,
        "GET",
        path,
        headers=_signed(victim, rogue.config.member_id, rogue.node_key, "GET", path),
    )
    assert code == 200
    assert len(wire.decode_page(body, 1 << 20, 1000).entries) == 50  # the node's page_size


def test_forged_and_stale_rosters_from_a_peer_are_refused(hostile: Any, tmp_path: Path) -> None:
    victim, rogue, _ = hostile
    current = SignedRoster.decode(victim.roster_path.read_bytes())
    roster = current.roster
    forged = SignedRoster(
        dataclasses.replace(roster, version=roster.version + 1).encode(), ()
    ).with_signature(SigningKey.generate())
    body = forged.encode()
    code, answer = _send(
        victim,
        "POST",
        "/v1/roster",
        body,
        _signed(victim, rogue.config.member_id, rogue.node_key, "POST", "/v1/roster", body),
    )
    assert code == 400 and "threshold" in _error(answer)
    body = current.encode()
    code, answer = _send(
        victim,
        "POST",
        "/v1/roster",
        body,
        _signed(victim, rogue.config.member_id, rogue.node_key, "POST", "/v1/roster", body),
    )
    assert code == 200 and wire.decode_push_result(answer).status == "known"
    assert status(victim)["roster"]["version"] == roster.version


def test_memory_stays_bounded_under_a_barrage_of_bad_requests(hostile: Any) -> None:
    victim, rogue, _ = hostile
    before = _rss_kib(PIDS["victim"])
    for i in range(1500):
        kind = i % 3
        if kind == 0:
            rogue.push(victim, secrets.token_bytes(2000))
        elif kind == 1:
            _send(
                victim,
                "GET",
                "/v1/checkpoints",
                headers=_signed(victim, "mallory", SigningKey.generate(), "GET", "/v1/checkpoints"),
            )
        else:
            rogue.push(victim, _page(rogue, [i, i + 1], key=SigningKey.generate()))
    grown_mib = (_rss_kib(PIDS["victim"]) - before) / 1024
    assert grown_mib < 40, f"victim grew by {grown_mib:.1f} MiB"
