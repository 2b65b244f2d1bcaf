"""`hashmesh audit ...`: what an auditor runs. `verify` checks a node's copy of every log
offline; `proof` writes a provenance bundle for one hash; `verify-proof` checks a bundle with
no network. The checks themselves live in protocol.audit and protocol.bundle.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli.common import (
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_VERIFY,
    Subcommands,
    UsageError,
    add_json_arg,
    add_node_arg,
    client,
    node_config,
    parse_hash_arg,
    print_json,
)
from node.config import read_roster
from node.errors import ConfigError
from protocol.entries import Add, Confirm, Dispute, Retract
from protocol.errors import ProtocolError
from protocol.signals import value_text

if TYPE_CHECKING:
    from node.cli.operator_client import OperatorClient
    from node.formats.report import Observed
    from node.store.base import Store

PAGE = 10_000


def register(sub: Subcommands) -> None:
    audit = sub.add_parser("audit", help="auditors: verify logs and provenance offline")
    cmds = audit.add_subparsers(dest="audit_command", required=True, metavar="COMMAND")

    p = cmds.add_parser("verify", help="check a node's copy of every log, offline")
    p.add_argument("directory", type=Path, help="the node's directory (its data is only read)")
    p.add_argument("--genesis", type=Path, help="the pinned first roster (default: the node's)")
    add_json_arg(p)
    p.set_defaults(func=cmd_verify)

    p = cmds.add_parser("proof", help="write a provenance bundle for a hash")
    p.add_argument("hash", metavar="TYPE:VALUE")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument(
        "--confirmations",
        action="store_true",
        help="also write a bundle for each member's confirmation of the add, next to --out",
    )
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_proof)

    p = cmds.add_parser("report", help="a transparency report over a period, as JSON and HTML")
    p.add_argument("directories", nargs="+", type=Path, help="nodes' directories (data only read)")
    p.add_argument("--days", type=float, default=30.0, help="the period: this many days back")
    p.add_argument("--html", type=Path, help="also write a readable page with charts here")
    add_json_arg(p)
    p.set_defaults(func=cmd_report)

    p = cmds.add_parser("verify-proof", help="check a provenance bundle with no network")
    p.add_argument("bundle", type=Path)
    p.add_argument("--genesis", type=Path, help="the pinned first roster")
    add_json_arg(p)
    p.set_defaults(func=cmd_verify_proof)


async def _audit_store(store: Store, genesis: bytes) -> dict[str, Any]:
    from node.app.runner import wall_clock_ms
    from protocol.audit import LogAudit, check_evidence
    from protocol.evidence import verify_evidence
    from protocol.roster import SignedRoster, check_fresh, verify_link, verify_self_signed

    problems: list[str] = []
    notices: list[str] = []
    roster = verify_self_signed(SignedRoster.decode(genesis))
    # A removed member's log is judged by the last roster that listed it.
    listed_by = dict.fromkeys(roster.origins(), roster)
    for raw in await store.rosters():
        candidate = SignedRoster.decode(raw)
        if candidate.roster.version > roster.version:
            try:
                roster = verify_link(roster, candidate)  # expiry: of the last one, below
            except ProtocolError as bad:
                problems.append(f"roster version {candidate.roster.version}: {bad}")
                break
            listed_by.update(dict.fromkeys(roster.origins(), roster))
    try:
        check_fresh(roster, wall_clock_ms())
    except ProtocolError as stale:
        problems.append(str(stale))
    logs = {}
    for origin, head in sorted((await store.log_heads()).items()):
        judged_by = listed_by.get(origin)
        if judged_by is None:
            logs[origin] = {"size": head.size, "ok": True, "note": "in no roster of the chain"}
            continue
        checkpoints = [raw for _, raw in await store.checkpoints(origin)]
        audit = LogAudit(origin, judged_by, checkpoints)
        for start in range(0, head.size, PAGE):
            audit.feed(await store.entries(origin, start, min(head.size, start + PAGE)))
        report = audit.finish()
        problems.extend(f"{origin}: {p}" for p in report.problems)
        notices.extend(f"{origin}: {n}" for n in report.notices)
        logs[origin] = {
            "size": report.size,
            "root": report.root.hex(),
            "checkpoints_checked": report.checkpoints_checked,
            "witnessed_checkpoints": report.witnessed,
            "undecodable_entries": report.undecodable,
            "untrusted_checkpoints": list(report.untrusted_checkpoints),
            "unvouched_entries": report.unvouched_entries,
            "ok": report.ok,
        }
        if judged_by is not roster:
            logs[origin]["note"] = f"member removed: judged by roster version {judged_by.version}"
    evidence: list[dict[str, Any]] = []
    for held in await store.evidence():
        try:
            if held.encoded:
                proves = verify_evidence(roster, held.encoded).detail
            else:  # stored before evidence carried its proof
                proves = check_evidence(held.first, held.second, roster)
        except ProtocolError as err:
            evidence.append({"origin": held.origin, "invalid": str(err)})
            continue
        evidence.append(
            {
                "origin": held.origin,
                "proves": proves,
                "first": held.first.decode(errors="replace"),
                "second": held.second.decode(errors="replace"),
                "evidence": held.encoded.hex(),
                "seen_ms": held.seen_ms,
            }
        )
        problems.append(f"equivocation: {proves}")
    return {
        "roster_version": roster.version,
        "logs": logs,
        "equivocation_evidence": evidence,
        "problems": problems,
        "notices": notices,
        "ok": not problems,
    }


async def _run_verify(args: argparse.Namespace) -> dict[str, Any]:
    from node.app.runner import open_store

    config = node_config(argparse.Namespace(node=str(args.directory)))
    genesis_path = args.genesis or config.roster_path
    try:
        genesis = genesis_path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {genesis_path}: {e}") from e
    store = open_store(config)
    await store.open()
    try:
        return await _audit_store(store, genesis)
    finally:
        await store.close()


def cmd_verify(args: argparse.Namespace) -> int:
    import asyncio

    report = asyncio.run(_run_verify(args))
    if args.json:
        print_json(report)
    else:
        print(f"roster version {report['roster_version']}")
        for origin, log in report["logs"].items():
            mark = "ok" if log["ok"] else "FAILED"
            checked = log.get("checkpoints_checked", 0)
            print(f"  {origin:40} size {log['size']:8}  {checked} checkpoints checked  {mark}")
        for e in report["equivocation_evidence"]:
            print(f"EQUIVOCATION: {e.get('proves') or e.get('invalid')}")
        for n in report["notices"]:
            print(f"NOTICE: {n}")
        for p in report["problems"]:
            print(f"PROBLEM: {p}")
        print("audit passed" if report["ok"] else "audit FAILED")
    return EXIT_OK if report["ok"] else EXIT_VERIFY


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
    if SignedRoster.decode(rosters[0]).roster.version > 1:
        rosters = _earlier_rosters(rosters) + rosters
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
                "first_roster_version": SignedRoster.decode(rosters[0]).roster.version,
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


def _earlier_rosters(chain: tuple[bytes, ...]) -> tuple[bytes, ...]:
    """The versions before a node's pinned roster (a member that joined later starts from the
    roster naming it), from another member's public auditor route, so that an auditor who
    pins only the genesis can check the bundle. Empty if no member gives a chain that leads
    to it; the auditor's check decides in any case, so nothing fetched is trusted here."""
    import urllib.request

    from protocol.bundle import MAX_BUNDLE_BYTES
    from protocol.roster import SignedRoster, walk_chain

    pinned = SignedRoster.decode(chain[0])
    current = SignedRoster.decode(chain[-1]).roster
    for member in current.members:
        if not member.endpoints:
            continue
        url = member.endpoints[0].rstrip("/") + "/v1/audit/rosters"
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  # roster URL
                body = json.loads(response.read(MAX_BUNDLE_BYTES))
            fetched = [base64.b64decode(r, validate=True) for r in body["rosters"]]
            earlier = [
                r for r in fetched if SignedRoster.decode(r).roster.version < pinned.roster.version
            ]
            if SignedRoster.decode(earlier[0]).roster.version != 1:
                continue  # that node too started from a later version
            walk_chain([*earlier, chain[0]])  # links only: a bundle is evidence of the past
        except (OSError, ValueError, KeyError, TypeError, IndexError, ProtocolError):
            continue  # this member's node is unreachable or gives no usable chain: try another
        return tuple(earlier)
    print(
        f"WARNING: no member served the rosters before version {pinned.roster.version}; "
        "an auditor pinning the genesis cannot check this bundle",
        file=sys.stderr,
    )
    return ()


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


async def _observe(directory: Path, since_ms: int, until_ms: int) -> Observed:
    from node.app.runner import open_store
    from node.formats.report import observe, roster_changes
    from protocol.roster import SignedRoster

    config = node_config(argparse.Namespace(node=str(directory)))
    pinned = read_roster(config)  # a missing roster is the node's configuration, said first
    store = open_store(config)
    await store.open()
    try:
        chain = [pinned, *await store.rosters()]
        rosters = [SignedRoster.decode(raw).roster for raw in chain]
        names = {m.origin: m.member_id for r in rosters for m in r.members}
        joined = [
            r.issued_ms for r in rosters if any(m.member_id == config.member_id for m in r.members)
        ]
        seen = await observe(
            store,
            config.member_id,
            lambda o: names.get(o, o),
            since_ms,
            until_ms,
            joined_ms=min(joined, default=None),
        )
        seen.roster_changes = roster_changes(rosters, since_ms, until_ms)
        return seen
    finally:
        await store.close()


def cmd_report(args: argparse.Namespace) -> int:
    if args.html is not None and not args.html.resolve().parent.is_dir():
        raise UsageError(f"--html {args.html}: no directory {args.html.resolve().parent}")

    import asyncio

    from node.app.runner import wall_clock_ms
    from node.formats.report import build_report, render_html

    until_ms = wall_clock_ms()
    since_ms = until_ms - int(args.days * 86_400_000)
    observed = [asyncio.run(_observe(d, since_ms, until_ms)) for d in args.directories]
    report = build_report(observed, since_ms, until_ms)
    if args.html:
        args.html.write_text(render_html(report))
    if args.json:
        print_json(report)
    else:
        for member, counts in report["entries_by_member"].items():
            taken = report["takedowns_by_member"].get(member, {})
            print(f"{member:20} {taken.get('takedowns', 0):6} takedowns "
                  f"({taken.get('retracted', 0)} more retracted; "
                  f"{taken.get('hash_entries', 0)} hash entries) "
                  f"{counts['dispute']:4} disputes")  # fmt: skip
        for change in report["roster_changes"]:
            print(f"{change['member']}: {change['change']} by roster v{change['roster_version']}")
        for observer, p in report["arrival_ms"].items():
            if p["count"]:
                print(f"arrival at {observer}: median {p['p50']:.0f} ms, p99 {p['p99']:.0f} ms"
                      f" ({p['caught_up_excluded']} made before it joined left out)")  # fmt: skip
        if args.html:
            print(f"wrote {args.html}")
    return EXIT_OK
