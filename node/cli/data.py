"""`hashmesh import` and `hashmesh export`: hash lists in and out of the consortium.

import checks every row of the file first (signal type, hash syntax, labels in the roster's
taxonomy, incident ids) and sends nothing if any row is bad; then it submits in batches,
showing progress on stderr. export streams `GET /v1/export` from the node and writes CSV,
python-threatexchange's CSV, JSON lines or a STIX 2.1 bundle. Formats: node.formats.exchange and
node.formats.stix.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from node.cli.common import (
    EXIT_OK,
    EXIT_USAGE,
    Subcommands,
    UsageError,
    add_json_arg,
    add_node_arg,
    client,
    node_config,
    print_json,
    progress,
)
from node.errors import ConfigError, NodeError, RequestError
from node.formats.exchange import (
    IMPORT_FORMATS,
    ExchangeError,
    ImportDefaults,
    ImportRow,
    ParsedImport,
    parse_import,
    write_csv,
    write_jsonl,
    write_te_csv,
)
from protocol.errors import ProtocolError
from protocol.signals import SIGNAL_TYPES
from protocol.te_text import TE_TO_OURS

if TYPE_CHECKING:
    from node.cli.operator_client import OperatorClient

EXPORT_FORMATS: tuple[str, ...] = ("csv", "te-csv", "jsonl", "stix")
DEFAULT_BATCH = 500
#: The operator API takes at most this many hashes per request (node.http.operator_api.MAX_LOOKUP).
MAX_BATCH = 10_000
#: Problems listed in the text output; --json lists them all.
SHOWN_PROBLEMS = 50


def register(sub: Subcommands) -> None:
    p = sub.add_parser(
        "import", help="submit a file of hashes (checked first; nothing sent if bad)"
    )
    p.add_argument("file", type=Path, help="the hash list ('-' reads standard input)")
    p.add_argument("--format", required=True, choices=IMPORT_FORMATS)
    p.add_argument("--label", action="append", default=[], help="add this label to every hash")
    p.add_argument("--incident", help="incident id for rows that give none")
    p.add_argument(
        "--signal-type",
        choices=sorted(TE_TO_OURS),
        help="te-file only: the type of every line, for files of bare hashes",
    )
    p.add_argument("--dry-run", action="store_true", help="check the file; submit nothing")
    p.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="hashes per request")
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("export", help="write the consortium's active hashes to a file")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    p.add_argument("--include-withdrawn", action="store_true", help="hashes nobody stands by too")
    p.add_argument(
        "--type", action="append", default=[], choices=SIGNAL_TYPES, help="only these types"
    )
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=cmd_export)


# Import.


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


# Export.


def _views(api: OperatorClient, args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    query = []
    if args.type:
        query.append("types=" + ",".join(dict.fromkeys(args.type)))
    if args.include_withdrawn:
        query.append("include_withdrawn=1")
    path = "/v1/export" + ("?" + "&".join(query) if query else "")
    views: list[dict[str, Any]] = []
    end: dict[str, Any] = {}
    for line in api.lines(path):
        try:
            item = json.loads(line)
        except ValueError as e:
            raise NodeError(f"the node's export ends mid-line: {e}") from e
        if item.get("end") is True:
            end = item
            break
        views.append(item)
        if len(views) % 1000 == 0:
            print(f"\rexport: {len(views)} hashes received", end="", file=sys.stderr, flush=True)
    if views:
        print(f"\rexport: {len(views)} hashes received", file=sys.stderr, flush=True)
    if end.get("count") != len(views):
        raise NodeError("the node's export was cut short; nothing was written")
    yield from views


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    """Standard output, or a file replaced only once fully written."""
    if path is None:
        yield sys.stdout
        return
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            yield out
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def cmd_export(args: argparse.Namespace) -> int:
    if args.json and args.out is None:
        raise UsageError("--json prints a summary; give --out for the data")
    if args.include_withdrawn and args.format == "csv":
        # Our CSV cannot mark a hash withdrawn, and importing it would share it again.
        raise UsageError("--include-withdrawn needs a format that marks them: jsonl, stix, te-csv")
    if args.out is not None and not args.out.resolve().parent.is_dir():
        # Said before the node spends a minute exporting what could not be written.
        raise UsageError(f"--out {args.out}: no directory {args.out.resolve().parent}")
    api = client(args)
    status = api.call("GET", "/v1/status")
    consortium = str(status["roster"]["consortium"])
    views = list(_views(api, args))
    left_out = 0
    with _output(args.out) as out:
        if args.format == "csv":
            count = write_csv(views, out)
        elif args.format == "te-csv":
            count, left_out = write_te_csv(views, out, consortium)
        elif args.format == "jsonl":
            count = write_jsonl(views, out)
        else:
            from node.formats.stix import write_stix

            count = write_stix(views, out, consortium)
    summary = {"format": args.format, "count": count, "left_out": left_out, "out": str(args.out)}
    if args.json:
        print_json(summary)
    else:
        note = f" ({left_out} of a type python-threatexchange lacks left out)" if left_out else ""
        print(f"export: {count} hash(es){note}", file=sys.stderr)
    return EXIT_OK
