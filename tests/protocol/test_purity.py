"""protocol/ is pure: nothing in it imports a module that does I/O, waits or reads the clock,
and nothing in it awaits. (The one exception is protocol.vectors' command-line `main`, which
writes the sample files and imports pathlib inside that function.)"""

from __future__ import annotations

import ast
from pathlib import Path

PROTOCOL = Path(__file__).resolve().parents[2] / "protocol"
FORBIDDEN = {
    "asyncio", "socket", "ssl", "select", "selectors", "aiohttp", "sqlite3", "asyncpg",
    "subprocess", "threading", "multiprocessing", "time", "datetime", "os", "pathlib",
    "shutil", "tempfile", "io", "urllib", "http", "random", "secrets", "logging",
}  # fmt: skip
ALLOWED_INSIDE = {("vectors.py", "main", "pathlib")}


def _imports(tree: ast.AST) -> list[tuple[str, str | None]]:
    """(top-level module, enclosing function or None) of every import."""
    found: list[tuple[str, str | None]] = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            inner = (
                child.name
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
                else function
            )
            if isinstance(child, ast.Import):
                found.extend((a.name.split(".")[0], function) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
                found.append((child.module.split(".")[0], function))
            visit(child, inner)

    visit(tree, None)
    return found


def test_protocol_imports_nothing_that_does_io_or_reads_the_clock() -> None:
    files = sorted(PROTOCOL.glob("*.py"))
    assert len(files) > 10
    for path in files:
        tree = ast.parse(path.read_text())
        for module, function in _imports(tree):
            if module in FORBIDDEN:
                assert (path.name, function, module) in ALLOWED_INSIDE, (
                    f"{path.name} imports {module}"
                )


def test_protocol_never_awaits() -> None:
    for path in sorted(PROTOCOL.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            assert not isinstance(node, ast.AsyncFunctionDef | ast.Await), f"{path.name} awaits"
