"""`hashmesh import`: check every row of a hash list first (node.formats.import_check) and
send nothing if any row is bad; then submit in batches, skipping hashes our own log already
holds (so a rerun after a failure adds only the rest), with progress on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    client,
    node_config,
    print_json,
    progress,
)
from node.errors import ConfigError, NodeError, RequestError
from node.formats.exchange import ExchangeError
from node.formats.import_check import ImportDefaults, ImportRow, ParsedImport, parse_import
from protocol.errors import ProtocolError
from protocol.signal_names import TE_TO_OURS

if TYPE_CHECKING:
    from node.cli.operator_client import OperatorClient

#: The operator API takes at most this many hashes per request (node.http.operator_api.MAX_LOOKUP).
MAX_BATCH = 10_000
#: Problems listed in the text output; --json lists them all.
SHOWN_PROBLEMS = 50


def _read_text(path: Path) -> str:
    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e}") from e
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(f"{path} is not UTF-8 text: {e}") from e


def _taxonomy(args: argparse.Namespace) -> tuple[str, ...]:
    """The labels the roster allows: the node's current roster, or the pinned one offline."""
    from node.cli.operator_client import NodeUnreachableError
    from protocol.roster import SignedRoster

    try:
        raw = client(args).call("GET", "/v1/roster")
    except NodeUnreachableError:
        if not args.dry_run:
            raise
        try:
            raw = node_config(args).roster_path.read_bytes()
        except OSError as e:
            raise ConfigError(f"no node answered and no pinned roster: {e}") from e
        print(
            "hashmesh: node unreachable; checking labels against the pinned roster", file=sys.stderr
        )
    try:
        return SignedRoster.decode(bytes(raw)).roster.taxonomy
    except (ProtocolError, TypeError) as e:
        raise NodeError(f"the node's roster does not decode: {e}") from e


def _report(parsed: ParsedImport, fmt: str, dry_run: bool) -> dict[str, Any]:
    return {
        "format": fmt,
        "dry_run": dry_run,
        "valid": len(parsed.rows),
        "problems": [{"line": n.line, "error": n.message} for n in parsed.problems],
        "skipped": [{"line": n.line, "reason": n.message} for n in parsed.skipped],
        "ignored_tags": list(parsed.ignored_tags),
        "unsupported_types": dict(parsed.unsupported),
        "submitted": 0,
        "already_held": 0,
        "entries": None,
    }


def cmd_import(args: argparse.Namespace) -> int:
    if not 1 <= args.batch <= MAX_BATCH:
        raise UsageError(f"--batch is 1..{MAX_BATCH}")
    if args.signal_type and args.format != "te-file":
        raise UsageError("--signal-type applies to --format te-file only")
    text = _read_text(args.file)
    defaults = ImportDefaults(tuple(args.label), args.incident)
    try:
        parsed = parse_import(
            text, args.format, _taxonomy(args), defaults, TE_TO_OURS.get(args.signal_type or "")
        )
    except ExchangeError as e:
        raise UsageError(f"{args.file}: {e}") from e
    rows = list(parsed.rows)
    report = _report(parsed, args.format, args.dry_run)
    if parsed.problems:
        _finish(args, report, f"{len(parsed.problems)} bad row(s); nothing was submitted")
        return EXIT_USAGE
    if args.dry_run or not rows:
        _finish(args, report, f"{len(rows)} hash(es) would be submitted" if args.dry_run else "")
        return EXIT_OK
    api = client(args)
    own_log = node_config(args).origin
    refs: list[dict[str, Any]] = []
    already = 0
    for start in range(0, len(rows), args.batch):
        batch = rows[start : start + args.batch]
        try:
            # Hashes our own log already holds (a rerun after a failure) are not added twice.
            held = _held_by(api, batch, own_log)
            items = [r.item() for r, h in zip(batch, held, strict=True) if not h]
            already += len(batch) - len(items)
            if items:
                refs.extend(api.call("POST", "/v1/submit", {"items": items})["entries"])
        except NodeError as e:
            raise RequestError(
                f"{e}; {len(refs)} of {len(rows)} hashes were submitted before line "
                f"{batch[0].line}; run the same command again to add the rest"
            ) from e
        progress(start + len(batch), len(rows), "hashes", "import")
    report["submitted"] = len(refs)
    report["already_held"] = already
    if refs:
        report["entries"] = {
            "log": refs[0]["log"],
            "first_index": refs[0]["index"],
            "last_index": refs[-1]["index"],
        }
    summary = f"submitted {len(refs)} hash(es)"
    if refs:
        summary += f" as {refs[0]['log']} #{refs[0]['index']}..#{refs[-1]['index']}"
    if already:
        summary += f"; {already} already in our log"
    _finish(args, report, summary)
    return EXIT_OK


def _held_by(api: OperatorClient, rows: list[ImportRow], own_log: str) -> list[bool]:
    """For each row, whether our own log already has an active add of that hash."""
    hashes = [{"signal_type": r.signal_type, "value": r.value} for r in rows]
    results = api.call("POST", "/v1/lookup", {"hashes": hashes})["results"]
    return [
        any(s["log"] == own_log and s["active"] for s in result["submissions"])
        for result in results
    ]


def _finish(args: argparse.Namespace, report: dict[str, Any], summary: str) -> None:
    if args.json:
        print_json(report)
        return
    for note in report["problems"][:SHOWN_PROBLEMS]:
        print(f"{args.file}:{note['line']}: {note['error']}", file=sys.stderr)
    if len(report["problems"]) > SHOWN_PROBLEMS:
        print(
            f"... and {len(report['problems']) - SHOWN_PROBLEMS} more (see --json)", file=sys.stderr
        )
    if report["skipped"]:
        print(
            f"skipped {len(report['skipped'])} row(s) (duplicates, not positive, or of a type"
            " hashmesh lacks)",
            file=sys.stderr,
        )
    if report["unsupported_types"]:
        counts = ", ".join(f"{n} {t}" for t, n in report["unsupported_types"].items())
        print(f"rows of python-threatexchange types hashmesh lacks: {counts}", file=sys.stderr)
    if report["ignored_tags"]:
        print(
            f"tags that are not labels, ignored: {' '.join(report['ignored_tags'])}",
            file=sys.stderr,
        )
    if summary:
        print(summary, file=sys.stderr if report["problems"] else sys.stdout)
