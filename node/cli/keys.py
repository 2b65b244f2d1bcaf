"""`hashmesh keys ...`: a member's own key operations. `rotate` starts a checkpoint key rotation
on the running node and prints what the admins need to name the new key in the roster."""

from __future__ import annotations

import argparse

from node.cli.common import EXIT_OK, Subcommands, add_json_arg, add_node_arg, client, print_json


def register(sub: Subcommands) -> None:
    keys = sub.add_parser("keys", help="operators: rotate this member's checkpoint key")
    cmds = keys.add_subparsers(dest="keys_command", required=True, metavar="COMMAND")
    p = cmds.add_parser("rotate", help="make a new checkpoint key; the admins then name it")
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_rotate)


def cmd_rotate(args: argparse.Namespace) -> int:
    result = client(args).call("POST", "/v1/keys/rotate")
    if args.json:
        print_json(result)
        return EXIT_OK
    print(
        f"new checkpoint key made; the old key now signs nothing beyond size {result['after_size']}"
    )
    print("new submissions are kept and acknowledged, and spread once the admins publish:")
    print(
        f"  hashmesh admin rotate-key CURRENT_ROSTER --member {result['member_id']} "
        f"--new-key {result['new_key']} --after-size {result['after_size']}"
    )
    return EXIT_OK
