"""The `hashmesh` command line end to end: init, the admins' roster workflow, operator commands
against real node processes, audits and provenance bundles, and exit codes that mean something."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from node.app.procs import NodeGroup
from node.cli.main import build_parser, main
from node.config import load_config
from protocol.bundle import verify_bundle
from protocol.roster import SignedRoster, verify_genesis
from tests.cluster.support import NOW, consortium, status, wait_until

MD5 = "md5:" + "ab" * 16


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out + err


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = [["--help"]]
    for action in parser._subparsers._group_actions:  # type: ignore[union-attr]
        for name, sub in action.choices.items():  # type: ignore[union-attr]
            commands.append([name, "--help"])
            for inner in sub._subparsers._group_actions if sub._subparsers else []:
                commands += [[name, child, "--help"] for child in inner.choices]  # type: ignore[union-attr]
    assert len(commands) > 25
    for argv in commands:
        with pytest.raises(SystemExit) as done:
            main(argv)
        assert done.value.code == 0, argv
        assert "usage: hashmesh" in capsys.readouterr().out


def test_init_writes_private_keys_config_and_a_join_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "init", str(tmp_path / "n"), "--member-id", "examplevideo")
    assert code == 0 and "join-request.json" in out
    for name in ("checkpoint.key", "node.key", "operator.token"):
        assert stat.S_IMODE((tmp_path / "n" / "keys" / name).stat().st_mode) == 0o600
    request = json.loads((tmp_path / "n" / "join-request.json").read_text())
    assert request["member_id"] == "examplevideo" and request["origin"] == "examplevideo.hashmesh"
    assert load_config(tmp_path / "n").member_id == "examplevideo"
    code, out = run(capsys, "init", str(tmp_path / "n"), "--member-id", "examplevideo")
    assert code == 3 and "already holds a node" in out


def test_usage_config_and_unreachable_node_errors_have_distinct_exit_codes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "lookup", "md5:xyz", "--node", str(tmp_path))[0] == 2
    assert run(capsys, "lookup", MD5, "--node", str(tmp_path / "none"))[0] == 3
    run(capsys, "init", str(tmp_path / "n"), "--member-id", "x", "--operator-port", "9")
    code, out = run(capsys, "lookup", MD5, "--node", str(tmp_path / "n"))
    assert code == 4 and "cannot reach the node" in out


def _admin_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str], n: int) -> list[Path]:
    paths = []
    for i in range(n):
        path = tmp_path / f"admin{i}.key"
        assert run(capsys, "admin", "keygen", f"admin{i}", "--out", str(path))[0] == 0
        paths.append(path)
    return paths


def test_admins_create_a_roster_and_onboard_a_member_by_threshold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = _admin_keys(tmp_path, capsys, 3)
    pubs = [str(k.with_suffix(".pub")) for k in keys]
    for name in ("alpha", "beta", "gamma"):
        run(capsys, "init", str(tmp_path / name), "--member-id", name)
    draft = tmp_path / "v1.roster"
    code, _ = run(
        capsys, "admin", "create", "--name", "gifct-test", "--threshold", "2",
        *[x for p in pubs for x in ("--admin", p)],
        "--member", str(tmp_path / "alpha" / "join-request.json"),
        "--member", str(tmp_path / "beta" / "join-request.json"),
        "--out", str(draft),
    )  # fmt: skip
    assert code == 0
    assert run(capsys, "admin", "sign", str(draft), "--key", str(keys[0]))[0] == 0
    with pytest.raises(Exception, match="threshold"):
        verify_genesis(SignedRoster.decode(draft.read_bytes()), NOW())
    code, out = run(capsys, "admin", "sign", str(draft), "--key", str(keys[1]))
    assert code == 0 and "2 of 2" in out
    roster = verify_genesis(SignedRoster.decode(draft.read_bytes()), NOW())
    assert [m.member_id for m in roster.members] == ["alpha", "beta"]
    code, out = run(capsys, "admin", "show", str(draft), "--json")
    assert json.loads(out)["threshold"] == 2

    v2 = tmp_path / "v2.roster"
    code, _ = run(
        capsys, "admin", "add-member", str(draft),
        "--join", str(tmp_path / "gamma" / "join-request.json"), "--out", str(v2),
    )  # fmt: skip
    assert code == 0
    run(capsys, "admin", "sign", str(v2), "--key", str(keys[2]))
    run(capsys, "admin", "sign", str(v2), "--key", str(keys[0]))
    assert SignedRoster.decode(v2.read_bytes()).roster.version == 2

    v3 = tmp_path / "v3.roster"
    code, _ = run(capsys, "admin", "set", str(v2), "--witness-quorum", "2", "--pdq-threshold",
                  "24", "--resign-days", "30", "--out", str(v3))  # fmt: skip
    assert code == 0
    code, out = run(capsys, "admin", "set", str(v2), "--witness-quorum", "9", "--out", str(v3))
    assert code == 2 and "witness quorum" in out  # more witnesses than members: refused
    v4 = tmp_path / "v4.roster"
    code, _ = run(capsys, "admin", "update-member", str(v3), "--member", "beta",
                  "--endpoint", "https://beta.example:7400", "--out", str(v4))  # fmt: skip
    assert code == 0
    roster = SignedRoster.decode(v4.read_bytes()).roster
    assert (roster.version, roster.witness_quorum, roster.pdq_threshold) == (4, 2, 24)
    assert roster.member("beta").endpoints == ("https://beta.example:7400",)
    assert roster.resign_period_ms == 30 * 86_400_000  # kept from v3, not reset

    # After an equivocation the member writes again under a new log origin.
    run(capsys, "init", str(tmp_path / "beta2"), "--member-id", "beta", "--origin", "beta.v2")
    v5 = tmp_path / "v5.roster"
    join = str(tmp_path / "beta2" / "join-request.json")
    code, _ = run(capsys, "admin", "replace-member", str(v4), "--member", "beta", "--join", join,
                  "--out", str(v5))  # fmt: skip
    assert code == 0
    replaced = SignedRoster.decode(v5.read_bytes()).roster
    assert replaced.version == 5 and replaced.member("beta").origin == "beta.v2"
    code, out = run(capsys, "admin", "replace-member", str(v5), "--member", "beta", "--join", join,
                    "--out", str(tmp_path / "v6.roster"))  # fmt: skip
    assert code == 2 and "new log origin" in out


def test_operators_submit_look_up_retract_and_auditors_verify(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = consortium(tmp_path, 2, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b = setup.configs
    with NodeGroup(setup.configs):
        code, out = run(capsys, "submit", MD5, "--label", "terrorist-attack",
                        "--incident", "test-1", "--node", str(a.directory), "--json")  # fmt: skip
        assert code == 0
        index = json.loads(out)["entries"][0]["index"]
        wait_until(lambda: run(capsys, "lookup", MD5, "--node", str(b.directory))[0] == 0, 30, "b")
        code, out = run(capsys, "lookup", MD5, "--node", str(b.directory), "--json")
        result = json.loads(out)["results"][0]
        assert result["active"] and result["submissions"][0]["member"] == a.member_id
        assert result["decision"]["action"] == "act"
        assert run(capsys, "lookup", "md5:" + "cd" * 16, "--node", str(b.directory))[0] == 1
        code, out = run(capsys, "dispute", a.origin, str(index), "--reason-code", "wrong-label",
                        "--text", "not an attack", "--node", str(b.directory))  # fmt: skip
        assert code == 0
        code, out = run(
            capsys, "retract", str(index), "--reason", "mistake", "--node", str(a.directory)
        )
        assert code == 0 and out == f"retracted entry {index}: retraction is #{index + 1}\n"
        # Asked again, the entry is retracted already: one line, success, nothing appended
        # (the audit report below counts one retraction); a retraction is not retracted.
        code, out = run(capsys, "retract", str(index), "--node", str(a.directory))
        assert code == 0 and out == f"entry {index} was already retracted by #{index + 1}\n"
        code, out = run(capsys, "retract", str(index + 1), "--node", str(a.directory))
        assert code == 4 and out.count("\n") == 1 and "is a retraction" in out

        def withdrawn_on_b() -> bool:
            _, text = run(capsys, "lookup", MD5, "--node", str(b.directory), "--json")
            return not json.loads(text)["results"][0]["active"]

        wait_until(withdrawn_on_b, 30, "retraction reached b")
        _, text = run(capsys, "lookup", MD5, "--node", str(a.directory), "--json")
        after = json.loads(text)["results"][0]
        assert after["disputes"][0]["reason_code"] == "wrong-label"
        assert after["decision"]["action"] == "ignore"  # retracted by its origin everywhere

        assert main(["sync", "--node", str(b.directory), "--json"]) == 0
        out, err = capsys.readouterr()
        assert json.loads(out)["caught_up"] and "entries held (100%)" in err

        bundle = tmp_path / "proof.json"
        code, _ = run(
            capsys, "audit", "proof", MD5, "--out", str(bundle), "--node", str(b.directory)
        )
        assert code == 0
        wait_until(lambda: status(b)["logs"][a.origin]["size"] == 2, 30, "b holds all of a")
    provenance = verify_bundle(bundle.read_bytes(), a.roster_path.read_bytes())
    assert provenance.member_id == a.member_id and provenance.index == index
    code, out = run(capsys, "audit", "verify-proof", str(bundle), "--genesis", str(a.roster_path))
    assert code == 0 and f"added by {a.member_id}" in out
    tampered = tmp_path / "tampered.json"
    tampered.write_text(bundle.read_text().replace("index 0", "index 1"))
    assert run(capsys, "audit", "verify-proof", str(tampered))[0] == 5

    page = tmp_path / "report.html"
    code, out = run(capsys, "audit", "report", str(a.directory), str(b.directory),
                    "--html", str(page), "--json")  # fmt: skip
    summary = json.loads(out)
    assert summary["entries_by_member"][a.member_id] == {"add": 1, "retract": 1, "dispute": 0}
    assert summary["entries_by_member"][b.member_id]["dispute"] == 1
    assert summary["adds_by_incident"] == {"test-1": 1}
    assert summary["arrival_ms"][b.member_id]["count"] == 1  # a's takedown arrived at b
    assert summary["disputes"][0]["reason_code"] == "wrong-label"
    assert "<svg" in page.read_text() and "not an attack" in page.read_text()

    code, out = run(capsys, "audit", "verify", str(b.directory), "--json")
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["logs"][a.origin]["size"] == 2
    db = sqlite3.connect(b.data_dir / "hashmesh.db")
    with db:
        db.execute("UPDATE entries SET raw = x'00' WHERE origin = ? AND idx = 0", (a.origin,))
    db.close()
    code, out = run(capsys, "audit", "verify", str(b.directory))
    assert code == 5 and "root does not match" in out


def test_hashing_a_folder_reports_progress_and_every_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "uploads"
    (folder / "sub").mkdir(parents=True)
    for name in ("a.bin", "b.bin", "sub/c.bin"):
        (folder / name).write_bytes(name.encode() * 100)
    code = main(["hash", str(folder), "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    files = {h["file"] for h in json.loads(out)}
    assert files == {str(folder / n) for n in ("a.bin", "b.bin", "sub/c.bin")}
    assert "3/3 files hashed (100%)" in err
