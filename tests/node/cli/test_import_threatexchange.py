"""`hashmesh import` of the files python-threatexchange writes: rows of its types hashmesh has
no equivalent for are skipped and reported by type, and the file is not refused for them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from node.cli.main import main
from tests.cluster.support import consortium

PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"


def test_a_dry_run_import_reports_threatexchange_types_we_lack_by_type(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [config] = consortium(tmp_path, 1).configs  # not running: labels from the pinned roster
    signals = tmp_path / "signals.txt"
    signals.write_text(
        f"pdq {PDQ}\nraw_text The quick brown fox\nraw_text bball now?\nurl_md5 {'a' * 32}\n"
    )
    args = ["import", str(signals), "--format", "te-file", "--dry-run", "--node"]
    assert main([*args, str(config.directory), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["valid"], report["problems"]) == (1, [])
    assert report["unsupported_types"] == {"raw_text": 2, "url_md5": 1}
    assert [s["line"] for s in report["skipped"]] == [2, 3, 4]

    assert main([*args, str(config.directory)]) == 0
    err = capsys.readouterr().err
    assert "rows of python-threatexchange types hashmesh lacks: 2 raw_text, 1 url_md5" in err
