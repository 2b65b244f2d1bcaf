"""Writing the export formats (node.formats.exchange) from hash views — the JSON shape of
`GET /v1/export`, one object per hash as node.formats.json_views.view_json builds it: our CSV,
python-threatexchange's CSV, and JSON lines with each hash's provenance. STIX 2.1 output
lives in node.formats.stix.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from typing import Any, TextIO

from node.formats.exchange import CSV_HEADER, TE_CSV_HEADER, first_incident
from protocol.signal_names import OURS_TO_TE
from protocol.te_text import vpdq_to_te_text


def write_csv(views: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Our CSV; it imports back as it is. Provenance needs jsonl or stix."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    count = 0
    for view in views:
        incident = first_incident(view) or ""
        writer.writerow(
            [view["signal_type"], view["value"], ";".join(view["labels"]), incident, ""]
        )
        count += 1
    return count


def te_category(view: dict[str, Any]) -> str:
    """The aggregate opinion python-threatexchange would give: disputed, withdrawn or positive."""
    if not view["active"]:
        return "NEGATIVE_CLASS"
    disputed = any(s["disputes"] for s in view["submissions"] if s.get("active", True))
    return "DISPUTED" if disputed else "POSITIVE_CLASS"


def write_te_csv(views: Iterable[dict[str, Any]], out: TextIO, collab: str) -> tuple[int, int]:
    """`threatexchange dataset -P --csv`'s columns; (written, left out for want of a type)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TE_CSV_HEADER)
    written = left_out = 0
    for view in views:
        name = OURS_TO_TE.get(view["signal_type"])
        if name is None:
            left_out += 1
            continue
        value = view["value"]
        if name == "vpdq":
            value = vpdq_to_te_text(bytes.fromhex(value))
        writer.writerow([name, value, collab, te_category(view), " ".join(view["labels"])])
        written += 1
    return written, left_out


def jsonl_record(view: dict[str, Any]) -> dict[str, Any]:
    """One hash with its provenance: every member's add, and what became of it."""
    return {
        "signal_type": view["signal_type"],
        "value": view["value"],
        "active": view["active"],
        "labels": list(view["labels"]),
        "flags": list(view.get("flags", [])),
        "incident": first_incident(view),
        "submissions": [
            {
                "member": s["member"],
                "log": s["log"],
                "index": s["index"],
                "timestamp_ms": s["timestamp_ms"],
                "labels": s["labels"],
                "incident": s["incident"],
                "retracted": s["retraction"] is not None,
                "retraction": s["retraction"],
                "disputes": s["disputes"],
                # A node older than the flags gives none (node/matching/policy.py).
                "standing": s.get("standing"),
                # A node older than confirmations gives neither (docs/agreement.md).
                "confirmations": s.get("confirmations", []),
                "corroborations": s.get("corroborations", []),
            }
            for s in view["submissions"]
        ],
        "agreement": view.get("agreement"),
    }


def write_jsonl(views: Iterable[dict[str, Any]], out: TextIO) -> int:
    count = 0
    for view in views:
        out.write(json.dumps(jsonl_record(view), ensure_ascii=False, sort_keys=True) + "\n")
        count += 1
    return count
