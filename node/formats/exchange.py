"""Bulk exchange formats: reading hash lists to import and writing the consortium's hashes out.

No network and no node: parsing turns a file's text into checked rows (or problems, each with
its line number), and writers turn hash views — the JSON shape of `GET /v1/export`, one
object per hash as `node.formats.json_views.view_json` builds it — into text.

Formats:
  csv       ours: signal_type,value,labels,incident,reference (labels separated by ';')
  te-csv    python-threatexchange's `threatexchange dataset -P --csv`:
            signal_type,signal_str,collab,category,tags (tags separated by spaces)
  te-file   python-threatexchange's local file exchange: one `signal_type signal` per line
In both te- formats vPDQ is in threatexchange's text form (protocol/te_text.py), and rows of
threatexchange types we have no equivalent for are skipped and counted by type, not errors.
  jsonl     one JSON object per line (ours; what `export --format jsonl` writes imports back)
STIX 2.1 output lives in node.formats.stix.

This module holds what the formats share and the command line offers as choices (their
names, columns, the categories imported, the error of an unreadable file) and imports nothing
heavy. Reading and checking a file: node.formats.import_readers and node.formats.import_check;
writing one: node.formats.export_writers.
"""

from __future__ import annotations

from typing import Any

from node.errors import NodeError

IMPORT_FORMATS: tuple[str, ...] = ("csv", "te-csv", "te-file", "jsonl")
CSV_HEADER: tuple[str, ...] = ("signal_type", "value", "labels", "incident", "reference")
TE_CSV_HEADER: tuple[str, ...] = ("signal_type", "signal_str", "collab", "category", "tags")

#: Opinion categories (SignalOpinionCategory, AggregateSignalOpinionCategory, and the older
#: names) of rows we import: a member's log holds content it removed, so only hashes the source
#: calls positive go in. An empty category is taken as positive (signals-only listings).
TE_POSITIVE: frozenset[str] = frozenset({"", "POSITIVE_CLASS", "TRUE_POSITIVE"})
TE_NOT_IMPORTED: frozenset[str] = frozenset(
    {"NEGATIVE_CLASS", "FALSE_POSITIVE", "INVESTIGATION_SEED", "WORTH_INVESTIGATING", "DISPUTED"}
)


class ExchangeError(NodeError):
    """A file that cannot be read as the format asked for (not one bad row: the whole file)."""


def first_incident(view: dict[str, Any]) -> str | None:
    """The incident of the first add that names one, in a hash view."""
    for s in view.get("submissions", []):
        if isinstance(s, dict) and isinstance(s.get("incident"), str):
            return str(s["incident"])
    return None
