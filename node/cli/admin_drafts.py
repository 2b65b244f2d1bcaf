"""`hashmesh admin create` and the drafts of version N+1 (add, remove, replace or update a
member, rotate or compromise a checkpoint key, set admins, renew, set roster settings): each
reads the current signed roster and writes an unsigned draft for the admins to sign.
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

from node.cli.admin_files import read_signed
from node.cli.common import EXIT_OK, UsageError, print_json
from node.errors import ConfigError
from protocol.errors import ProtocolError

if TYPE_CHECKING:
    from protocol.roster import AdminKey, Roster
    from protocol.roster_members import Member


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
    from protocol.roster_members import CheckpointKey

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
