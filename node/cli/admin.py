"""`hashmesh admin ...`: the roster's life. Drafts are files; each admin signs on their own
machine with their own key (keys never leave it); `publish` hands a roster with enough
signatures to a node, from where it spreads like any other data.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from node.cli.admin_files import (
    cmd_current,
    cmd_keygen,
    cmd_publish,
    cmd_show,
    cmd_sign,
    read_signed,
)
from node.cli.common import (
    EXIT_OK,
    Subcommands,
    UsageError,
    add_json_arg,
    add_node_arg,
    print_json,
)
from node.errors import ConfigError
from protocol.errors import ProtocolError

if TYPE_CHECKING:
    from protocol.roster import AdminKey, Member, Roster


def register(sub: Subcommands) -> None:
    admin = sub.add_parser("admin", help="consortium admins: create and change the roster")
    cmds = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")

    p = cmds.add_parser("keygen", help="make an admin key (private file + .pub)")
    p.add_argument("name")
    p.add_argument("--out", required=True, type=Path)
    add_json_arg(p)
    p.set_defaults(func=cmd_keygen)

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
    p.set_defaults(func=cmd_create)

    for name, helptext, func in (
        ("add-member", "draft N+1 adding the member of a join request", cmd_add_member),
        ("remove-member", "draft N+1 without a member", cmd_remove_member),
        ("replace-member", "draft N+1 giving a member a new log (new join request)", cmd_replace),
        ("rotate-key", "draft N+1 giving a member a new checkpoint key", cmd_rotate_key),
        ("compromise-key", "draft N+1 declaring a member's key compromised", cmd_compromise),
        ("set-admins", "draft N+1 with new admin keys and threshold", cmd_set_admins),
        ("renew", "draft N+1 that only extends the expiry", cmd_renew),
        (
            "set",
            "draft N+1 changing the taxonomy, witness quorum, PDQ threshold or agreement",
            cmd_set,
        ),
        (
            "update-member",
            "draft N+1 changing a member's endpoint, node key or details",
            cmd_update,
        ),
    ):
        p = cmds.add_parser(name, help=helptext)
        p.add_argument("roster", type=Path, help="the current signed roster")
        _validity(p)
        p.set_defaults(func=func)
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
    p.set_defaults(func=cmd_sign)

    p = cmds.add_parser("show", help="print a roster")
    p.add_argument("roster", type=Path)
    add_json_arg(p)
    p.set_defaults(func=cmd_show)

    p = cmds.add_parser("publish", help="hand a signed roster to a node")
    p.add_argument("roster", type=Path)
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_publish)

    p = cmds.add_parser("current", help="fetch the roster a node trusts now")
    p.add_argument("--out", required=True, type=Path)
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_current)


def _validity(p: argparse.ArgumentParser) -> None:
    p.add_argument("--valid-days", type=float, default=365.0, help="expiry, days from now")
    p.add_argument(
        "--resign-days",
        type=float,
        help="re-sign period in days (0: none; default: keep the current one, 0 for a new one)",
    )
    p.add_argument("--out", type=Path, help="where to write the draft")
    add_json_arg(p)


#: An admin's public key: `NAME BASE64` in its .pub file, 32 bytes once decoded.
ED25519_PUBLIC_BYTES = 32


def _now() -> int:
    return time.time_ns() // 1_000_000


def _admin_key(path: str) -> AdminKey:
    from protocol.roster import AdminKey

    text = Path(path).read_text().strip()
    name, _, b64 = text.partition(" ")
    try:
        public = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ConfigError(f"{path} is not an admin .pub file") from e
    if not name or len(public) != ED25519_PUBLIC_BYTES:
        raise ConfigError(f"{path} is not an admin .pub file (NAME and a base64 Ed25519 key)")
    return AdminKey(name, public)


def _write_draft(args: argparse.Namespace, roster: Roster) -> int:
    from protocol.roster import SignedRoster

    out = args.out or Path(f"roster-v{roster.version}.draft")
    out.write_bytes(SignedRoster(roster.encode(), ()).encode())
    if args.json:
        print_json(
            {
                "draft": str(out),
                "consortium": roster.consortium,
                "version": roster.version,
                "threshold": roster.threshold,
            }
        )
        return EXIT_OK
    print(f"wrote draft roster version {roster.version} to {out}; now each admin runs")
    print(f"  hashmesh admin sign {out} --key <their key>   ({roster.threshold} needed)")
    return EXIT_OK


def _next(args: argparse.Namespace, current: Roster, **changes: object) -> int:
    from node.app.consortium import DAY_MS

    now = _now()
    draft = replace(
        current,
        version=current.version + 1,
        issued_ms=now,
        expires_ms=now + int(args.valid_days * DAY_MS),
        resign_period_ms=current.resign_period_ms
        if args.resign_days is None
        else int(args.resign_days * DAY_MS),
        **changes,  # type: ignore[arg-type]
    )
    return _write_draft(args, draft)


def cmd_create(args: argparse.Namespace) -> int:
    from node.app.consortium import DAY_MS, JoinRequest
    from protocol.roster import DEFAULT_TAXONOMY, Roster

    taxonomy = DEFAULT_TAXONOMY
    if args.taxonomy_file:
        taxonomy = tuple(x.strip() for x in args.taxonomy_file.read_text().split() if x.strip())
    members = [JoinRequest.from_json(Path(m).read_text()).member() for m in args.member]
    now = _now()
    try:
        roster = Roster(
            consortium=args.name,
            version=1,
            issued_ms=now,
            expires_ms=now + int(args.valid_days * DAY_MS),
            admins=tuple(_admin_key(a) for a in args.admin),
            threshold=args.threshold,
            witness_quorum=args.witness_quorum,
            taxonomy=taxonomy,
            members=tuple(members),
            pdq_threshold=args.pdq_threshold,
            resign_period_ms=int((args.resign_days or 0) * DAY_MS),
            act_agreement=args.act_agreement,
        )
    except ProtocolError as e:
        raise UsageError(str(e)) from e
    return _write_draft(args, roster)


def _member_change(
    current: Roster, member_id: str, change: Callable[[Member], Member]
) -> tuple[Member, ...]:
    current.member(member_id)  # raises RosterError for an unknown member
    return tuple(change(m) if m.member_id == member_id else m for m in current.members)


def cmd_add_member(args: argparse.Namespace) -> int:
    from node.app.consortium import JoinRequest

    current = read_signed(args.roster).roster
    member = JoinRequest.from_json(args.join.read_text()).member()
    return _next(args, current, members=(*current.members, member))


def cmd_remove_member(args: argparse.Namespace) -> int:
    current = read_signed(args.roster).roster
    current.member(args.member)
    kept = tuple(m for m in current.members if m.member_id != args.member)
    return _next(args, current, members=kept)


def cmd_replace(args: argparse.Namespace) -> int:
    """The member starts a new log (after an equivocation, say): new origin and keys."""
    from node.app.consortium import JoinRequest

    current = read_signed(args.roster).roster
    joined = JoinRequest.from_json(args.join.read_text()).member()
    if joined.member_id != args.member:
        raise UsageError(f"the join request is for {joined.member_id!r}, not {args.member!r}")
    old = current.member(args.member)
    if joined.origin == old.origin:
        raise UsageError("a replacement needs a new log origin (run `hashmesh init --origin ...`)")
    return _next(args, current, members=_member_change(current, args.member, lambda _: joined))


def cmd_rotate_key(args: argparse.Namespace) -> int:
    from protocol.roster import CheckpointKey

    current = read_signed(args.roster).roster
    new_key = base64.b64decode(args.new_key, validate=True)

    def rotate(m: Member) -> Member:
        old = tuple(
            replace(k, last_size=args.after_size) if k.last_size is None else k
            for k in m.checkpoint_keys
        )
        return replace(m, checkpoint_keys=(*old, CheckpointKey(new_key, args.after_size + 1)))

    return _next(args, current, members=_member_change(current, args.member, rotate))


def cmd_compromise(args: argparse.Namespace) -> int:
    current = read_signed(args.roster).roster

    def compromise(m: Member) -> Member:
        keys = tuple(
            replace(k, last_size=args.from_size, compromised=True)
            if k.last_size is None or k.last_size > args.from_size
            else k
            for k in m.checkpoint_keys
        )
        return replace(m, checkpoint_keys=keys)

    return _next(args, current, members=_member_change(current, args.member, compromise))


def cmd_set_admins(args: argparse.Namespace) -> int:
    current = read_signed(args.roster).roster
    admins = tuple(_admin_key(a) for a in args.admin)
    return _next(args, current, admins=admins, threshold=args.threshold)


def cmd_renew(args: argparse.Namespace) -> int:
    return _next(args, read_signed(args.roster).roster)


def cmd_set(args: argparse.Namespace) -> int:
    current = read_signed(args.roster).roster
    changes: dict[str, object] = {}
    if args.taxonomy_file:
        labels = tuple(x.strip() for x in args.taxonomy_file.read_text().split() if x.strip())
        changes["taxonomy"] = labels
    if args.witness_quorum is not None:
        changes["witness_quorum"] = args.witness_quorum
    if args.pdq_threshold is not None:
        changes["pdq_threshold"] = args.pdq_threshold
    if args.act_agreement is not None:
        changes["act_agreement"] = args.act_agreement
    if not changes:
        raise UsageError(
            "nothing to change: give --taxonomy-file, --witness-quorum, --pdq-threshold"
            " or --act-agreement"
        )
    try:
        return _next(args, current, **changes)
    except ProtocolError as e:
        raise UsageError(str(e)) from e


def cmd_update(args: argparse.Namespace) -> int:
    current = read_signed(args.roster).roster

    def update(m: Member) -> Member:
        changed = m
        if args.endpoint:
            changed = replace(changed, endpoints=tuple(args.endpoint))
        if args.node_key:
            changed = replace(changed, node_key=base64.b64decode(args.node_key, validate=True))
        if args.display_name:
            changed = replace(changed, display_name=args.display_name)
        if args.contact is not None:
            changed = replace(changed, contact=args.contact)
        return changed

    return _next(args, current, members=_member_change(current, args.member, update))
