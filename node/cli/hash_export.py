"""`hashmesh export`: stream `GET /v1/export` from the node and write the consortium's hashes
as CSV, python-threatexchange's CSV, JSON lines or a STIX 2.1 bundle (node.formats); a file is
replaced only once fully written, and nothing is written if the stream is cut short.
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

from node.cli.common import EXIT_OK, UsageError, client, print_json
from node.errors import NodeError
from node.formats.export_writers import write_csv, write_jsonl, write_te_csv

if TYPE_CHECKING:
    from node.cli.operator_client import OperatorClient


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
