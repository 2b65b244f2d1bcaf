"""Checking an import file: every row read (node.formats.import_readers) is checked as the
node would check it — signal type, hash syntax, labels in the roster's taxonomy, an add's own
limits — and duplicates are left out, so a file with bad rows is refused before any is sent.
No network and no node.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

from node.formats.exchange import IMPORT_FORMATS, ExchangeError
from node.formats.import_readers import (
    RawRow,
    RowNote,
    read_csv,
    read_jsonl,
    read_te_csv,
    read_te_file,
)
from protocol.entries import Add
from protocol.errors import ValidationError
from protocol.signal_names import SIGNAL_TYPES
from protocol.signals import parse_value, value_text


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
        raws: Iterable[RawRow | RowNote] = read_csv(text)
    elif fmt == "te-csv":
        raws = read_te_csv(text, taxonomy, ignored)
    elif fmt == "te-file":
        raws = read_te_file(text, te_signal_type)
    elif fmt == "jsonl":
        raws = read_jsonl(text)
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


def _check(raw: RawRow, taxonomy: Collection[str], defaults: ImportDefaults) -> ImportRow:
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
