"""`lookup` and `match`: the consortium's view of hashes or files, exact or near-duplicate, as
the node's operator API answers it, with the exit code the match policy gives; and `hash`,
which hashes files locally and sends nothing.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from node.cli.common import (
    EXIT_NODE,
    EXIT_OK,
    UsageError,
    client,
    parse_hash_arg,
    print_json,
    progress,
    when,
)
from node.cli.file_batches import files_under, hash_files, hits_exit_code, lookup_in_batches, shown
from node.errors import HashingError


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
        line = f"  added by {s['member']} ({s['log']} #{s['index']}) at {when(s['timestamp_ms'])}"
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
            at = when(c["timestamp_ms"])
            lines.append(f"    confirmed by {c['member']} at {at}: {c['reason_code']}{state}")
        for c in s.get("corroborations", []):
            near = f" (distance {c['distance']})" if c["distance"] else ""
            lines.append(f"    corroborated by {c['member']}{near} at {when(c['timestamp_ms'])}")
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
