"""Reading the import formats (node.formats.exchange): each reader turns a file's text into
raw rows, each with the line it starts on, or notes of rows that cannot be read. Nothing is
checked against the protocol here; node.formats.import_check does that.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from node.formats.exchange import TE_NOT_IMPORTED, TE_POSITIVE, ExchangeError, first_incident
from protocol.errors import ValidationError
from protocol.signal_names import TE_TO_OURS, TE_WITHOUT_EQUIVALENT
from protocol.signals import value_text
from protocol.te_text import vpdq_from_te_text


@dataclass(frozen=True, slots=True)
class RowNote:
    """A row that is bad (a problem) or deliberately left out (skipped), and why."""

    line: int
    message: str


@dataclass(frozen=True, slots=True)
class RawRow:
    """A row as read, before checking."""

    line: int
    signal_type: str
    value: str
    labels: tuple[str, ...] = ()
    incident: str | None = None
    reference: str | None = None
    skip_reason: str | None = None
    unsupported_type: str | None = None  # a threatexchange type we have no equivalent for


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


def read_csv(text: str) -> Iterator[RawRow | RowNote]:
    for line, record in _dict_rows(text, ("signal_type", "value")):
        note = _too_many(line, record)
        if note is not None:
            yield note
            continue
        labels = tuple(x.strip() for x in (record.get("labels") or "").split(";") if x.strip())
        yield RawRow(
            line,
            (record.get("signal_type") or "").strip(),
            record.get("value") or "",
            labels,
            (record.get("incident") or "").strip() or None,
            (record.get("reference") or "") or None,
        )


def _te_type(name: str) -> str | None:
    return TE_TO_OURS.get(name) or (name if name in ("md5", "sha256") else None)


def _te_row(line: int, name: str, value: str, labels: tuple[str, ...] = ()) -> RawRow | RowNote:
    """A row of a threatexchange type: ours, skipped for want of an equivalent, or a problem.
    A vPDQ in threatexchange's text form becomes ours here."""
    ours = _te_type(name)
    if ours is None and name in TE_WITHOUT_EQUIVALENT:
        reason = f"python-threatexchange type {name} has no equivalent here"
        return RawRow(line, name, value, skip_reason=reason, unsupported_type=name)
    if ours is None:
        return RowNote(line, f"python-threatexchange signal type {name!r} has no equivalent")
    if ours == "vpdq" and value.lstrip().startswith("["):
        try:
            value = value_text("vpdq", vpdq_from_te_text(value))
        except ValidationError as e:
            return RowNote(line, str(e))
    return RawRow(line, ours, value, labels)


def read_te_csv(
    text: str, taxonomy: Collection[str], ignored: set[str]
) -> Iterator[RawRow | RowNote]:
    for line, record in _dict_rows(text, ("signal_type", "signal_str")):
        note = _too_many(line, record)
        if note is not None:
            yield note
            continue
        name = (record.get("signal_type") or "").strip()
        row = _te_row(line, name, record.get("signal_str") or "")
        if not isinstance(row, RawRow) or row.unsupported_type is not None:
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
        yield RawRow(line, row.signal_type, row.value, labels, skip_reason=skip)


def read_te_file(text: str, signal_type: str | None) -> Iterator[RawRow | RowNote]:
    for number, raw_line in enumerate(text.removeprefix("\ufeff").splitlines(), 1):
        stripped = raw_line.strip()
        if not stripped:
            continue
        name, value = signal_type, stripped
        if name is None:
            name, _, value = stripped.partition(" ")
        yield _te_row(number, name, value.strip())


def read_jsonl(text: str) -> Iterator[RawRow | RowNote]:
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
        yield RawRow(
            number,
            fields[0] or "",
            fields[1] or "",
            tuple(labels),
            fields[2] or first_incident(obj),
            reference,
            skip,
        )
