"""`--json` on every command that prints something: its standard output is one JSON document
(notes and warnings go to stderr), for init, the admins' roster commands and audit proof."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from node.app.procs import NodeGroup
from node.cli.main import build_parser, main
from tests.cluster.support import consortium, status, wait_until

#: Commands that run a server in the foreground: they log (`--log-format json`) and print none.
SERVERS = {"node run", "node serve-matches"}


def run_json(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 0) -> Any:
    assert main([*argv, "--json"]) == code, capsys.readouterr()
    return json.loads(capsys.readouterr().out)


def _leaves(parser: argparse.ArgumentParser, path: list[str]) -> list[tuple[str, Any]]:
    if not parser._subparsers:
        return [(" ".join(path), parser)]
    out = []
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():  # type: ignore[union-attr]
            out += _leaves(sub, [*path, name])
    return out


def test_every_command_but_the_servers_takes_json() -> None:
    lacking = {
        name
        for name, parser in _leaves(build_parser(), [])
        if not any("--json" in a.option_strings for a in parser._actions)
    }
    assert lacking == SERVERS


def test_init_and_the_admins_roster_commands_print_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made = run_json(capsys, "init", str(tmp_path / "alpha"), "--member-id", "alpha")
    assert made["member_id"] == "alpha" and made["origin"] == "alpha.hashmesh"
    assert Path(made["join_request"]).is_file()
    key = run_json(capsys, "admin", "keygen", "root", "--out", str(tmp_path / "root.key"))
    assert key["name"] == "root" and Path(key["public_key"]).read_text().split() == [
        "root",
        key["public"],
    ]
    draft = run_json(capsys, "admin", "create", "--name", "c", "--threshold", "1",
                     "--admin", key["public_key"], "--member", made["join_request"],
                     "--out", str(tmp_path / "v1.draft"))  # fmt: skip
    assert draft == {"consortium": "c", "draft": str(tmp_path / "v1.draft"), "threshold": 1,
                     "version": 1}  # fmt: skip
    signed = run_json(capsys, "admin", "sign", draft["draft"], "--key", key["private_key"])
    assert signed["signatures_by_own_admins"] == 1 and signed["signer_is_own_admin"]
    renewed = run_json(capsys, "admin", "renew", draft["draft"], "--out", str(tmp_path / "v2"))
    assert renewed["version"] == 2


def test_publish_current_and_audit_proof_print_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (node,) = consortium(tmp_path, 1).configs
    at = str(node.directory)
    md5 = "md5:" + "ab" * 16
    with NodeGroup([node]):
        current = run_json(capsys, "admin", "current", "--out", str(tmp_path / "r"), "--node", at)
        assert current == {"out": str(tmp_path / "r"), "version": 1}
        published = run_json(capsys, "admin", "publish", str(tmp_path / "r"), "--node", at)
        assert published["accepted"] is False and published["version"] == 1
        assert main(["submit", md5, "--label", "terrorist-attack", "--node", at]) == 0
        capsys.readouterr()
        signed = lambda: status(node)["logs"][node.origin]["checkpoint_size"] >= 1  # noqa: E731
        wait_until(signed, 30, "the submission signed into a checkpoint")
        proof = run_json(capsys, "audit", "proof", md5, "--out", str(tmp_path / "p"), "--node", at)
        assert proof["found"] and proof["log"] == node.origin and proof["index"] == 0
        assert Path(proof["out"]).is_file()
        missing = run_json(capsys, "audit", "proof", "md5:" + "cd" * 16, "--out",
                           str(tmp_path / "q"), "--node", at, code=1)  # fmt: skip
        assert missing == {"found": False, "hash": "md5:" + "cd" * 16}
