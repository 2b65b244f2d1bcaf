"""The generated references stay true to the code: docs/cli.md is what scripts/cli_doc.py
makes from the CLI's parser, and docs/operator-api.md's route table lists exactly the routes
a running node's operator API serves (node.http.operator_api.node_operator_app)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from node.app.metrics import NodeMetrics
from node.cli.main import build_parser
from node.core.service import NodeService
from node.credentials.key_files import load_key
from node.events.outbox import Outbox
from node.http.operator_api import node_operator_app
from node.store.sqlite.store import SqliteStore
from tests.docs.test_docs import command_paths
from tests.node.services import consortium, now_ms

ROOT = Path(__file__).resolve().parents[2]
#: A route in a table's first cell: `GET /v1/proof?log=&index=` names GET /v1/proof.
ROUTE = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`?\s]*)[^`]*`")
DASHBOARD = "/ui/"


def load_script(name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, ROOT / f"scripts/{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def documented_routes(text: str) -> set[tuple[str, str]]:
    """(method, path) of every route named in the first cell of a table row."""
    routes = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            first = line.split(" | ")[0]
            routes.update(ROUTE.findall(first))
    return routes


async def served_routes(tmp_path: Path) -> set[tuple[str, str]]:
    """(method, path) of every route of the operator API as the runner builds it; HEAD (which
    aiohttp adds to each GET) left out, the dashboard's pages as its one entry `GET /ui/`."""
    config = consortium(tmp_path, 2).configs[0]
    _, key = load_key(config.checkpoint_key_path)
    service = NodeService(config, SqliteStore(config.directory / "data.db"), key, now_ms)
    outbox = Outbox(tmp_path / "outbox.db", deliver=False, build=None)  # never opened
    app = node_operator_app(service, "token", dict, NodeMetrics(service), outbox)
    routes = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        if route.method == "HEAD":
            continue
        # The dashboard's pages and forms are its own (docs/operator.md#the-dashboard).
        routes.add(("GET", DASHBOARD) if path.startswith(DASHBOARD) else (route.method, path))
    return routes


def test_the_cli_reference_is_the_one_the_parser_generates() -> None:
    generated: str = load_script("cli_doc").cli_reference()  # type: ignore[attr-defined]
    shown = (ROOT / "docs/cli.md").read_text()
    assert shown == generated, "run scripts/cli_doc.py > docs/cli.md"
    for path in command_paths(build_parser()):
        assert f"`hashmesh {' '.join(path)}`" in shown


async def test_the_operator_api_reference_lists_exactly_the_routes_the_node_serves(
    tmp_path: Path,
) -> None:
    served = await served_routes(tmp_path)
    documented = documented_routes((ROOT / "docs/operator-api.md").read_text())
    assert ("POST", "/v1/submit") in served and ("GET", "/metrics") in served
    assert served - documented == set(), "routes the node serves that docs/operator-api.md lacks"
    assert documented - served == set(), "routes docs/operator-api.md lists that no one serves"


def test_the_route_table_check_reads_every_route_of_a_row_and_ignores_queries() -> None:
    table = (
        "| route | body | answer |\n|---|---|---|\n"
        "| `GET /v1/proof?log=&index=` | | x |\n"
        "| `GET /v1/events`, `GET /v1/events/stream` | | `GET /not/a/route` |\n"
    )
    assert documented_routes(table) == {
        ("GET", "/v1/proof"),
        ("GET", "/v1/events"),
        ("GET", "/v1/events/stream"),
    }
