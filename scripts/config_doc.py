"""Print the node's configuration reference as a markdown table, from the code's own model.

docs/configuration.md shows this table between `<!-- config:start -->` and `<!-- config:end -->`;
tests/docs checks the two agree. After changing a setting in node/config.py, run

    .venv/bin/python scripts/config_doc.py

and paste the output between the markers.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

# Run as a script from anywhere: the repository root holds the `node` package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.config import NodeConfig


def toml_default(default: str) -> str:
    """A default from NodeConfig.fields_doc() (Python's repr) as it is written in TOML."""
    if default == "(required)":
        return default
    value = ast.literal_eval(default)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    return default


def config_table() -> str:
    """The reference table of every setting of hashmesh.toml, one row per setting."""
    rows = ["| setting | default | meaning |", "|---|---|---|"]
    for name, default, doc in NodeConfig.fields_doc():
        cell = doc.replace("|", "\\|")
        rows.append(f"| `{name}` | `{toml_default(default)}` | {cell} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    sys.stdout.write(config_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
