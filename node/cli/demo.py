"""`hashmesh demo`: a fresh local consortium of N node processes on 127.0.0.1; one takedown
submitted on the first node, and the time until every other node can look it up.

Only the arguments live here; the body (node.cli.demo_run) is imported when the command runs.
"""

from __future__ import annotations

from node.cli.common import Command, Subcommands, add_json_arg


def register(sub: Subcommands) -> None:
    p = sub.add_parser("demo", help="run a local demo consortium and time one takedown")
    p.add_argument("--nodes", type=int, default=3, help="how many member nodes (default 3)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for arrival")
    p.add_argument("--no-push", action="store_true", help="rely on the scheduled pull only")
    p.add_argument("--sync-interval", type=float, default=5.0, help="seconds between pulls")
    p.add_argument("--keep", action="store_true", help="keep the consortium's directory")
    add_json_arg(p)
    p.set_defaults(func=Command("node.cli.demo_run", "cmd_demo"))
