"""`hashmesh admin` commands that handle roster files and keys rather than drafting: make an
admin key, sign a draft, show a roster, publish it to a node, fetch the one a node trusts."""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from node.cli.common import EXIT_OK, client, print_json
from node.errors import ConfigError

if TYPE_CHECKING:
    from protocol.roster import SignedRoster


def read_signed(path: Path) -> SignedRoster:
    from protocol.roster import SignedRoster

    try:
        return SignedRoster.decode(path.read_bytes())
    except OSError as e:
        raise ConfigError(f"cannot read {path}: {e}") from e


def cmd_keygen(args: argparse.Namespace) -> int:
    from node.credentials.secret_files import write_secret
    from protocol.note import signer_key_text
    from protocol.signing import SigningKey

    key = SigningKey.generate()
    write_secret(args.out, signer_key_text(args.name, key))
    pub = args.out.with_suffix(".pub")
    public = base64.b64encode(key.public).decode()
    pub.write_text(f"{args.name} {public}\n")
    if args.json:
        print_json(
            {
                "name": args.name,
                "private_key": str(args.out),
                "public_key": str(pub),
                "public": public,
            }
        )
        return EXIT_OK
    print(f"admin key {args.name}: private {args.out} (keep it offline), public {pub}")
    return EXIT_OK


def cmd_sign(args: argparse.Namespace) -> int:
    from node.credentials.key_files import load_key

    signed = read_signed(args.draft)
    name, key = load_key(args.key)
    roster = signed.roster
    if key.public not in {a.public for a in roster.admins}:
        print(
            f"note: {name} is not an admin of version {roster.version} itself "
            "(fine if you are an admin of the previous version)",
            file=sys.stderr,
        )
    signed = signed.with_signature(key)
    args.draft.write_bytes(signed.encode())
    have = len(signed.signers(roster.admins))
    if args.json:
        print_json(
            {
                "draft": str(args.draft),
                "version": roster.version,
                "signer": name,
                "signer_is_own_admin": key.public in {a.public for a in roster.admins},
                "signatures_by_own_admins": have,
                "threshold": roster.threshold,
            }
        )
        return EXIT_OK
    print(f"signed version {roster.version} as {name}: {have} of {roster.threshold} own admins")
    return EXIT_OK


def roster_json(signed: SignedRoster) -> dict[str, object]:
    r = signed.roster
    return {
        "consortium": r.consortium,
        "version": r.version,
        "issued_ms": r.issued_ms,
        "expires_ms": r.expires_ms,
        "threshold": r.threshold,
        "witness_quorum": r.witness_quorum,
        "pdq_threshold": r.pdq_threshold,
        "resign_period_ms": r.resign_period_ms,
        "act_agreement": r.act_agreement,
        "taxonomy": list(r.taxonomy),
        "admins": [
            {"name": a.name, "public": base64.b64encode(a.public).decode()} for a in r.admins
        ],
        "signatures_by_own_admins": len(signed.signers(r.admins)),
        "members": [
            {
                "member_id": m.member_id,
                "display_name": m.display_name,
                "origin": m.origin,
                "roles": list(m.roles),
                "endpoints": list(m.endpoints),
                "contact": m.contact,
                "checkpoint_keys": [
                    {
                        "public": base64.b64encode(k.public).decode(),
                        "first_size": k.first_size,
                        "last_size": k.last_size,
                        "compromised": k.compromised,
                    }
                    for k in m.checkpoint_keys
                ],
            }
            for m in r.members
        ],
    }


def cmd_show(args: argparse.Namespace) -> int:
    data = roster_json(read_signed(args.roster))
    if args.json:
        print_json(data)
        return EXIT_OK
    print(
        f"{data['consortium']} roster version {data['version']}, "
        f"{data['signatures_by_own_admins']} of threshold {data['threshold']} signatures"
    )
    for m in data["members"]:  # type: ignore[attr-defined]
        print(f"  {m['member_id']:16} {m['origin']:32} {','.join(m['roles'])}")
    return EXIT_OK


def cmd_publish(args: argparse.Namespace) -> int:
    raw = args.roster.read_bytes()
    read_signed(args.roster)
    result = client(args).call("POST", "/v1/roster", raw=raw)
    if args.json:
        print_json(result)
        return EXIT_OK
    state = "accepted" if result["accepted"] else "already known"
    print(f"roster {state}; the node now trusts version {result['version']}")
    return EXIT_OK


def cmd_current(args: argparse.Namespace) -> int:
    from protocol.roster import SignedRoster

    raw = client(args).call("GET", "/v1/roster")
    args.out.write_bytes(raw)
    version = SignedRoster.decode(raw).roster.version
    if args.json:
        print_json({"out": str(args.out), "version": version})
        return EXIT_OK
    print(f"wrote roster version {version} to {args.out}")
    return EXIT_OK
