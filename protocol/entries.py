"""Log entries: one per action by a member (add, retract, dispute, confirm) and their canonical
bytes.

Layouts (msgpack arrays, see docs/protocol.md):
  add      [1, 0, timestamp_ms, signal_type, value, labels, incident|nil, reference|nil]
  retract  [1, 1, timestamp_ms, [log_origin, index], reason]
  dispute  [1, 2, timestamp_ms, [log_origin, index], reason_code, text]
  confirm  [1, 3, timestamp_ms, [log_origin, index], reason_code, text]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

from protocol import codec
from protocol.errors import DecodeError, ValidationError
from protocol.reason_codes import CONFIRM_REASONS, DISPUTE_REASONS
from protocol.signal_names import SIGNAL_TYPES
from protocol.signals import MAX_URL_BYTES, MAX_VPDQ_FRAMES, VPDQ_FRAME, validate_value

ENTRY_VERSION = 1
KIND_ADD, KIND_RETRACT, KIND_DISPUTE, KIND_CONFIRM = 0, 1, 2, 3
MAX_ENTRY_BYTES = MAX_VPDQ_FRAMES * VPDQ_FRAME.size + 4096
MAX_LABELS = 16
MAX_REFERENCE = 256
MAX_TEXT = 1024
MAX_TIMESTAMP_MS = 2**53
MAX_ORIGIN = 128

_LABEL = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
#: Label sets already found valid, each mapped to itself (a plain dict, emptied when full: a
#: cache, never a bound). The decoder's adds share the remembered tuple, so a million
#: entries of one label set hold one copy of it, not a million.
_VALID_LABELS: dict[tuple[str, ...], tuple[str, ...]] = {}
MAX_REMEMBERED_LABEL_SETS = 1024
#: Each signal type's one str object, shared by the decoder's adds (as label sets are).
_SIGNAL_TYPE_OBJECTS = {name: name for name in SIGNAL_TYPES}
_INCIDENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")
#: Incident ids already found valid (a cache like _VALID_LABELS: few incidents, many entries).
_VALID_INCIDENTS: set[str] = set()
MAX_REMEMBERED_INCIDENTS = 4096


@dataclass(frozen=True, slots=True)
class EntryRef:
    """Where an entry lives: the origin of its log and its index there."""

    log: str
    index: int


@dataclass(frozen=True, slots=True)
class Add:
    """The origin removed content with this hash."""

    timestamp_ms: int
    signal_type: str
    value: bytes | str
    labels: tuple[str, ...] = ()
    incident: str | None = None
    reference: bytes | None = None

    def __post_init__(self) -> None:
        _check_add(
            self.timestamp_ms,
            self.signal_type,
            self.value,
            self.labels,
            self.incident,
            self.reference,
        )


def _check_add(
    timestamp_ms: int,
    signal_type: str,
    value: bytes | str,
    labels: tuple[str, ...],
    incident: str | None,
    reference: bytes | None,
) -> None:
    """Every rule an Add obeys: its __post_init__, and the decoder's fast path."""
    validate_value(signal_type, value)
    _check_labels(labels)
    # Only an exact str is looked up: a subclass could compare equal to what it is not.
    if incident is not None and not (type(incident) is str and incident in _VALID_INCIDENTS):
        _check_incident(incident)
    if reference is not None and len(reference) > MAX_REFERENCE:
        raise ValidationError(f"a reference is at most {MAX_REFERENCE} bytes")
    _check_timestamp(timestamp_ms)


# The slots of Add, set directly by the decoder's fast path once _check_add has passed: the
# same object Add(...) makes, without the frozen dataclass's __init__ (a third of decoding).
_ADD_SLOTS = tuple(
    getattr(Add, name).__set__
    for name in ("timestamp_ms", "signal_type", "value", "labels", "incident", "reference")
)


@dataclass(frozen=True, slots=True)
class Retract:
    """The origin withdraws one of its own earlier entries."""

    timestamp_ms: int
    target: EntryRef
    reason: str = ""

    def __post_init__(self) -> None:
        _check_timestamp(self.timestamp_ms)
        _check_ref(self.target)
        _check_text(self.reason, "reason")


@dataclass(frozen=True, slots=True)
class Dispute:
    """Another member contests an entry, with a reason code and free text."""

    timestamp_ms: int
    target: EntryRef
    reason_code: str
    text: str = ""

    def __post_init__(self) -> None:
        _check_timestamp(self.timestamp_ms)
        _check_ref(self.target)
        if self.reason_code not in DISPUTE_REASONS:
            raise ValidationError(f"dispute reason is one of {', '.join(DISPUTE_REASONS)}")
        _check_text(self.text, "text")


@dataclass(frozen=True, slots=True)
class Confirm:
    """Another member stands behind an entry: it reviewed it and agrees, or removed the same
    content itself (a reason code from CONFIRM_REASONS), with free text."""

    timestamp_ms: int
    target: EntryRef
    reason_code: str
    text: str = ""

    def __post_init__(self) -> None:
        _check_timestamp(self.timestamp_ms)
        _check_ref(self.target)
        if self.reason_code not in CONFIRM_REASONS:
            raise ValidationError(f"confirm reason is one of {', '.join(CONFIRM_REASONS)}")
        _check_text(self.text, "text")


Entry: TypeAlias = Add | Retract | Dispute | Confirm
#: The kinds that refer to another entry (a target), as stored and looked up by target.
Reference: TypeAlias = Retract | Dispute | Confirm


def _check_labels(labels: tuple[str, ...]) -> None:
    cacheable = type(labels) is tuple  # the type says tuple; anything else is just checked
    if cacheable and labels in _VALID_LABELS:
        return  # a consortium uses few label sets: each is checked once, not once an entry
    if len(labels) > MAX_LABELS or any(not _LABEL.fullmatch(x) for x in labels):
        raise ValidationError(f"labels are at most {MAX_LABELS} kebab-case words")
    if list(labels) != sorted(set(labels)):
        raise ValidationError("labels are sorted and unique")
    if cacheable:
        if len(_VALID_LABELS) >= MAX_REMEMBERED_LABEL_SETS:
            _VALID_LABELS.clear()
        _VALID_LABELS[labels] = labels


def _check_incident(incident: str) -> None:
    if not _INCIDENT.fullmatch(incident):
        raise ValidationError("an incident id is 1-64 of A-Z a-z 0-9 . _ : -")
    if type(incident) is str:  # remembered only as an exact str, like label sets
        if len(_VALID_INCIDENTS) >= MAX_REMEMBERED_INCIDENTS:
            _VALID_INCIDENTS.clear()
        _VALID_INCIDENTS.add(incident)


def _check_timestamp(ts: int) -> None:
    if not 0 <= ts <= MAX_TIMESTAMP_MS:
        raise ValidationError("timestamp out of range")


def _check_ref(ref: EntryRef) -> None:
    if not ref.log or len(ref.log.encode()) > MAX_ORIGIN or not 0 <= ref.index < 2**63:
        raise ValidationError("an entry reference is a log origin and an index")


def _check_text(text: str, name: str) -> None:
    if len(text.encode()) > MAX_TEXT:
        raise ValidationError(f"{name} is at most {MAX_TEXT} bytes")


def encode_entry(entry: Entry) -> bytes:
    """The canonical bytes of an entry: these are the Merkle leaf input."""
    head: list[codec.Value] = [ENTRY_VERSION]
    if isinstance(entry, Add):
        labels: list[codec.Value] = list(entry.labels)
        body: list[codec.Value] = [KIND_ADD, entry.timestamp_ms, entry.signal_type, entry.value]
        body += [labels, entry.incident, entry.reference]
    elif isinstance(entry, Retract):
        body = [KIND_RETRACT, entry.timestamp_ms, _ref(entry.target), entry.reason]
    else:
        kind = KIND_DISPUTE if isinstance(entry, Dispute) else KIND_CONFIRM
        body = [kind, entry.timestamp_ms, _ref(entry.target), entry.reason_code, entry.text]
    return codec.encode(head + body)


def _ref(ref: EntryRef) -> list[codec.Value]:
    return [ref.log, ref.index]


def decode_entry(raw: bytes) -> Entry:
    """Strictly decode an entry; any malformed or invalid input raises DecodeError."""
    value, data = codec.unpack(raw, max_bytes=MAX_ENTRY_BYTES, max_items=MAX_LABELS + 8)
    add = _plain_add(value)
    if add is not None:
        codec.check_canonical(value, data)
        return add
    codec.check_types(value)
    codec.check_canonical(value, data)
    return _decode_items(value)  # type: ignore[arg-type]  # check_types passed


def _plain_add(value: object) -> Add | None:
    """The add `value` holds if every item has its exact type and the add is valid; else
    None, and the full path (codec's checks, then `_decode_items`) finds what is wrong. A
    catch-up decodes millions of adds: checking each item's exact type here makes codec's
    walk over the types redundant, and Add's own checks cover every bound the field by
    field path checks. Exact types also keep bools, which are ints, out.
    """
    if type(value) is not list or len(value) != 8:
        return None
    version, kind, ts, signal_type, hashed, labels, incident, reference = value
    if type(version) is not int or version != ENTRY_VERSION:
        return None
    if type(kind) is not int or kind != KIND_ADD or type(ts) is not int:
        return None
    if type(labels) is not list:
        return None
    for label in labels:
        if type(label) is not str:
            return None
    if type(signal_type) is not str or (incident is not None and type(incident) is not str):
        return None
    if reference is not None and type(reference) is not bytes:
        return None
    if type(hashed) is not bytes and type(hashed) is not str:
        return None
    label_set = tuple(labels)
    try:
        _check_add(ts, signal_type, hashed, label_set, incident, reference)
    except ValidationError:
        return None
    # Equal immutable values, shared: an entry in memory holds its own bytes and value only.
    label_set = _VALID_LABELS.get(label_set, label_set)
    signal_type = _SIGNAL_TYPE_OBJECTS.get(signal_type, signal_type)
    add: Add = object.__new__(Add)
    set_ts, set_type, set_value, set_labels, set_incident, set_reference = _ADD_SLOTS
    set_ts(add, ts)
    set_type(add, signal_type)
    set_value(add, hashed)
    set_labels(add, label_set)
    set_incident(add, incident)
    set_reference(add, reference)
    return add


def _decode_items(value: codec.Value) -> Entry:
    """Decode an entry field by field, naming the first field that is wrong."""
    items = codec.as_list(value, "entry")
    if len(items) < 3:
        raise DecodeError("entry: too short")
    if codec.as_int(items[0], "entry version") != ENTRY_VERSION:
        raise DecodeError(f"entry: unsupported version {items[0]!r}")
    kind = codec.as_int(items[1], "entry kind")
    ts = codec.as_int(items[2], "timestamp_ms", 0, MAX_TIMESTAMP_MS)
    try:
        if kind == KIND_ADD:
            codec.as_list(items, "add", 8)
            signal_type = codec.as_str(items[3], "signal_type", 32)
            raw_value = items[4]
            if not isinstance(raw_value, bytes | str):
                raise DecodeError("value: expected bytes or text")
            return Add(
                timestamp_ms=ts,
                signal_type=signal_type,
                value=raw_value,
                labels=codec.as_str_list(items[5], "labels", MAX_LABELS, 64),
                incident=codec.as_opt_str(items[6], "incident", 64),
                reference=codec.as_opt_bytes(items[7], "reference", MAX_REFERENCE),
            )
        if kind == KIND_RETRACT:
            codec.as_list(items, "retract", 5)
            reason = codec.as_str(items[4], "reason", MAX_TEXT)
            return Retract(timestamp_ms=ts, target=_decode_ref(items[3]), reason=reason)
        if kind == KIND_DISPUTE:
            codec.as_list(items, "dispute", 6)
            return Dispute(
                timestamp_ms=ts,
                target=_decode_ref(items[3]),
                reason_code=codec.as_str(items[4], "reason_code", 64),
                text=codec.as_str(items[5], "text", MAX_TEXT),
            )
        if kind == KIND_CONFIRM:
            codec.as_list(items, "confirm", 6)
            return Confirm(
                timestamp_ms=ts,
                target=_decode_ref(items[3]),
                reason_code=codec.as_str(items[4], "reason_code", 64),
                text=codec.as_str(items[5], "text", MAX_TEXT),
            )
    except ValidationError as e:
        raise DecodeError(f"entry: {e}") from e
    raise DecodeError(f"entry: unknown kind {kind}")


def _decode_ref(value: codec.Value) -> EntryRef:
    items = codec.as_list(value, "target", 2)
    return EntryRef(
        codec.as_str(items[0], "target log", MAX_ORIGIN),
        codec.as_int(items[1], "target index", 0, 2**63 - 1),
    )


__all__ = [
    "MAX_URL_BYTES",
    "Add",
    "Confirm",
    "Dispute",
    "Entry",
    "EntryRef",
    "Reference",
    "Retract",
    "decode_entry",
    "encode_entry",
]
