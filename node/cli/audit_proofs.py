"""`hashmesh audit proof` and `audit verify-proof`: write the provenance bundle of one hash
(its entry's tlog-proof and the roster chain the node serves, from the genesis) and check a
bundle with no network.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from typing import TYPE_CHECKING, Any

from node.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_VERIFY,
    client,
    parse_hash_arg,
    print_json,
)
from protocol.entries import Add, Confirm, Dispute, Retract
from protocol.errors import ProtocolError
from protocol.signals import value_text

if TYPE_CHECKING:
    from node.cli.operator_client import OperatorClient


def cmd_proof(args: argparse.Namespace) -> int:
    from protocol.roster import SignedRoster

    item = parse_hash_arg(args.hash)
    api = client(args)
    result = api.call("POST", "/v1/lookup", {"hashes": [item]})["results"][0]
    if not result["found"]:
        if args.json:
            print_json({"found": False, "hash": args.hash})
        else:
            print(f"{args.hash} is not in any log this node holds")
        return EXIT_NOT_FOUND
    first = result["submissions"][0]
    chain = api.call("GET", "/v1/roster/chain")
    rosters = tuple(bytes.fromhex(r) for r in chain["rosters"])
    first_version = SignedRoster.decode(rosters[0]).roster.version
    if first_version > 1:
        # A node set up from a later roster fetches the earlier versions from its peers at
        # its first sync (RosterKeeper.adopt_earlier) and serves the chain from the genesis
        # from then on; only before that does it lack them.
        print(
            f"WARNING: this node holds the rosters from version {first_version} on only, "
            "until a sync with a peer brings it the earlier ones (`hashmesh sync`): an "
            "auditor pinning the genesis cannot check this bundle",
            file=sys.stderr,
        )
    args.out.write_bytes(_bundle(api, first["log"], first["index"], rosters))
    confirmations = []
    if args.confirmations:
        for c in first.get("confirmations", []):
            path = args.out.with_name(
                f"{args.out.stem}.confirm.{c['member']}.{c['index']}{args.out.suffix}"
            )
            path.write_bytes(_bundle(api, c["log"], c["index"], rosters))
            confirmations.append({**c, "out": str(path)})
    if args.json:
        print_json(
            {
                "found": True,
                "hash": args.hash,
                "log": first["log"],
                "index": first["index"],
                "out": str(args.out),
                "first_roster_version": first_version,
                "confirmations": confirmations,
            }
        )
        return EXIT_OK
    print(f"wrote the provenance of {first['log']} #{first['index']} to {args.out}")
    for c in confirmations:
        print(f"wrote {c['member']}'s confirmation, {c['log']} #{c['index']}, to {c['out']}")
    return EXIT_OK


def _bundle(api: OperatorClient, log: str, index: int, rosters: tuple[bytes, ...]) -> bytes:
    """The provenance bundle of one entry: its tlog-proof carrying its bytes, and `rosters`."""
    from urllib.parse import quote

    from protocol.bundle import ProvenanceBundle
    from protocol.tlogproof import format_tlog_proof, parse_tlog_proof

    proof = api.call("GET", f"/v1/proof?log={quote(log)}&index={index}")
    parsed = parse_tlog_proof(proof["tlog_proof"].encode())
    text = format_tlog_proof(
        parsed.index, parsed.proof, parsed.checkpoint_raw, bytes.fromhex(proof["entry"])
    )
    return ProvenanceBundle(text, rosters).encode()


def _entry_json(entry: object) -> dict[str, Any]:
    if isinstance(entry, Add):
        return {
            "kind": "add",
            "signal_type": entry.signal_type,
            "value": value_text(entry.signal_type, entry.value),
            "labels": list(entry.labels),
            "incident": entry.incident,
            "timestamp_ms": entry.timestamp_ms,
        }
    if isinstance(entry, Retract):
        return {"kind": "retract", "target": [entry.target.log, entry.target.index]}
    if isinstance(entry, Dispute | Confirm):
        kind = "dispute" if isinstance(entry, Dispute) else "confirm"
        return {
            "kind": kind,
            "target": [entry.target.log, entry.target.index],
            "reason_code": entry.reason_code,
            "timestamp_ms": entry.timestamp_ms,
        }
    return {"kind": "unknown"}


def cmd_verify_proof(args: argparse.Namespace) -> int:
    from protocol.bundle import verify_bundle

    pinned = args.genesis.read_bytes() if args.genesis else None
    try:
        p = verify_bundle(args.bundle.read_bytes(), pinned)
    except ProtocolError as e:
        print(f"proof INVALID: {e}")
        return EXIT_VERIFY
    out = {
        "valid": True,
        "member": p.member_id,
        "display_name": p.display_name,
        "log": p.origin,
        "index": p.index,
        "entry": _entry_json(p.entry),
        "checkpoint_size": p.checkpoint_size,
        "roster_version": p.roster_version,
        "genesis_sha256": p.genesis_sha256,
        "genesis_pinned": pinned is not None,
        "cosigners": list(p.cosigners),
        "witness_quorum": p.witness_quorum,
        "witnessed": p.witnessed,
        "entry_sha256": hashlib.sha256(p.entry_bytes).hexdigest(),
    }
    if args.json:
        print_json(out)
    else:
        verb = "added" if isinstance(p.entry, Add) else "written"
        print(
            f"valid: entry #{p.index} of {p.origin} was {verb} by {p.member_id} "
            f"({p.display_name}); checkpoint size {p.checkpoint_size}"
        )
        print(f"  {out['entry']}")
        print(f"  cosigned by {len(p.cosigners)} (quorum {p.witness_quorum})")
        if pinned is None:
            print(f"  WARNING: first roster not pinned; its SHA-256 is {p.genesis_sha256}")
    return EXIT_OK
