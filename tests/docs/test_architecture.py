"""docs/architecture.md stays a true map of the code: every file it names exists, every
sub-package of node/ is in its table of layers, and the layers it lists are the ones the
import-linter contract in pyproject.toml enforces, in the same order."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = (ROOT / "docs" / "architecture.md").read_text()


def test_every_path_the_architecture_names_exists() -> None:
    named = set(re.findall(r"`((?:node|protocol)/[\w/]*\w(?:\.py)?/?)`", ARCHITECTURE))
    assert named, "the page names no paths"
    assert sorted(p for p in named if not (ROOT / p).exists()) == []


def test_every_package_of_node_is_in_the_layers_table() -> None:
    packages = {p.parent.name for p in (ROOT / "node").glob("*/__init__.py")}
    listed = set(re.findall(r"`node/(\w+)/`", ARCHITECTURE))
    assert packages - listed == set()


def test_the_layers_table_is_the_contract_import_linter_enforces() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    rows = re.findall(r"^\| \d+ \| (.+?) \|", ARCHITECTURE, re.M)
    documented = [
        " | ".join(re.findall(r"`node/(\w+)(?:/|\.py)`", row)) for row in rows if "node/" in row
    ]
    assert documented == [" | ".join(part.strip() for part in layer.split("|")) for layer in layers]
