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
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

from node.errors import NodeError
from protocol.entries import Add
from protocol.errors import ValidationError
from protocol.signals import SIGNAL_TYPES, parse_value, value_text
from protocol.te_text import (
    OURS_TO_TE,
    TE_TO_OURS,
    TE_WITHOUT_EQUIVALENT,
    vpdq_from_te_text,
    vpdq_to_te_text,
)

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


@dataclass(frozen=True, slots=True)
class ImportRow:
    """One checked hash to submit; `line` is where it starts in the file (1-based)."""

    line: int
    signal_type: str
    value: str  # the canonical text form: lowercase hex, or the URL as given
    labels: tuple[str, ...] = ()
    incident: str | None = None
    reference: str | None = None

    def item(self) -> dict[str, Any]:
        """The operator API's submit item."""
        item: dict[str, Any] = {
            "signal_type": self.signal_type,
            "value": self.value,
            "labels": list(self.labels),
        }
        if self.incident is not None:
            item["incident"] = self.incident
        if self.reference is not None:
            item["reference"] = self.reference
        return item


@dataclass(frozen=True, slots=True)
class RowNote:
    """A row that is bad (a problem) or deliberately left out (skipped), and why."""

    line: int
    message: str


@dataclass(frozen=True, slots=True)
class ImportDefaults:
    """What the command line adds to every row: extra labels, an incident for rows without."""

    labels: tuple[str, ...] = ()
    incident: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedImport:
    rows: tuple[ImportRow, ...]
    problems: tuple[RowNote, ...]
    skipped: tuple[RowNote, ...]
    ignored_tags: tuple[str, ...] = field(default=())  # te-csv tags outside the taxonomy
    #: (threatexchange type, rows) skipped for want of an equivalent type, by type name.
    unsupported: tuple[tuple[str, int], ...] = field(default=())


@dataclass(frozen=True, slots=True)
class _Raw:
    """A row as read, before checking."""

    line: int
    signal_type: str
    value: str
    labels: tuple[str, ...] = ()
    incident: str | None = None
    reference: str | None = None
    skip_reason: str | None = None
    unsupported_type: str | None = None  # a threatexchange type we have no equivalent for


def parse_import(
    text: str,
    fmt: str,
    taxonomy: Collection[str],
    defaults: ImportDefaults = ImportDefaults(),  # frozen, so sharing is safe
    te_signal_type: str | None = None,
) -> ParsedImport:
    """Read and check every row; nothing is sent. Raises ExchangeError for an unreadable file."""
    ignored: set[str] = set()
    if fmt == "csv":
        raws: Iterable[_Raw | RowNote] = _read_csv(text)
    elif fmt == "te-csv":
        raws = _read_te_csv(text, taxonomy, ignored)
    elif fmt == "te-file":
        raws = _read_te_file(text, te_signal_type)
    elif fmt == "jsonl":
        raws = _read_jsonl(text)
    else:
        raise ExchangeError(f"unknown import format {fmt!r} (one of {', '.join(IMPORT_FORMATS)})")
    rows: list[ImportRow] = []
    problems: list[RowNote] = []
    skipped: list[RowNote] = []
    first_line: dict[tuple[str, str], int] = {}
    unsupported: dict[str, int] = {}
    for raw in raws:
        if isinstance(raw, RowNote):
            problems.append(raw)
            continue
        if raw.unsupported_type is not None:
            unsupported[raw.unsupported_type] = unsupported.get(raw.unsupported_type, 0) + 1
        if raw.skip_reason is not None:
            skipped.append(RowNote(raw.line, raw.skip_reason))
            continue
        try:
            row = _check(raw, taxonomy, defaults)
        except ValidationError as e:
            problems.append(RowNote(raw.line, str(e)))
            continue
        key = (row.signal_type, row.value)
        if key in first_line:
            skipped.append(RowNote(row.line, f"same hash as line {first_line[key]}"))
            continue
        first_line[key] = row.line
        rows.append(row)
    return ParsedImport(
        tuple(rows),
        tuple(problems),
        tuple(skipped),
        tuple(sorted(ignored)),
        tuple(sorted(unsupported.items())),
    )


def _check(raw: _Raw, taxonomy: Collection[str], defaults: ImportDefaults) -> ImportRow:
    """The same checks the node makes, so a file with bad rows is refused before any is sent."""
    if raw.signal_type not in SIGNAL_TYPES:
        raise ValidationError(
            f"unknown signal type {raw.signal_type!r} (one of {', '.join(SIGNAL_TYPES)})"
        )
    text = raw.value.strip()
    if raw.signal_type != "url":
        text = text.lower()
    value = parse_value(raw.signal_type, text)
    labels = tuple(sorted(set(raw.labels) | set(defaults.labels)))
    unknown = [x for x in labels if x not in taxonomy]
    if unknown:
        raise ValidationError(f"labels not in the consortium's taxonomy: {', '.join(unknown)}")
    incident = raw.incident or defaults.incident
    reference = raw.reference or None
    # Add's own checks: label and incident syntax, how many labels, reference length.
    Add(
        0,
        raw.signal_type,
        value,
        labels,
        incident,
        None if reference is None else reference.encode(),
    )
    return ImportRow(
        raw.line, raw.signal_type, value_text(raw.signal_type, value), labels, incident, reference
    )


def _dict_rows(text: str, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """CSV records as dicts with the line each starts on; a header lacking a column is fatal."""
    reader = csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = reader.fieldnames
    if header is None:
        return
    missing = [c for c in required if c not in header]
    if missing:
        raise ExchangeError(
            f"line 1: the header {','.join(header)} lacks {', '.join(missing)} "
            f"(expected {','.join(required)})"
        )
    line = reader.line_num + 1
    try:
        for record in reader:
            yield line, record
            line = reader.line_num + 1
    except csv.Error as e:
        raise ExchangeError(f"line {reader.line_num}: {e}") from e


def _too_many(line: int, record: dict[str, str]) -> RowNote | None:
    # DictReader puts fields beyond the header under the key None (typing says str).
    extra = record.get(None)  # type: ignore[call-overload]
    return RowNote(line, f"{len(extra)} more field(s) than the header") if extra else None


def _read_csv(text: str) -> Iterator[_Raw | RowNote]:
    for line, record in _dict_rows(text, ("signal_type", "value")):
        note = _too_many(line, record)
        if note is not None:
            yield note
            continue
        labels = tuple(x.strip() for x in (record.get("labels") or "").split(";") if x.strip())
        yield _Raw(
            line,
            (record.get("signal_type") or "").strip(),
            record.get("value") or "",
            labels,
            (record.get("incident") or "").strip() or None,
            (record.get("reference") or "") or None,
        )


def _te_type(name: str) -> str | None:
    return TE_TO_OURS.get(name) or (name if name in ("md5", "sha256") else None)


def _te_row(line: int, name: str, value: str, labels: tuple[str, ...] = ()) -> _Raw | RowNote:
    """A row of a threatexchange type: ours, skipped for want of an equivalent, or a problem.
    A vPDQ in threatexchange's text form becomes ours here."""
    ours = _te_type(name)
    if ours is None and name in TE_WITHOUT_EQUIVALENT:
        reason = f"python-threatexchange type {name} has no equivalent here"
        return _Raw(line, name, value, skip_reason=reason, unsupported_type=name)
    if ours is None:
        return RowNote(line, f"python-threatexchange signal type {name!r} has no equivalent")
    if ours == "vpdq" and value.lstrip().startswith("["):
        try:
            value = value_text("vpdq", vpdq_from_te_text(value))
        except ValidationError as e:
            return RowNote(line, str(e))
    return _Raw(line, ours, value, labels)


def _read_te_csv(
    text: str, taxonomy: Collection[str], ignored: set[str]
) -> Iterator[_Raw | RowNote]:
    for line, record in _dict_rows(text, ("signal_type", "signal_str")):
        note = _too_many(line, record)
        if note is not None:
            yield note
            continue
        name = (record.get("signal_type") or "").strip()
        row = _te_row(line, name, record.get("signal_str") or "")
        if not isinstance(row, _Raw) or row.unsupported_type is not None:
            yield row
            continue
        category = (record.get("category") or "").strip().upper()
        skip = None
        if category in TE_NOT_IMPORTED:
            skip = f"category {category}: only positive-class hashes are imported"
        elif category not in TE_POSITIVE:
            yield RowNote(line, f"unknown category {category!r}")
            continue
        # Tags are free text in ThreatExchange; those naming one of our labels become labels.
        tags = (record.get("tags") or "").split()
        ignored.update(t for t in tags if t not in taxonomy)
        labels = tuple(t for t in tags if t in taxonomy)
        yield _Raw(line, row.signal_type, row.value, labels, skip_reason=skip)


def _read_te_file(text: str, signal_type: str | None) -> Iterator[_Raw | RowNote]:
    for number, raw_line in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        stripped = raw_line.strip()
        if not stripped:
            continue
        name, value = signal_type, stripped
        if name is None:
            name, _, value = stripped.partition(" ")
        yield _te_row(number, name, value.strip())


def _read_jsonl(text: str) -> Iterator[_Raw | RowNote]:
    for number, raw_line in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        if not raw_line.strip():
            continue
        try:
            obj = json.loads(raw_line)
        except ValueError as e:
            yield RowNote(number, f"not JSON: {e}")
            continue
        if not isinstance(obj, dict):
            yield RowNote(number, "each line is a JSON object")
            continue
        if "signal_type" not in obj and obj.get("end") is True:
            continue  # the export stream's closing line
        labels = obj.get("labels", [])
        if isinstance(labels, str):
            labels = [x for x in labels.split(";") if x]
        fields = (obj.get("signal_type"), obj.get("value"), obj.get("incident"))
        reference = obj.get("reference")
        if (
            not isinstance(labels, list)
            or not all(isinstance(x, str) for x in labels)
            or not all(isinstance(x, str | None) for x in (*fields, reference))
        ):
            yield RowNote(
                number, "signal_type, value, incident, reference are strings; labels a list"
            )
            continue
        skip = None if obj.get("active", True) else "withdrawn by every member that added it"
        yield _Raw(
            number,
            fields[0] or "",
            fields[1] or "",
            tuple(labels),
            fields[2] or _first_incident(obj),
            reference,
            skip,
        )


def _first_incident(view: dict[str, Any]) -> str | None:
    for s in view.get("submissions", []):
        if isinstance(s, dict) and isinstance(s.get("incident"), str):
            return str(s["incident"])
    return None


# Writing.


def write_csv(views: Iterable[dict[str, Any]], out: TextIO) -> int:
    """Our CSV; it imports back as it is. Provenance needs jsonl or stix."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    count = 0
    for view in views:
        incident = _first_incident(view) or ""
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
        "incident": _first_incident(view),
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
