"""Operator commands' arguments: the commands that talk to the member's own node over its
operator API (bearer token) — submit, retract, dispute, confirm, lookup, match, status, sync —
and `hash`, which hashes files locally and sends nothing anywhere.

Only the arguments live here; each body is imported when its command runs: writing entries in
node.cli.entry_writes, looking hashes up in node.cli.lookups, the node's state in
node.cli.node_status.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from node.cli.common import (
    HIT_EXIT_CODES_HELP,
    Command,
    Subcommands,
    add_json_arg,
    add_node_arg,
)
from protocol.reason_codes import CONFIRM_REASONS, DISPUTE_REASONS

WRITES = "node.cli.entry_writes"
LOOKUPS = "node.cli.lookups"
STATUS = "node.cli.node_status"


def register(sub: Subcommands) -> None:
    p = sub.add_parser("submit", help="add hashes of content your platform removed")
    p.add_argument("hashes", nargs="*", metavar="TYPE:VALUE", help="e.g. pdq:<64 hex>")
    _add_file_arg(p, "hash these files, or every file under these folders, and submit their hashes")
    p.add_argument("--label", action="append", default=[], help="a label of the taxonomy")
    p.add_argument("--incident", help="incident id, e.g. a live-streamed attack")
    p.add_argument("--reference", help="your own record id (opaque to others)")
    p.add_argument("--force", action="store_true", help="submit low-quality PDQ hashes too")
    p.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="send this Idempotency-Key (default: a new one each run, reused by its retries)",
    )
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=Command(WRITES, "cmd_submit"))

    p = sub.add_parser("retract", help="withdraw one of your own entries everywhere")
    p.add_argument("index", type=int, help="the index of the entry in your log")
    p.add_argument("--reason", default="", help="why (free text)")
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=Command(WRITES, "cmd_retract"))

    p = sub.add_parser("dispute", help="contest another member's entry")
    p.add_argument("log", help="the entry's log origin")
    p.add_argument("index", type=int, help="the entry's index in that log")
    p.add_argument("--reason-code", required=True, choices=DISPUTE_REASONS)
    p.add_argument("--text", default="", help="explanation shown with the hash")
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=Command(WRITES, "cmd_dispute"))

    p = sub.add_parser("confirm", help="stand behind another member's entry")
    p.add_argument("log", help="the entry's log origin")
    p.add_argument("index", type=int, help="the entry's index in that log")
    p.add_argument(
        "--reason-code",
        required=True,
        choices=CONFIRM_REASONS,
        help="reviewed: your analysts reviewed it and agree; also-removed: you removed it too",
    )
    p.add_argument("--text", default="", help="explanation shown with the hash")
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=Command(WRITES, "cmd_confirm"))

    for name, helptext, file_help in (
        (
            "lookup",
            "show the consortium's view of hashes (exact)",
            "hash these files, or every file under these folders, and look the hashes up "
            "exactly (use match for near-duplicates)",
        ),
        (
            "match",
            "match hashes or files against the consortium (near-duplicates too)",
            "hash these files, or every file under these folders, and match their hashes",
        ),
    ):
        p = sub.add_parser(
            name,
            help=helptext,
            epilog=HIT_EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.add_argument("hashes", nargs="*", metavar="TYPE:VALUE")
        _add_file_arg(p, file_help)
        add_node_arg(p)
        add_json_arg(p)
        p.set_defaults(func=Command(LOOKUPS, "cmd_lookup"), path=f"/v1/{name}")

    p = sub.add_parser("status", help="the node's logs, peers, roster and alerts")
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=Command(STATUS, "cmd_status"))

    p = sub.add_parser("sync", help="pull from every peer now and show the catch-up")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait at most")
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=Command(STATUS, "cmd_sync"))

    p = sub.add_parser("hash", help="hash files or folders locally (nothing is sent)")
    p.add_argument("files", nargs="+", type=Path, help="files, or folders to hash all files of")
    p.add_argument("--fps", type=float, default=1.0, help="video frames hashed per second")
    add_json_arg(p)
    p.set_defaults(func=Command(LOOKUPS, "cmd_hash"))


def _add_file_arg(parser: argparse.ArgumentParser, help_text: str) -> None:
    """`--file PATH...`: files or folders to hash (node/cli/file_batches.py), repeatable."""
    parser.add_argument(
        "--file",
        nargs="+",
        action="extend",
        default=[],
        type=Path,
        metavar="PATH",
        help=help_text,
    )
