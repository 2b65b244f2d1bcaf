"""Bulk import and export through the real CLI against real node processes on 127.0.0.1: a bad
file is refused whole with line numbers, a good one is submitted in batches (once, however
often it is run) and replicates, and the other member exports it as JSON lines (with
provenance), CSV and STIX 2.1."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

from stix2validator import ValidationOptions, validate_instance

from node.app.procs import NodeGroup
from node.config import NodeConfig
from tests.cluster.support import consortium, found, status, wait_until

UNICODE_URL = "https://例え.jp/記事?id=1,2"


def hashmesh(config: NodeConfig, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli.main", *args, "--node", str(config.directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def md5(seed: str) -> str:
    return hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["signal_type", "value", "labels", "incident", "reference"])
        writer.writerows(rows)
    return path


def test_import_a_hash_list_then_export_it_from_another_member(tmp_path: Path) -> None:
    setup = consortium(tmp_path, 2, sync_interval_s=0.5, sync_jitter_s=0.1)
    origin, other = setup.configs
    rows = [[md5(f"h{i}"), "terrorist-attack", "inc-42"] for i in range(25)]
    good = [["md5", *row, f"case {i}"] for i, row in enumerate(rows)]
    good.append(["url", UNICODE_URL, "glorification;recruitment", "", ""])
    bad = write_csv(tmp_path / "bad.csv", [*good[:3], ["md5", "xyz", "", "", ""], good[4]])
    good_file = write_csv(tmp_path / "good.csv", good)

    with NodeGroup([origin, other]):
        # A file with one bad row: refused, nothing sent, the row named by its line.
        result = hashmesh(origin, "import", str(bad), "--format", "csv")
        assert result.returncode == 2, result.stderr
        assert f"{bad}:5:" in result.stderr
        assert status(origin)["logs"][origin.origin]["size"] == 0

        dry = hashmesh(origin, "import", str(good_file), "--format", "csv", "--dry-run", "--json")
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout)["valid"] == 26
        assert status(origin)["logs"][origin.origin]["size"] == 0

        args = ("import", str(good_file), "--format", "csv", "--json")
        done = hashmesh(origin, *args, "--batch", "10")
        assert done.returncode == 0, done.stderr
        summary = json.loads(done.stdout)
        assert summary["submitted"] == 26
        assert summary["entries"] == {"log": origin.origin, "first_index": 0, "last_index": 25}
        assert "import: 26/26 hashes (100%)" in done.stderr  # progress after each batch
        assert "import: 10/26" in done.stderr

        again = hashmesh(origin, *args)
        assert again.returncode == 0, again.stderr
        assert (
            json.loads(again.stdout)["submitted"],
            json.loads(again.stdout)["already_held"],
        ) == (
            0,
            26,
        )
        assert status(origin)["logs"][origin.origin]["size"] == 26

        url_item = {"signal_type": "url", "value": UNICODE_URL}
        wait_until(lambda: found(other, url_item), 30, "imported hashes replicated")

        jsonl_path = tmp_path / "out.jsonl"
        result = hashmesh(other, "export", "--format", "jsonl", "--out", str(jsonl_path))
        assert result.returncode == 0, result.stderr
        records = [json.loads(line) for line in jsonl_path.read_text().splitlines()]
        assert len(records) == 26
        by_value = {r["value"]: r for r in records}
        url = by_value[UNICODE_URL]
        assert url["labels"] == ["glorification", "recruitment"]
        [sub] = url["submissions"]
        assert (sub["member"], sub["log"], sub["index"]) == ("member1", origin.origin, 25)
        assert sub["retracted"] is False and sub["disputes"] == []
        assert by_value[rows[3][0]]["incident"] == "inc-42"

        csv_result = hashmesh(other, "export", "--format", "csv")
        assert csv_result.returncode == 0, csv_result.stderr
        exported = list(csv.DictReader(io.StringIO(csv_result.stdout)))
        assert {r["value"] for r in exported} == {r[1] for r in good}

        stix_path = tmp_path / "out.stix.json"
        result = hashmesh(other, "export", "--format", "stix", "--out", str(stix_path), "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["count"] == 26
        bundle = json.loads(stix_path.read_text())
        check = validate_instance(bundle, ValidationOptions(version="2.1"))
        assert check.is_valid, [str(e) for e in check.errors]
        patterns = {o["pattern"] for o in bundle["objects"] if o["type"] == "indicator"}
        assert f"[url:value = '{UNICODE_URL}']" in patterns
        assert f"[file:hashes.MD5 = '{rows[0][0]}']" in patterns
        names = {o["name"] for o in bundle["objects"] if o["type"] == "identity"}
        assert {"member1", "demo"} <= names
