"""Every CLI error is one clear line on stderr and a documented exit code, never a traceback.

The commands run as the operator runs them: `python -m node.cli.main` in a subprocess.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from node.cli.common import EXIT_CONFIG, EXIT_USAGE
from tests.cluster.support import consortium


def hashmesh(*argv: str, cwd: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "node.cli.main", *argv],
        capture_output=True, text=True, cwd=cwd, timeout=60, check=False,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    return done.returncode, done.stdout + done.stderr


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    assert "Traceback" not in text
    assert lines[0].startswith("hashmesh: "), text
    return lines[0]


def initialised(tmp_path: Path) -> Path:
    code, out = hashmesh("init", str(tmp_path / "n"), "--member-id", "m1", cwd=tmp_path)
    assert code == 0, out
    return tmp_path / "n"


def test_export_into_a_missing_directory_is_a_usage_error_before_the_node_is_asked(
    tmp_path: Path,
) -> None:
    node = initialised(tmp_path)  # not running: the directory is checked first
    out_path = tmp_path / "missing" / "hashes.csv"
    argv = ("export", "--node", str(node), "--format", "csv", "--out", str(out_path))
    code, out = hashmesh(*argv, cwd=tmp_path)
    assert code == EXIT_USAGE
    assert "no directory" in one_line(out) and str(tmp_path / "missing") in out


def test_a_missing_proof_bundle_is_one_line_and_a_usage_error(tmp_path: Path) -> None:
    code, out = hashmesh("audit", "verify-proof", str(tmp_path / "none.bundle"), cwd=tmp_path)
    assert code == EXIT_USAGE
    assert one_line(out) == f"hashmesh: {tmp_path / 'none.bundle'}: No such file or directory"


def test_init_where_no_directory_can_be_made_is_one_line_and_a_usage_error(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, out = hashmesh("init", str(blocker / "node"), "--member-id", "m1", cwd=tmp_path)
    assert code == EXIT_USAGE
    assert str(blocker) in one_line(out)


def test_submitting_a_file_that_cannot_be_read_is_a_usage_error(tmp_path: Path) -> None:
    node = initialised(tmp_path)
    argv = ("submit", "--node", str(node), "--label", "x", "--file", str(tmp_path / "gone.jpg"))
    code, out = hashmesh(*argv, cwd=tmp_path)
    assert code == EXIT_USAGE
    assert "cannot read" in one_line(out)


def test_a_node_whose_port_is_taken_exits_with_the_configuration_code(tmp_path: Path) -> None:
    [config] = consortium(tmp_path, 1).configs
    with socket.socket() as taken:
        taken.bind((config.peer_host, config.peer_port))
        taken.listen()
        code, out = hashmesh("node", "run", str(config.directory), cwd=tmp_path)
    assert code == EXIT_CONFIG, out
    assert "Traceback" not in out
    last = out.strip().splitlines()[-1]
    assert last.startswith("hashmesh: the node cannot run") and "in use" in last, out


def test_a_report_on_a_node_without_its_roster_is_a_configuration_error(tmp_path: Path) -> None:
    node = initialised(tmp_path)  # no roster.bin until the admins publish one
    code, out = hashmesh("audit", "report", str(node), cwd=tmp_path)
    assert code == EXIT_CONFIG
    assert "cannot read the roster" in one_line(out)
    assert not (node / "data").exists()  # nothing was made before the check


def test_a_report_into_a_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    [config] = consortium(tmp_path, 1).configs
    html = tmp_path / "missing" / "report.html"
    code, out = hashmesh(
        "audit", "report", str(config.directory), "--html", str(html), cwd=tmp_path
    )
    assert code == EXIT_USAGE
    assert "no directory" in one_line(out)


def test_a_roster_is_not_drafted_with_an_admin_file_that_holds_no_key(tmp_path: Path) -> None:
    node = initialised(tmp_path)
    (tmp_path / "wrong.pub").write_text("admin-1\n")  # a name, no key
    argv = ("admin", "create", "--name", "c", "--admin", str(tmp_path / "wrong.pub"))
    argv += ("--threshold", "1", "--member", str(node / "join-request.json"))
    code, out = hashmesh(*argv, "--out", str(tmp_path / "r.draft"), cwd=tmp_path)
    assert code == EXIT_CONFIG
    assert "is not an admin .pub file" in one_line(out)
    assert not (tmp_path / "r.draft").exists()
