"""`hashmesh admin ...`: the roster's life. Drafts are files; each admin signs on their own
machine with their own key (keys never leave it); `publish` hands a roster with enough
signatures to a node, from where it spreads like any other data.

Only the arguments live here; the bodies are imported when their command runs: drafting
rosters in node.cli.admin_drafts, keys and roster files in node.cli.admin_files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from node.cli.common import Command, Subcommands, add_json_arg, add_node_arg

DRAFTS = "node.cli.admin_drafts"
FILES = "node.cli.admin_files"


def register(sub: Subcommands) -> None:
    admin = sub.add_parser("admin", help="consortium admins: create and change the roster")
    cmds = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")

    p = cmds.add_parser("keygen", help="make an admin key (private file + .pub)")
    p.add_argument("name")
    p.add_argument("--out", required=True, type=Path)
    add_json_arg(p)
    p.set_defaults(func=Command(FILES, "cmd_keygen"))

    p = cmds.add_parser("create", help="draft version 1 of a consortium's roster")
    p.add_argument("--name", required=True, help="the consortium's name")
    p.add_argument("--admin", action="append", required=True, help="admin .pub file")
    p.add_argument("--threshold", type=int, required=True, help="signatures needed (t of n)")
    p.add_argument("--member", action="append", default=[], help="a member's join request")
    p.add_argument("--taxonomy-file", type=Path, help="labels, one per line (default: built in)")
    p.add_argument("--witness-quorum", type=int, default=0)
    p.add_argument("--pdq-threshold", type=int, default=31)
    p.add_argument(
        "--act-agreement",
        type=int,
        default=1,
        help="members' default: act on a hash only when this many members stand behind it",
    )
    _validity(p)
    p.set_defaults(func=Command(DRAFTS, "cmd_create"))

    for name, helptext, func in (
        ("add-member", "draft N+1 adding the member of a join request", "cmd_add_member"),
        ("remove-member", "draft N+1 without a member", "cmd_remove_member"),
        ("replace-member", "draft N+1 giving a member a new log (new join request)", "cmd_replace"),
        ("rotate-key", "draft N+1 giving a member a new checkpoint key", "cmd_rotate_key"),
        ("compromise-key", "draft N+1 declaring a member's key compromised", "cmd_compromise"),
        ("set-admins", "draft N+1 with new admin keys and threshold", "cmd_set_admins"),
        ("renew", "draft N+1 that only extends the expiry", "cmd_renew"),
        (
            "set",
            "draft N+1 changing the taxonomy, witness quorum, PDQ threshold or agreement",
            "cmd_set",
        ),
        (
            "update-member",
            "draft N+1 changing a member's endpoint, node key or details",
            "cmd_update",
        ),
    ):
        p = cmds.add_parser(name, help=helptext)
        p.add_argument("roster", type=Path, help="the current signed roster")
        _validity(p)
        p.set_defaults(func=Command(DRAFTS, func))
        if name in ("add-member", "replace-member"):
            p.add_argument("--join", required=True, type=Path)
        if name == "set":
            p.add_argument("--taxonomy-file", type=Path, help="labels, one per line")
            p.add_argument("--witness-quorum", type=int)
            p.add_argument("--pdq-threshold", type=int)
            p.add_argument("--act-agreement", type=int, help="members needed behind a hash")
        if name == "update-member":
            p.add_argument("--endpoint", action="append", help="peer API URL (repeatable)")
            p.add_argument("--node-key", help="new base64 node key")
            p.add_argument("--display-name")
            p.add_argument("--contact")
        if name in (
            "remove-member",
            "rotate-key",
            "compromise-key",
            "update-member",
            "replace-member",
        ):
            p.add_argument("--member", required=True)
        if name == "rotate-key":
            p.add_argument("--new-key", required=True, help="base64 public key")
            p.add_argument("--after-size", type=int, required=True, help="old key's last size")
        if name == "compromise-key":
            p.add_argument("--from-size", type=int, required=True, help="last size to trust")
        if name == "set-admins":
            p.add_argument("--admin", action="append", required=True)
            p.add_argument("--threshold", type=int, required=True)

    p = cmds.add_parser("sign", help="add your signature to a draft (in place)")
    p.add_argument("draft", type=Path)
    p.add_argument("--key", required=True, type=Path, help="your admin key file")
    add_json_arg(p)
    p.set_defaults(func=Command(FILES, "cmd_sign"))

    p = cmds.add_parser("show", help="print a roster")
    p.add_argument("roster", type=Path)
    add_json_arg(p)
    p.set_defaults(func=Command(FILES, "cmd_show"))

    p = cmds.add_parser("publish", help="hand a signed roster to a node")
    p.add_argument("roster", type=Path)
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=Command(FILES, "cmd_publish"))

    p = cmds.add_parser("current", help="fetch the roster a node trusts now")
    p.add_argument("--out", required=True, type=Path)
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=Command(FILES, "cmd_current"))


def _validity(p: argparse.ArgumentParser) -> None:
    p.add_argument("--valid-days", type=float, default=365.0, help="expiry, days from now")
    p.add_argument(
        "--resign-days",
        type=float,
        help="re-sign period in days (0: none; default: keep the current one, 0 for a new one)",
    )
    p.add_argument("--out", type=Path, help="where to write the draft")
    add_json_arg(p)
