"""What every CLI command shares: exit codes, output, finding the node, parsing hash arguments."""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from node.errors import ConfigError
from protocol.errors import ValidationError
from protocol.signal_names import SIGNAL_TYPES

if TYPE_CHECKING:
    from node.cli.operator_client import OperatorClient
    from node.config import NodeConfig

    Subcommands: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]
else:
    Subcommands = argparse._SubParsersAction

EXIT_OK = 0
EXIT_NOT_FOUND = 1  # lookup or match found nothing (like grep)
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_NODE = 4  # the node refused the request or could not be reached; node run: store failed
EXIT_VERIFY = 5  # an audit or proof verification failed
#: lookup or match found hashes, but the match policy says to act on none of them: every hit
#: is retracted by its origin, disputed, flagged or from an untrusted member (review or ignore).
EXIT_NOT_ACTIONABLE = 6

EXIT_CODES_HELP = """exit codes:
  0  success
  1  nothing found (lookup, match)
  2  usage error (also a file named on the command line that cannot be read or written)
  3  configuration or key file problem (also node run: a port in use)
  4  the node refused the request or could not be reached (node run: its store failed)
  5  verification failed (audit)
  6  found, but nothing to act on: every hit is to review or ignore (lookup, match)"""

HIT_EXIT_CODES_HELP = """exit codes:
  0  a hit the match policy says to act on
  1  nothing found
  6  hits, but none to act on: each is retracted, disputed, flagged or from an untrusted
     member (its decision is review or ignore; --json shows each one's reason)"""


class UsageError(ConfigError):
    """Arguments that parse but make no sense together."""


class Command:
    """A command body, `name` in `module`, imported only when the command runs. The modules
    that declare a group's arguments import argparse and constants only, so `hashmesh --help`
    and each command load what that command needs and no more."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name

    def body(self) -> Callable[[argparse.Namespace], int]:
        body: Callable[[argparse.Namespace], int] = getattr(
            importlib.import_module(self.module), self.name
        )
        return body

    def __call__(self, args: argparse.Namespace) -> int:
        return self.body()(args)


def add_node_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--node",
        default=os.environ.get("HASHMESH_NODE", "."),
        help="the node's directory (default: $HASHMESH_NODE or .)",
    )


def add_json_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def node_config(args: argparse.Namespace) -> NodeConfig:
    from node.config import load_config

    return load_config(Path(args.node))


def client(args: argparse.Namespace) -> OperatorClient:
    from node.cli.operator_client import OperatorClient

    return OperatorClient.for_node(node_config(args))


def when(ms: int) -> str:
    """A wall-clock time in milliseconds as the CLI prints it (UTC)."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")


def parse_hash_arg(text: str) -> dict[str, str]:
    """`TYPE:VALUE` (e.g. md5:9e10...): checked locally before anything is sent."""
    signal_type, sep, value = text.partition(":")
    if not sep or signal_type not in SIGNAL_TYPES:
        raise UsageError(
            f"{text!r}: expected TYPE:VALUE with TYPE one of {', '.join(SIGNAL_TYPES)}"
        )
    from protocol.signals import parse_value

    try:
        parse_value(signal_type, value)
    except ValidationError as e:
        raise UsageError(f"{text!r}: {e}") from e
    return {"signal_type": signal_type, "value": value}


def progress(done: int, total: int, what: str, command: str = "") -> None:
    """A one-line progress report on stderr (rewritten in place on a terminal), optionally
    headed by the command's name (`import: 10/26 hashes (38%)`)."""
    percent = 100 * done // total if total else 100
    line = f"{command}{': ' if command else ''}{done}/{total} {what} ({percent}%)"
    if sys.stderr.isatty():
        print(f"\r{line}", end="\n" if done >= total else "", file=sys.stderr, flush=True)
    elif done == total or done % max(1, total // 20) == 0:
        print(line, file=sys.stderr, flush=True)
