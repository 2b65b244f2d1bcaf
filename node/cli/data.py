"""`hashmesh import` and `hashmesh export`: hash lists in and out of the consortium.

import checks every row of the file first (signal type, hash syntax, labels in the roster's
taxonomy, incident ids) and sends nothing if any row is bad; then it submits in batches,
showing progress on stderr. export streams `GET /v1/export` from the node and writes CSV,
python-threatexchange's CSV, JSON lines or a STIX 2.1 bundle. Formats: node.formats.exchange and
node.formats.stix.

Only the arguments live here; the bodies are imported when their command runs:
node.cli.hash_import and node.cli.hash_export.
"""

from __future__ import annotations

from pathlib import Path

from node.cli.common import Command, Subcommands, add_json_arg, add_node_arg
from node.formats.exchange import IMPORT_FORMATS
from protocol.signal_names import SIGNAL_TYPES, TE_TO_OURS

EXPORT_FORMATS: tuple[str, ...] = ("csv", "te-csv", "jsonl", "stix")
#: Hashes a request of `import` by default; node.cli.hash_import checks --batch.
DEFAULT_BATCH = 500


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
    p.set_defaults(func=Command("node.cli.hash_import", "cmd_import"))

    p = sub.add_parser("export", help="write the consortium's active hashes to a file")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    p.add_argument("--out", type=Path, help="file to write (default: standard output)")
    p.add_argument("--include-withdrawn", action="store_true", help="hashes nobody stands by too")
    p.add_argument(
        "--type", action="append", default=[], choices=SIGNAL_TYPES, help="only these types"
    )
    add_node_arg(p)
    add_json_arg(p)
    p.set_defaults(func=Command("node.cli.hash_export", "cmd_export"))
