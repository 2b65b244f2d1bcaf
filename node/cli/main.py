"""`hashmesh`: the entry point. Builds the argument parser from each command module, runs the
chosen command and turns errors into one clear line and a meaningful exit code.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from node.cli import admin, audit, data, demo, keys, operator
from node.cli.common import (
    EXIT_CODES_HELP,
    EXIT_CONFIG,
    EXIT_NODE,
    EXIT_OK,
    EXIT_USAGE,
    EXIT_VERIFY,
    UsageError,
    add_json_arg,
    print_json,
)
from node.errors import ConfigError, NodeError
from protocol.errors import ProtocolError

# Each command imports what it runs when it runs (the node's runner, aiohttp, the dashboard,
# numpy), so that `hashmesh --help` and the operator commands start quickly.


def cmd_init(args: argparse.Namespace) -> int:
    from node.app.consortium import JOIN_REQUEST, init_member
    from node.config import NodeConfig

    config = NodeConfig(
        member_id=args.member_id,
        origin=args.origin or f"{args.member_id}.hashmesh",
        directory=Path(args.directory).resolve(),
        peer_host=args.peer_host,
        peer_port=args.peer_port,
        operator_port=args.operator_port,
    )
    request = init_member(
        config, display_name=args.display_name or "", contact=args.contact, role=args.role
    )
    if args.json:
        print_json(
            {
                "member_id": request.member_id,
                "origin": request.origin,
                "directory": str(config.directory),
                "join_request": str(config.directory / JOIN_REQUEST),
                "roster_path": str(config.roster_path),
            }
        )
        return EXIT_OK
    print(f"initialised member {request.member_id} (log {request.origin}) in {config.directory}")
    print(f"send {config.directory / JOIN_REQUEST} to the consortium's admins;")
    print(f"once they publish a roster with you in it, save it as {config.roster_path}")
    return EXIT_OK


def cmd_node_run(args: argparse.Namespace) -> int:
    import asyncio
    import logging

    from node.app.allocator import tune_allocator
    from node.app.collector import tune_collector
    from node.app.logging_setup import configure_logging
    from node.app.runner import run_node
    from node.config import load_config

    configure_logging(
        json_lines=args.log_format == "json",
        level=logging.DEBUG if args.verbose else logging.INFO,
    )
    # One line per sync job is noise; apscheduler's warnings and errors still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    config = load_config(Path(args.directory))
    tune_allocator(config.malloc_mmap_threshold_kib << 10)
    tune_collector()
    try:
        asyncio.run(run_node(config))
    except OSError as e:  # a port in use, a data directory we may not write
        raise ConfigError(f"the node cannot run: {os_error_text(e)}") from e
    return EXIT_OK


def cmd_serve_matches(args: argparse.Namespace) -> int:
    import asyncio

    from node.app.allocator import tune_allocator
    from node.app.collector import tune_collector
    from node.app.logging_setup import configure_logging
    from node.app.match_server import serve_matches
    from node.app.runner import open_store
    from node.config import load_config

    configure_logging(json_lines=args.log_format == "json")
    config = load_config(Path(args.directory))
    tune_allocator(config.malloc_mmap_threshold_kib << 10)
    tune_collector()
    asyncio.run(serve_matches(config, open_store(config), args.host, args.port, args.refresh_s))
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hashmesh",
        description="Share hashes of removed terrorist content across a consortium of platforms.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create a member's keys, configuration and join request")
    p.add_argument("directory", help="where the node's keys, config and data will live")
    p.add_argument("--member-id", required=True, help="short id, e.g. 'examplevideo'")
    p.add_argument("--origin", help="log origin (default: <member-id>.hashmesh)")
    p.add_argument("--display-name", help="the platform's name as admins will show it")
    p.add_argument("--contact", default="", help="who to call about this node")
    p.add_argument(
        "--role",
        choices=("member", "auditor"),
        default="member",
        help="auditors read every log and write none",
    )
    p.add_argument("--peer-host", default="127.0.0.1", help="address peers reach us on")
    p.add_argument("--peer-port", type=int, default=7400)
    p.add_argument("--operator-port", type=int, default=7401)
    add_json_arg(p)
    p.set_defaults(func=cmd_init)

    node = sub.add_parser("node", help="run the node").add_subparsers(
        dest="node_command", required=True, metavar="COMMAND"
    )
    p = node.add_parser("run", help="run the node in the foreground until SIGTERM or Ctrl-C")
    p.add_argument("directory", nargs="?", default=".", help="the node's directory")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_node_run)
    p = node.add_parser(
        "serve-matches", help="a read-only match server on the node's PostgreSQL store"
    )
    p.add_argument("directory", nargs="?", default=".", help="the node's directory")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--refresh-s", type=float, default=1.0, help="how often to index new entries")
    p.add_argument("--log-format", choices=("text", "json"), default="text")
    p.set_defaults(func=cmd_serve_matches)

    operator.register(sub)
    keys.register(sub)
    admin.register(sub)
    audit.register(sub)
    demo.register(sub)
    data.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
    except UsageError as e:
        print(f"hashmesh: {e}", file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as e:
        print(f"hashmesh: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except NodeError as e:
        print(f"hashmesh: {e}", file=sys.stderr)
        return EXIT_NODE
    except ProtocolError as e:
        print(f"hashmesh: verification failed: {e}", file=sys.stderr)
        return EXIT_VERIFY
    except OSError as e:  # a file or directory named on the command line
        print(f"hashmesh: {os_error_text(e)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return code


def os_error_text(e: OSError) -> str:
    """One line for an OSError: the path it concerns and the system's reason."""
    reason = e.strerror or str(e)
    paths = [str(p) for p in (e.filename, e.filename2) if p is not None]
    return f"{' -> '.join(paths)}: {reason}" if paths else reason


if __name__ == "__main__":
    sys.exit(main())
