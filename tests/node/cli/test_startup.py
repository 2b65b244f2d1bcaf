"""The CLI imports what a command runs when it runs: parsing arguments and `--help` load only
the modules that declare arguments and the constants they offer as choices, and the operator
commands (`status`, `lookup`, `submit`) load their own body and the operator API's client, not
the node's runner, aiohttp, numpy, Pillow, cryptography or asyncio.

Measured as which modules a fresh interpreter holds after the command, not as a timed
assertion (start-up times are in `scripts/bench_cli.py`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from node.cli.common import Command
from node.cli.main import build_parser
from node.config import NodeConfig

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

#: What a command that talks to the node has no use for: the node itself and its libraries.
NODE_SIDE = (*HEAVY, "msgpack", "node.app", "node.core", "node.http", "node.store", "uvloop")

#: Every project module `--help` may load: the modules that declare arguments, and constants.
PARSER_MODULES = {
    "node",
    "node.cli",
    "node.cli.admin",
    "node.cli.audit",
    "node.cli.common",
    "node.cli.data",
    "node.cli.demo",
    "node.cli.keys",
    "node.cli.main",
    "node.cli.operator",
    "node.errors",
    "node.formats",
    "node.formats.exchange",
    "protocol",
    "protocol.errors",
    "protocol.reason_codes",
    "protocol.signal_names",
}

PROBE = """
import json, sys
from node.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as e:  # --help
    code = e.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def run_probe(*args: str) -> tuple[int, set[str], str]:
    """Run `hashmesh ARGS` in a fresh interpreter: its exit code, the modules it held at the
    end, and its standard output."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], set(report["modules"]), done.stdout


def ours(modules: set[str]) -> set[str]:
    return {m for m in modules if m.split(".")[0] in ("node", "protocol")}


def loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if any(m == n or m.startswith(n + ".") for m in modules)]


def test_help_loads_only_the_modules_that_declare_arguments() -> None:
    code, modules, out = run_probe("--help")
    assert code == 0
    assert "usage: hashmesh" in out
    assert ours(modules) - PARSER_MODULES == set()
    # Named for a readable failure: the heavier modules choices once came from.
    assert loaded(modules, ("protocol.entries", "node.config", "node.cli.operator_client")) == []
    assert loaded(modules, (*HEAVY, "msgpack", "tomllib", "tomli_w")) == []


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


def commands(parser: argparse.ArgumentParser) -> Iterator[tuple[str, object]]:
    """(command line, its body) of every command the parser knows."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                for line, func in commands(sub):
                    yield f"{name} {line}".strip(), func
    func = parser.get_default("func")
    if func is not None:
        yield "", func


def test_every_command_names_a_body_that_exists() -> None:
    found = list(commands(build_parser()))
    assert len(found) > 30
    for line, func in found:
        body = func.body() if isinstance(func, Command) else func
        assert callable(body), line


class FakeNode(BaseHTTPRequestHandler):
    """The operator API's answers the probed commands need, on loopback."""

    def do_GET(self) -> None:  # the name http.server calls
        self.answer({"member_id": "alpha", "origin": "alpha.hashmesh", "logs": {}})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v1/submit":
            self.answer({"entries": [{"log": "alpha.hashmesh", "index": 0}]})
        else:
            self.answer({"results": [{**h, "found": False} for h in body["hashes"]]})

    def answer(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the test's output is the commands', not the server's


@pytest.fixture
def node_dir(tmp_path: Path) -> Iterator[Path]:
    """A node's directory whose operator API is FakeNode on a loopback port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeNode)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        config = NodeConfig(
            member_id="alpha",
            origin="alpha.hashmesh",
            directory=tmp_path,
            operator_port=server.server_address[1],
        )
        config.save()
        config.token_path.parent.mkdir()
        config.token_path.write_text("token\n")
        yield tmp_path
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("args", "exit_code"),
    [
        (["status"], 0),
        (["lookup", "md5:" + "0" * 32], 1),
        (["submit", "md5:" + "0" * 32], 0),
    ],
)
def test_operator_commands_load_neither_the_node_nor_its_libraries(
    node_dir: Path, args: list[str], exit_code: int
) -> None:
    code, modules, out = run_probe(*args, "--json", "--node", str(node_dir))
    assert code == exit_code
    assert json.loads(out)  # the fake node's answer went through
    assert loaded(modules, NODE_SIDE) == []
