"""`submit`, `lookup` and `match` with many files and folders in one call, against a real node:
every file hashed locally, sent a hundred files a request; and exit codes that tell a hit to act
on from hits that are only retracted or disputed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from node.app.procs import NodeGroup
from node.cli.main import main
from node.cli.operator_client import OperatorClient
from tests.cluster.support import consortium

MD5 = "md5:" + "ab" * 16


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _folder(root: Path, files: int) -> Path:
    """`files` small distinct files, some in a nested folder."""
    folder = root / "takedowns"
    (folder / "nested").mkdir(parents=True)
    for i in range(files):
        sub = folder / "nested" if i % 3 == 0 else folder
        (sub / f"removed-{i:03}.bin").write_bytes(f"removed file {i}\n".encode() * 50)
    return folder


def test_a_folder_of_110_files_is_submitted_and_matched_in_two_requests_of_100_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (node,) = consortium(tmp_path, 1).configs
    folder = _folder(tmp_path, 110)
    sent: list[tuple[str, int]] = []
    call = OperatorClient.call

    def counted(self: OperatorClient, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        if body is not None:
            sent.append((path, len(body.get("items") or body.get("hashes"))))
        return call(self, method, path, body, **kw)

    monkeypatch.setattr(OperatorClient, "call", counted)
    with NodeGroup([node]):
        code, out, err = run(capsys, "submit", "--file", str(folder), "--label",
                             "terrorist-attack", "--node", str(node.directory),
                             "--json")  # fmt: skip
        assert code == 0, err
        answer = json.loads(out)
        assert len(answer["files"]) == 110 and len(answer["entries"]) == 220  # md5 and sha256
        assert {f["file"] for f in answer["files"]} == {str(p) for p in folder.rglob("*.bin")}
        assert sent == [("/v1/submit", 200), ("/v1/submit", 20)]
        assert "submit: 110/110 files submitted (100%)" in err

        sent.clear()
        code, out, err = run(capsys, "match", "--file", str(folder / "nested"),
                             str(folder / "removed-001.bin"), "--node", str(node.directory),
                             "--json")  # fmt: skip
        assert code == 0, err
        results = json.loads(out)["results"]
        assert len(results) == 2 * 38 and all(r["found"] for r in results)
        assert results[-1]["file"] == str(folder / "removed-001.bin")
        assert sent == [("/v1/match", 76)]

        stray = tmp_path / "stray.bin"
        stray.write_bytes(b"never removed")
        code, out, _ = run(capsys, "lookup", "--file", str(stray), "--node", str(node.directory))
        assert code == 1 and f"{stray}  md5:" in out and "not found" in out


def test_a_file_that_cannot_be_hashed_stops_submit_before_anything_is_sent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (node,) = consortium(tmp_path, 1).configs
    folder = _folder(tmp_path, 3)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    code, _, err = run(capsys, "submit", "--file", str(folder), "--node", str(node.directory))
    assert code == 2 and "broken.jpg" in err and "nothing was sent" in err


def test_lookup_and_match_exit_6_when_every_hit_is_retracted_and_0_when_one_is_to_act_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (node,) = consortium(tmp_path, 1).configs
    other = "md5:" + "cd" * 16
    at = str(node.directory)
    with NodeGroup([node]):
        code, out, _ = run(capsys, "submit", MD5, other, "--label", "terrorist-attack",
                           "--node", at, "--json")  # fmt: skip
        assert code == 0
        index = json.loads(out)["entries"][0]["index"]
        for command in ("lookup", "match"):
            assert run(capsys, command, MD5, "--node", at)[0] == 0
        assert run(capsys, "retract", str(index), "--reason", "wrong file", "--node", at)[0] == 0
        for command in ("lookup", "match"):
            code, out, _ = run(capsys, command, MD5, "--node", at)
            assert code == 6, (command, out)
            assert "IGNORE" in out
            assert run(capsys, command, MD5, other, "--node", at)[0] == 0  # one to act on
            assert run(capsys, command, "md5:" + "ef" * 16, "--node", at)[0] == 1


def test_lookup_help_says_it_is_exact_and_lists_its_exit_codes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["lookup", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "and match" not in text and "look the hashes up exactly" in text
    assert "6 hits, but none to act on" in text
