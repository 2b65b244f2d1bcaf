"""Operator commands: talk to the member's own node over its operator API (bearer token).

submit, retract, dispute, confirm, lookup, match, status; and `hash`, which hashes files locally and
sends nothing anywhere.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli.common import (
    EXIT_NODE,
    EXIT_OK,
    HIT_EXIT_CODES_HELP,
    Subcommands,
    UsageError,
    add_json_arg,
    add_node_arg,
    client,
    parse_hash_arg,
    print_json,
    progress,
)
from node.cli.file_batches import (
    files_under,
    hash_files,
    hits_exit_code,
    lookup_in_batches,
    shown,
    submit_in_batches,
)
from node.errors import HashingError
from protocol.entries import CONFIRM_REASONS, DISPUTE_REASONS

if TYPE_CHECKING:
    from node.cli.operator_client import OperatorClient


def register(sub: Subcommands) -> None:
    p = sub.add_parser("submit", help="add hashes of content your platform removed")
    p.add_argument("hashes", nargs="*", metavar="TYPE:VALUE", help="e.g. pdq:<64 hex>")
    p.add_argument(
        "--file",
        nargs="+",
        action="extend",
        default=[],
        type=Path,
        metavar="PATH",
        help="hash these files, or every file under these folders, and submit their hashes",
    )
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
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("retract", help="withdraw one of your own entries everywhere")
    p.add_argument("index", type=int, help="the index of the entry in your log")
    p.add_argument("--reason", default="", help="why (free text)")
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_retract)

    p = sub.add_parser("dispute", help="contest another member's entry")
    p.add_argument("log", help="the entry's log origin")
    p.add_argument("index", type=int, help="the entry's index in that log")
    p.add_argument("--reason-code", required=True, choices=DISPUTE_REASONS)
    p.add_argument("--text", default="", help="explanation shown with the hash")
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_dispute)

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
    p.set_defaults(func=cmd_confirm)

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
        p.add_argument(
            "--file",
            nargs="+",
            action="extend",
            default=[],
            type=Path,
            metavar="PATH",
            help=file_help,
        )
        add_node_arg(p)
        add_json_arg(p)
        p.set_defaults(func=cmd_lookup, path=f"/v1/{name}")

    p = sub.add_parser("status", help="the node's logs, peers, roster and alerts")
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("sync", help="pull from every peer now and show the catch-up")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait at most")
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("hash", help="hash files or folders locally (nothing is sent)")
    p.add_argument("files", nargs="+", type=Path, help="files, or folders to hash all files of")
    p.add_argument("--fps", type=float, default=1.0, help="video frames hashed per second")
    add_json_arg(p)
    p.set_defaults(func=cmd_hash)


def cmd_submit(args: argparse.Namespace) -> int:
    hashes = [parse_hash_arg(h) for h in args.hashes]
    files = hash_files(args.file, args.force, "submit")
    if not hashes and not files:
        raise UsageError("nothing to submit: give TYPE:VALUE arguments or --file")
    fields: dict[str, Any] = {"labels": args.label}
    if args.incident:
        fields["incident"] = args.incident
    if args.reference:
        fields["reference"] = args.reference
    key = args.idempotency_key or str(uuid.uuid4())
    api = client(args)
    entries: list[dict[str, Any]] = []
    by_file: list[dict[str, Any]] = []
    for done in submit_in_batches(
        lambda items, request_key: submit_with_retries(api, items, request_key)["entries"],
        hashes,
        files,
        fields,
        key,
    ):
        entries.extend(done.entries)
        if done.file is not None:
            by_file.append({"file": done.file, "entries": done.entries})
        if not args.json:
            head = "" if done.file is None else f"{done.file}  "
            for item, ref in zip(done.items, done.entries, strict=True):
                added = shown(item["signal_type"], item["value"])
                print(f"{head}added {added} as {ref['log']} #{ref['index']}")
    if args.json:
        print_json({"entries": entries, "files": by_file})
    return EXIT_OK


#: Tries of one submission when the node is unreachable or answers 503, and the wait before
#: the first retry (doubled each time). Every try sends the same Idempotency-Key.
SUBMIT_TRIES = 3
SUBMIT_RETRY_S = 2.0


def submit_with_retries(api: OperatorClient, items: list[dict[str, Any]], key: str) -> Any:
    """POST /v1/submit, trying again with the same key when the outcome may be unknown: the
    node then answers a retry with the entries it already added, never a second copy."""
    from node.cli.operator_client import NodeUnavailableError, NodeUnreachableError

    wait = SUBMIT_RETRY_S
    for attempt in range(1, SUBMIT_TRIES + 1):
        try:
            return api.call(
                "POST", "/v1/submit", {"items": items}, headers={"Idempotency-Key": f'"{key}"'}
            )
        except (NodeUnreachableError, NodeUnavailableError) as e:
            if attempt == SUBMIT_TRIES:
                raise
            print(f"{e}; trying again in {wait:.0f} s (Idempotency-Key {key})", file=sys.stderr)
            time.sleep(wait)
            wait *= 2
    raise AssertionError("unreachable: the last try returns or raises")


def cmd_retract(args: argparse.Namespace) -> int:
    result = client(args).call("POST", "/v1/retract", {"index": args.index, "reason": args.reason})
    if args.json:
        print_json(result)
    else:
        print(f"retracted entry {args.index}: retraction is #{result['entry']['index']}")
    return EXIT_OK


def _about_an_entry(args: argparse.Namespace, path: str, done: str, noun: str) -> int:
    """`dispute` and `confirm`: another member's entry, with a reason code and text."""
    body = {"log": args.log, "index": args.index, "reason_code": args.reason_code}
    body["text"] = args.text
    result = client(args).call("POST", path, body)
    if args.json:
        print_json(result)
    else:
        print(f"{done} {args.log} #{args.index}: {noun} is #{result['entry']['index']}")
    return EXIT_OK


def cmd_dispute(args: argparse.Namespace) -> int:
    return _about_an_entry(args, "/v1/dispute", "disputed", "dispute")


def cmd_confirm(args: argparse.Namespace) -> int:
    return _about_an_entry(args, "/v1/confirm", "confirmed", "confirmation")


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(result: dict[str, Any]) -> list[str]:
    head = f"{result['signal_type']}:{result['value']}"
    if not result["found"]:
        return [f"{head}  not found"]
    state = "ACTIVE" if result["active"] else "withdrawn"
    lines = [f"{head}  {state}  labels={','.join(result['labels']) or '-'}"]
    if result.get("flags"):
        lines[0] += f"  FLAGGED ({', '.join(result['flags'])})"
    if "distance" in result:
        lines[0] += f"  distance={result['distance']}"
    if "pdq_convention" in result:
        lines[0] += f" ({result['pdq_convention']} hash)"
    if result.get("decision"):
        lines[0] += f"  -> {result['decision']['action'].upper()} ({result['decision']['reason']})"
    for s in result["submissions"]:
        line = f"  added by {s['member']} ({s['log']} #{s['index']}) at {_when(s['timestamp_ms'])}"
        if s.get("incident"):
            line += f" incident={s['incident']}"
        if s.get("standing"):
            line += f"  FLAGGED: {s['standing']}"
        if s.get("retraction"):
            line += f"  RETRACTED ({s['retraction']['reason'] or 'no reason given'})"
        lines.append(line)
        for d in s["disputes"]:
            lines.append(f"    disputed by {d['member']}: {d['reason_code']} {d['text']}")
        for c in s.get("confirmations", []):
            state = "" if c["active"] else "  (withdrawn)"
            when = _when(c["timestamp_ms"])
            lines.append(f"    confirmed by {c['member']} at {when}: {c['reason_code']}{state}")
        for c in s.get("corroborations", []):
            near = f" (distance {c['distance']})" if c["distance"] else ""
            lines.append(f"    corroborated by {c['member']}{near} at {_when(c['timestamp_ms'])}")
    if "agreement" in result:
        names = ", ".join(str(m["member"]) for m in result["agreement"]["members"]) or "-"
        lines.append(f"  {result['agreement']['count']} member(s) stand behind it: {names}")
    return lines


def cmd_lookup(args: argparse.Namespace) -> int:
    hashes = [parse_hash_arg(h) for h in args.hashes]
    files = hash_files(args.file, True, args.command, both_pdq=args.path == "/v1/match")
    if not hashes and not files:
        raise UsageError(f"nothing to {args.command}: give TYPE:VALUE arguments or --file")
    api = client(args)
    results = lookup_in_batches(
        lambda queries: api.call("POST", args.path, {"hashes": queries})["results"],
        hashes,
        files,
        args.command,
    )
    if args.json:
        print_json({"results": results})
    else:
        for r in results:
            head = f"{r['file']}  " if "file" in r else ""
            if "matches" not in r:
                print(head + "\n".join(describe(r)))
                continue
            query = head + shown(r["query"]["signal_type"], r["query"]["value"])
            if "threatexchange_value" in r["query"]:
                query += f" (threatexchange: {r['query']['threatexchange_value']})"
            print(f"{query}  {len(r['matches'])} match(es)" if r["found"] else f"{query}  no match")
            for m in r["matches"]:
                print("\n".join("  " + line for line in describe(m)))
    return hits_exit_code(results)


def cmd_status(args: argparse.Namespace) -> int:
    status = client(args).call("GET", "/v1/status")
    if args.json:
        print_json(status)
        return EXIT_OK
    roster = status["roster"]
    print(f"member {status['member_id']}  log {status['origin']}")
    if not status.get("in_roster", True):
        print(f"NOT IN ROSTER: {status['member_id']} was removed by roster v{roster['version']}")
    expiry = "EXPIRED" if roster.get("expired") else "expires"
    print(
        f"roster {roster['consortium']} v{roster['version']} {expiry} {_when(roster['expires_ms'])}"
    )
    print("logs:")
    quorum = roster.get("witness_quorum", 0)
    for origin, log in status["logs"].items():
        extra = "  HELD (equivocation)" if log.get("held") else ""
        if log.get("removed"):
            extra += "  REMOVED (no longer in the roster)"
        behind = log.get("latest_seen", 0) - log["size"]
        if behind > 0:
            extra += f"  {behind} behind"
        if log.get("standing"):
            extra += f"  {log['flagged_entries']} FLAGGED ({log['standing']})"
        cosigned = len(log.get("cosigners", []))
        if quorum:
            extra += f"  cosigned {cosigned}/{quorum}" + (
                " witnessed" if cosigned >= quorum else ""
            )
        print(f"  {origin:40} {log['member'] or '?':12} size {log['size']}{extra}")
    index = status.get("match_index")
    if index is not None:
        counts = ", ".join(f"{n} {t}" for t, n in index["hashes"].items())
        print(f"match index: {counts}" + ("" if index["loaded"] else "  LOADING"))
    disk = status.get("disk")
    if disk is not None and disk["free_bytes"] is not None:
        free, total = disk["free_bytes"] / (1 << 20), disk["total_bytes"] / (1 << 20)
        failed = f"  {disk['write_failures']} failed writes" if disk["write_failures"] else ""
        print(f"disk: {free:.0f} MiB free of {total:.0f} MiB{failed}")
    print("peers:")
    for member, peer in status.get("peers", {}).items():
        if peer.get("refusing"):
            state = f"REFUSES US ({peer['last_error']})"
        elif peer["reachable"]:
            state = "reachable"
        else:
            state = f"UNREACHABLE ({peer['last_error']})"
        print(f"  {member:20} {state}")
    for alert in status.get("alerts", []):
        print(f"ALERT: {alert}")
    return EXIT_OK


def _behind(status: dict[str, Any]) -> tuple[int, int]:
    """(entries held, entries known to exist) over the other members' logs."""
    logs = [log for log in status["logs"].values() if not log["own"]]
    held = sum(log["size"] for log in logs)
    return held, sum(max(log["size"], log.get("latest_seen", 0)) for log in logs)


def cmd_sync(args: argparse.Namespace) -> int:
    api = client(args)
    api.call("POST", "/v1/sync")
    start = time.monotonic()
    time.sleep(0.5)  # let the round start and learn what the peers hold
    held, known = _behind(api.call("GET", "/v1/status"))
    while held < known and time.monotonic() - start < args.timeout:
        progress(held, known, "entries held")
        time.sleep(0.5)
        held, known = _behind(api.call("GET", "/v1/status"))
    progress(held, known, "entries held")
    caught_up = held >= known
    if args.json:
        print_json({"caught_up": caught_up, "held": held, "known": known})
    elif caught_up:
        print(f"caught up: {held} entries of other members' logs held")
    else:
        print(f"still behind after {args.timeout:.0f} s: {held} of {known} entries held")
    return EXIT_OK if caught_up else EXIT_NODE


def cmd_hash(args: argparse.Namespace) -> int:
    from node.matching.hashing import hash_file

    out: list[dict[str, Any]] = []
    files = files_under(args.files)
    failed = 0
    for done, path in enumerate(files, 1):
        try:
            hashes = hash_file(path, vpdq_fps=args.fps)
        except HashingError as e:
            if len(files) == 1:
                raise
            failed += 1
            print(f"hashmesh: skipped {path}: {e}", file=sys.stderr)
            continue
        out.extend({"file": str(path), **h.to_json()} for h in hashes)
        if len(files) > 1:
            progress(done, len(files), "files hashed")
    if args.json:
        print_json(out)
    else:
        for h in out:
            q = f"  quality={h['quality']}" if h["quality"] is not None else ""
            flag = "  LOW QUALITY" if h["low_quality"] else ""
            print(f"{h['file']}  {shown(h['signal_type'], str(h['value']))}{q}{flag}")
            if "threatexchange_value" in h:
                tx = f"quality={h['threatexchange_quality']}"
                print(f"{h['file']}  pdq:{h['threatexchange_value']}  {tx}  (threatexchange)")
    return EXIT_OK if not failed else EXIT_NODE
