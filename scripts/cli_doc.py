"""Print the `hashmesh` command reference as markdown, from the CLI's own argument parser.

docs/cli.md is this output; tests/docs checks the two agree. After changing a command or an
option in node/cli/, run

    .venv/bin/python scripts/cli_doc.py > docs/cli.md
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

# Run as a script from anywhere: the repository root holds the `node` package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.cli.main import build_parser

HEADER = """# `hashmesh` command reference

Every command and option of the `hashmesh` CLI with its help, generated from the CLI's own
argument parser by `scripts/cli_doc.py` (tests/docs checks this page is its output). For what
the commands are for, see the [operator guide](operator.md), the [admin guide](admin.md) and the
[auditor guide](auditor.md).
"""


def _subcommands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, str, argparse.ArgumentParser]]:
    """(name, help, parser) of each sub-command of `parser`, in the parser's order."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, child in action.choices.items():
                yield name, helps.get(name, ""), child


def _cell(text: str) -> str:
    """One line of a table cell: pipes escaped, and angle brackets, which are not tags here."""
    text = " ".join(text.split()).replace("|", "\\|")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _argument(action: argparse.Action) -> str:
    if action.option_strings:
        names = ", ".join(action.option_strings)
        if action.nargs == 0:
            return f"`{names}`"
        metavar = action.metavar or action.dest.upper()
        return f"`{names} {metavar}`"
    return f"`{action.metavar or action.dest}`"


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%(default)" in text:
        text = text % {"default": action.default}
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        text += f" (one of: {', '.join(str(c) for c in action.choices)})"
    default = action.default
    shown = default not in (None, False, "", argparse.SUPPRESS, []) and "default" not in text
    if shown and action.nargs != 0:
        text += f" (default: {default})"
    return _cell(text)


def _options_table(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        if action.help == argparse.SUPPRESS:
            continue
        rows.append(f"| {_argument(action)} | {_help(action)} |")
    if not rows:
        return []
    return ["| argument | meaning |", "|---|---|", *rows, ""]


def _usage(parser: argparse.ArgumentParser) -> str:
    return " ".join(parser.format_usage().removeprefix("usage:").split())


def _sections(
    parser: argparse.ArgumentParser, path: tuple[str, ...], summary: str
) -> Iterator[str]:
    children = list(_subcommands(parser))
    if path:
        level = "#" * min(len(path) + 1, 4)
        yield f"{level} `hashmesh {' '.join(path)}`\n"
        if summary:
            yield f"{_cell(summary)[0].upper()}{_cell(summary)[1:]}.\n"
        if parser.description and parser.description != summary:
            yield f"{parser.description.strip()}\n"
        if not children:
            yield f"```\n{_usage(parser)}\n```\n"
            table = _options_table(parser)
            if table:
                yield "\n".join(table)
    for name, help_text, child in children:
        yield from _sections(child, (*path, name), help_text)


def cli_reference() -> str:
    """The whole reference page."""
    parser = build_parser()
    parts = [HEADER, f"```\n{_usage(parser)}\n```\n"]
    if parser.epilog:
        parts.append(f"```\n{parser.epilog.strip()}\n```\n")
    parts.extend(_sections(parser, (), ""))
    return "\n".join(parts).rstrip() + "\n"


def main() -> int:
    sys.stdout.write(cli_reference())
    return 0


if __name__ == "__main__":
    sys.exit(main())
