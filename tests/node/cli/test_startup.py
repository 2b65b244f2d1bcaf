"""The CLI imports what a command runs when it runs: parsing arguments and `--help` need
neither the node's runner nor aiohttp, numpy, Pillow, cryptography or asyncio.

Measured as which modules a fresh interpreter holds after importing the CLI, not as a timed
assertion (start-up times are in `scripts/bench_cli.py`).
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "aiohttp",
    "asyncio",
    "asyncpg",
    "cryptography",
    "jinja2",
    "numpy",
    "PIL",
    "prometheus_client",
    "node.app.runner",
    "node.core.service",
    "node.http.dashboard",
)

PROBE = """
import json, sys
import node.cli.main as cli
cli.build_parser()
print(json.dumps(sorted(sys.modules)))
"""


def test_building_the_cli_parser_imports_no_runner_network_or_hashing_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(done.stdout))
    assert [m for m in HEAVY if m in loaded] == []


def test_help_lists_every_command_group_without_importing_them() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "node.cli.main", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    for command in ("init", "node", "submit", "lookup", "match", "status", "admin", "audit"):
        assert f"    {command}" in done.stdout
