"""Agreement across real nodes: a confirmation written on one member turns the policy decision
for the hash from review to act on every member, and its provenance bundle verifies from the
genesis roster; PDQ hashes of different members corroborate each other within the roster's
threshold, and not beyond it; and an entry of a kind a node does not know (a newer member's)
still replicates, so consortia of mixed versions keep working."""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from node.app.procs import NodeGroup
from node.cli.main import main
from node.config import NodeConfig
from node.core import wire
from node.credentials.key_files import load_key
from node.credentials.request_auth import sign_request
from protocol import codec
from protocol.entries import Add, encode_entry
from protocol.writer import LogWriter
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


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(list(argv))
    return code, capsys.readouterr().out


def decision(config: NodeConfig, item: dict[str, str]) -> str:
    result = api(config).call("POST", "/v1/match", {"hashes": [item]})["results"][0]
    return str(result["matches"][0]["decision"]["action"]) if result["matches"] else "none"


def lookup(config: NodeConfig, item: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = api(config).call("POST", "/v1/lookup", {"hashes": [item]})
    return result["results"][0]  # type: ignore[no-any-return]


def test_a_confirmation_on_one_node_turns_review_into_act_on_every_node_within_a_second(
    make_consortium: MakeConsortium, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # The pull interval is far longer than the test: only the push can deliver in time.
    setup = make_consortium(3, sync_interval_s=600.0, roster_act_agreement=2)
    a, b, c = setup.configs
    item = md5_item("agreement")
    with NodeGroup(setup.configs):
        (entry,) = submit(a, [item])
        for config in (b, c):
            wait_until(lambda cfg=config: found(cfg, item), 30, f"{config.member_id} has it")
        # One member stands behind it; the roster asks for two.
        assert [decision(x, item) for x in (a, b, c)] == ["review"] * 3
        start = time.monotonic()
        code, out = cli(
            capsys, "confirm", entry["log"], str(entry["index"]),
            "--reason-code", "also-removed", "--text", "same video",
            "--node", str(b.directory), "--json",
        )  # fmt: skip
        assert code == 0, out
        confirmation = json.loads(out)["entry"]
        assert confirmation["log"] == b.origin
        for config in (a, b, c):
            left = max(0.0, 1.0 - (time.monotonic() - start))
            wait_until(lambda cfg=config: decision(cfg, item) == "act", left, config.member_id)
        assert time.monotonic() - start < 1.0
        view = lookup(c, item)
        (confirmed,) = view["submissions"][0]["confirmations"]
        assert confirmed["member"] == b.member_id and confirmed["reason_code"] == "also-removed"
        assert confirmed["active"] is True and confirmed["index"] == confirmation["index"]
        assert view["agreement"]["count"] == 2

        # The confirmation is provable: its bundle verifies from the genesis roster alone.
        out_path = tmp_path / "bundle.json"
        code, out = cli(
            capsys, "audit", "proof", f"md5:{item['value']}", "--out", str(out_path),
            "--confirmations", "--node", str(c.directory),
        )  # fmt: skip
        assert code == 0, out
        bundle = tmp_path / f"bundle.confirm.{b.member_id}.{confirmation['index']}.json"
        genesis = c.directory / "roster.bin"
        code, out = cli(
            capsys, "audit", "verify-proof", str(bundle), "--genesis", str(genesis), "--json"
        )
        assert code == 0, out
        verified = json.loads(out)
        assert verified["member"] == b.member_id and verified["genesis_pinned"] is True
        assert verified["entry"]["kind"] == "confirm"
        assert verified["entry"]["target"] == [entry["log"], entry["index"]]

        # The confirmer withdraws it: one member stands behind the hash again.
        code, out = cli(capsys, "retract", str(confirmation["index"]), "--node", str(b.directory))
        assert code == 0, out
        for config in (a, b, c):
            wait_until(lambda cfg=config: decision(cfg, item) == "review", 10, config.member_id)


def _flip(value: bytes, bits: range) -> bytes:
    number = int.from_bytes(value, "big")
    for bit in bits:
        number ^= 1 << bit
    return number.to_bytes(32, "big")


def test_pdq_variants_within_the_threshold_corroborate_each_other_and_beyond_it_do_not(
    tmp_path: Path,
) -> None:
    setup = consortium(tmp_path, 3, sync_interval_s=600.0, roster_act_agreement=2)
    a, b, c = setup.configs
    original = bytes(range(32))
    near = _flip(original, range(31))  # 31 bits away: the default threshold
    far = _flip(original, range(100, 132))  # 32 bits from the original, 63 from `near`
    items = [{"signal_type": "pdq", "value": v.hex()} for v in (original, near, far)]
    with NodeGroup(setup.configs):
        for config, pdq in zip((a, b, c), items, strict=True):
            submit(config, [pdq])
        for config in (a, b, c):
            # Stored first, then indexed: wait until the index finds each of them too.
            wait_until(
                lambda cfg=config: all(decision(cfg, x) != "none" for x in items),
                30,
                config.member_id,
            )
            first, second, third = (lookup(config, x) for x in items)

            def corroborating(view: dict[str, Any]) -> list[tuple[str, int]]:
                by = view["submissions"][0]["corroborations"]
                return [(x["member"], x["distance"]) for x in by]

            assert corroborating(first) == [(b.member_id, 31)]
            assert corroborating(second) == [(a.member_id, 31)]
            assert third["submissions"][0]["corroborations"] == []
            assert first["agreement"]["count"] == 2 and third["agreement"]["count"] == 1
            assert decision(config, items[0]) == "act"
            assert decision(config, items[2]) == "review"


def test_an_entry_of_a_kind_this_node_does_not_know_replicates_as_an_undecodable_leaf(
    tmp_path: Path,
) -> None:
    """A member on a newer version writes a kind this version does not know (here 9): the
    log still verifies, is stored and relayed whole, and the entries around it are found."""
    setup = consortium(tmp_path, 3, sync_interval_s=0.5, sync_jitter_s=0.1)
    first, newer, third = setup.configs
    _, log_key = load_key(newer.checkpoint_key_path)
    _, node_key = load_key(newer.node_key_path)
    before, after = md5_item("before the unknown kind"), md5_item("after the unknown kind")
    unknown = codec.encode([1, 9, 1_800_000_000_000, [first.origin, 0], "future", ""])
    raws = [
        encode_entry(Add(1_800_000_000_000, "md5", bytes.fromhex(before["value"]))),
        unknown,
        encode_entry(Add(1_800_000_000_000, "md5", bytes.fromhex(after["value"]))),
    ]
    writer = LogWriter(newer.origin, log_key)
    writer.commit(writer.plan(raws))
    body = wire.encode_push(wire.Push(newer.origin, writer.sign().raw, 0, tuple(raws)))
    with NodeGroup([first, third]):
        wait_until(lambda: bool(status(first)["logs"]), 30, "first node up")
        path = "/v1/push"
        headers = sign_request(
            node_key, newer.member_id, first.member_id, "POST", path, body,
            time.time_ns() // 1_000_000, secrets.token_bytes(16),
        )  # fmt: skip
        request = urllib.request.Request(
            f"http://127.0.0.1:{first.peer_port}{path}", data=body, method="POST", headers=headers
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert wire.decode_push_result(response.read()).status == "accepted"
        for config in (first, third):  # the third gets it from the first (relay or pull)
            wait_until(
                lambda cfg=config: roots(cfg).get(newer.origin, (0, ""))[0] == 3,
                30,
                f"{config.member_id} holds the newer member's log",
            )
            assert found(config, before) and found(config, after)
        assert roots(first)[newer.origin] == roots(third)[newer.origin]
