"""A member's key declared compromised on a running consortium, through the CLI: the entries
before the compromise stay provable, the honest checkpoint the old key signed beyond it is
reported and does not fail `audit verify` after the re-key, and an auditor with no token reads
the public auditor API (roster chain, old checkpoints, inclusion and consistency proofs)."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from node.app.procs import NodeGroup
from node.config import NodeConfig
from protocol import merkle
from protocol.roster import SignedRoster, verify_chain
from protocol.tlogproof import parse_tlog_proof
from protocol.trust import open_trusted
from tests.cluster.support import (
    NOW,
    api,
    consortium,
    md5_item,
    roots,
    status,
    submit,
    wait_until,
)
from tests.cluster.test_governance import cli, draft, sign


def signed_size(config: NodeConfig, origin: str) -> int:
    return roots(config).get(origin, (0, ""))[0]


def proof_verifies(
    capsys: pytest.CaptureFixture[str], node: NodeConfig, item: dict[str, str], out: Path
) -> tuple[int, str]:
    hash_arg = f"{item['signal_type']}:{item['value']}"
    code, text = cli(capsys, "audit", "proof", hash_arg, "--out", str(out), "--node",
                     str(node.directory))  # fmt: skip
    assert code == 0, text
    return cli(capsys, "audit", "verify-proof", str(out), "--genesis", str(node.roster_path))


def publish(
    capsys: pytest.CaptureFixture[str], roster: Path, admin: Path, *nodes: NodeConfig
) -> None:
    """Sign with the one admin, publish at the first node, wait until every node has it."""
    sign(capsys, roster, admin)
    code, text = cli(capsys, "admin", "publish", str(roster), "--node", str(nodes[0].directory))
    assert code == 0, text
    version = SignedRoster.decode(roster.read_bytes()).roster.version
    for node in nodes:
        wait_until(lambda n=node: status(n)["roster"]["version"] >= version, 30, "roster")


def test_a_compromised_key_keeps_earlier_entries_provable_and_the_log_auditable_after_rekey(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = consortium(tmp_path, 2, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b = setup.configs
    (admin,) = setup.admin_key_paths
    items = [md5_item(f"b{i}") for i in range(5)]
    with NodeGroup(setup.configs):
        submit(b, items[:2])
        wait_until(lambda: signed_size(a, b.origin) == 2, 30, "b's log at 2 on a")
        submit(b, items[2:4])
        wait_until(lambda: signed_size(a, b.origin) == 4, 30, "b's log at 4 on a")

        v2 = draft(capsys, a.directory, tmp_path / "v2.roster", "compromise-key",
                   "--member", b.member_id, "--from-size", "2")  # fmt: skip
        publish(capsys, v2, admin, a, b)
        # Entry 1 lies before the compromise: proven with b's checkpoint at 2, not the one at 4.
        code, text = proof_verifies(capsys, a, items[1], tmp_path / "entry1.json")
        assert code == 0, text
        assert "checkpoint size 2" in text
        # Entry 3 lies past it: no checkpoint the roster trusts covers it, so no proof is made.
        hash3 = f"md5:{items[3]['value']}"
        code, text = cli(capsys, "audit", "proof", hash3, "--out", str(tmp_path / "entry3.json"),
                         "--node", str(a.directory))  # fmt: skip
        assert code != 0 and "trusts" in text
        # ... and everything this node shows of it says so.
        assert standing_everywhere(a, items[3]) == {"past-compromised-key"}
        assert standing_everywhere(a, items[1]) == {None}
        assert decision(a, items[3]) == "review" and decision(a, items[1]) == "act"
        assert status(a)["logs"][b.origin]["flagged_entries"] == 2
        assert any(f"2 entries of {b.origin} are flagged" in x for x in status(a)["alerts"])

        code, out = cli(capsys, "keys", "rotate", "--node", str(b.directory), "--json")
        assert code == 0, out
        new_key = json.loads(out)["new_key"]
        v3 = draft(capsys, a.directory, tmp_path / "v3.roster", "rotate-key", "--member",
                   b.member_id, "--new-key", new_key, "--after-size", "2")  # fmt: skip
        publish(capsys, v3, admin, a, b)
        submit(b, items[4:])
        wait_until(lambda: signed_size(a, b.origin) == 5, 30, "b signs with its new key")
        code, text = proof_verifies(capsys, a, items[3], tmp_path / "entry3-rekeyed.json")
        assert code == 0, text
        assert standing_everywhere(a, items[3]) == {None} and decision(a, items[3]) == "act"

        # A removed member's entries are flagged too, not shown as up to date.
        v4 = draft(capsys, a.directory, tmp_path / "v4.roster", "remove-member",
                   "--member", b.member_id)  # fmt: skip
        publish(capsys, v4, admin, a)
        assert standing_everywhere(a, items[0]) == {"member-removed"}
        assert decision(a, items[0]) == "review"
        assert status(a)["logs"][b.origin]["standing"] == "member-removed"
    for node in (a, b):
        code, text = cli(capsys, "audit", "verify", str(node.directory), "--json")
        assert code == 0, text
        report = json.loads(text)
        assert report["logs"][b.origin]["untrusted_checkpoints"] == [4]
        assert any("compromised" in n for n in report["notices"])


def lookup(node: NodeConfig, item: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = api(node).call("POST", "/v1/lookup", {"hashes": [item]})
    return dict(result["results"][0])


def decision(node: NodeConfig, item: dict[str, str]) -> str:
    return str(lookup(node, item)["decision"]["action"])


def standing_everywhere(node: NodeConfig, item: dict[str, str]) -> set[str | None]:
    """The item's flag as lookup, match, export and the event stream each give it."""
    seen: set[str | None] = set()
    seen.update(s["standing"] for s in lookup(node, item)["submissions"])
    matched = api(node).call("POST", "/v1/match", {"hashes": [item]})["results"][0]
    seen.update(s["standing"] for m in matched["matches"] for s in m["submissions"])
    lines = api(node).call("GET", "/v1/export").decode().splitlines()
    for view in (json.loads(line) for line in lines):
        if view.get("value") == item["value"]:
            seen.update(s["standing"] for s in view["submissions"])
    events = api(node).call("GET", "/v1/events?after=0&limit=1000")["events"]
    seen.update(e["standing"] for e in events if e.get("value") == item["value"])
    return seen


def get(node: NodeConfig, path: str) -> tuple[int, bytes]:
    url = f"http://127.0.0.1:{node.peer_port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        with e:
            return e.code, e.read()


def get_json(node: NodeConfig, path: str) -> Any:
    code, body = get(node, path)
    assert code == 200, body
    return json.loads(body)


def test_an_auditor_without_a_token_fetches_rosters_old_checkpoints_and_proofs(
    tmp_path: Path,
) -> None:
    setup = consortium(tmp_path, 2, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b = setup.configs
    with NodeGroup(setup.configs):
        submit(b, [md5_item("first"), md5_item("second")])
        wait_until(lambda: signed_size(a, b.origin) == 2, 30, "b's log at 2 on a")
        submit(b, [md5_item("third")])
        wait_until(lambda: signed_size(a, b.origin) == 3, 30, "b's log at 3 on a")

        chain = [base64.b64decode(r) for r in get_json(a, "/v1/audit/rosters")["rosters"]]
        roster = verify_chain(chain[0], chain[1:], NOW())
        assert chain[0] == a.roster_path.read_bytes()
        sizes = get_json(a, f"/v1/audit/checkpoints?log={b.origin}")["sizes"]
        assert 2 in sizes and sizes[-1] == 3
        code, old = get(a, f"/v1/audit/checkpoint?log={b.origin}&size=2")
        assert code == 200
        old_cp = open_trusted(old, roster, b.origin).checkpoint
        code, new = get(a, f"/v1/audit/checkpoint?log={b.origin}")
        new_cp = open_trusted(new, roster, b.origin).checkpoint
        assert (old_cp.size, new_cp.size) == (2, 3)

        path = get_json(a, f"/v1/audit/consistency?log={b.origin}&old=2&new=3")["proof"]
        merkle.verify_consistency(
            2, 3, old_cp.root, new_cp.root, [base64.b64decode(h) for h in path]
        )
        answer = get_json(a, f"/v1/audit/proof?log={b.origin}&index=1&size=2")
        proof = parse_tlog_proof(answer["tlog_proof"].encode())
        assert proof.extra is None and "entry" not in answer  # the hash list stays private
        assert open_trusted(proof.checkpoint_raw, roster, b.origin).checkpoint.size == 2

        # Nothing else of the peer API opens without a signed request, nor writes through here.
        assert get(a, f"/v1/entries?log={b.origin}&start=0")[0] == 401
        assert get(a, "/v1/audit/nothing")[0] == 404
        assert get(a, f"/v1/audit/checkpoint?log={b.origin}&size=99")[0] == 400
