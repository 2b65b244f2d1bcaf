"""JSON shapes of the operator API: hash views, entry references, parsing of submissions."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any

from node.errors import RequestError
from protocol.entries import Add, EntryRef
from protocol.errors import ValidationError
from protocol.signals import parse_value, value_text
from protocol.view import HashView, NearAdd, Submission

#: An Idempotency-Key: printable ASCII without quotes or backslashes, optionally quoted (the
#: IETF draft makes it a structured-field string, "..."), at most 255 characters.
_IDEMPOTENCY_KEY = re.compile(r'"?([\x20-\x21\x23-\x5b\x5d-\x7e]{1,255})"?')


def idempotency_of(header: str | None, items: Any) -> tuple[str, bytes] | None:
    """(key, SHA-256 of the submitted items) from a submit's Idempotency-Key header, if any.

    The digest is of the items as parsed JSON, keys sorted, so a retry of the same request
    matches however its JSON was spaced, and a different request under the same key does not.
    """
    if header is None:
        return None
    match = _IDEMPOTENCY_KEY.fullmatch(header.strip())
    if match is None or match.group(0).count('"') == 1:
        raise RequestError("Idempotency-Key is 1..255 printable ASCII characters, maybe quoted")
    canonical = json.dumps(items, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return match.group(1), hashlib.sha256(canonical.encode()).digest()


def ref_json(ref: EntryRef) -> dict[str, Any]:
    return {"log": ref.log, "index": ref.index}


def view_json(view: HashView, member_of: Callable[[str], str | None]) -> dict[str, Any]:
    """A hash's provenance as the operator API and `hashmesh lookup --json` show it.

    Disputes, confirmations, corroborations and retractions are given per submission;
    `disputes` also lists the disputes all at once, and `agreement` names the members that
    stand behind the hash (protocol/view.py: HashView.backers).
    """
    body = _view_body(view, member_of)
    backers = sorted(view.backers())
    body["agreement"] = {
        "count": len(backers),
        "members": [{"member": member_of(log), "log": log} for log in backers],
    }
    body["disputes"] = [
        {**d, "target": {"log": s["log"], "index": s["index"]}}
        for s in body["submissions"]
        for d in s["disputes"]
    ]
    return body


def _view_body(view: HashView, member_of: Callable[[str], str | None]) -> dict[str, Any]:
    return {
        "signal_type": view.signal_type,
        "value": value_text(view.signal_type, view.value),
        "found": bool(view.submissions),
        "active": view.active,
        "labels": list(view.labels),
        "flags": list(view.flags),
        "submissions": [
            {
                "member": member_of(s.ref.log),
                **ref_json(s.ref),
                "timestamp_ms": s.add.timestamp_ms,
                "received_ms": s.received_ms,
                "labels": list(s.add.labels),
                "incident": s.add.incident,
                "active": s.active,
                "standing": s.standing,
                "retraction": None
                if s.retraction is None
                else {
                    **ref_json(s.retraction.ref),
                    "timestamp_ms": s.retraction.timestamp_ms,
                    "reason": s.retraction.reason,
                },
                "disputes": [
                    {
                        "member": member_of(d.ref.log),
                        **ref_json(d.ref),
                        "timestamp_ms": d.timestamp_ms,
                        "reason_code": d.reason_code,
                        "text": d.text,
                    }
                    for d in s.disputes
                ],
                "confirmations": [
                    {
                        "member": member_of(c.ref.log),
                        **ref_json(c.ref),
                        "timestamp_ms": c.timestamp_ms,
                        "reason_code": c.reason_code,
                        "text": c.text,
                        "active": c.active,
                        "standing": c.standing,
                        "retraction": None
                        if c.retraction is None
                        else {
                            **ref_json(c.retraction.ref),
                            "timestamp_ms": c.retraction.timestamp_ms,
                        },
                    }
                    for c in s.confirmations
                ],
                "corroborations": [
                    _corroboration_json(c, member_of) for c in view.corroborations(s)
                ],
            }
            for s in view.submissions
        ],
    }


def _corroboration_json(
    by: Submission | NearAdd, member_of: Callable[[str], str | None]
) -> dict[str, Any]:
    """Another member's add of the same hash (distance 0) or of a near-duplicate."""
    if isinstance(by, NearAdd):
        ref, ts, distance = by.ref, by.timestamp_ms, by.distance
    else:
        ref, ts, distance = by.ref, by.add.timestamp_ms, 0
    return {"member": member_of(ref.log), **ref_json(ref), "timestamp_ms": ts, "distance": distance}


def parse_add(item: Any, now_ms: int) -> Add:
    """An add from an operator's JSON item: signal_type, value (hex or URL), labels, ..."""
    if not isinstance(item, dict):
        raise RequestError("each item is an object")
    try:
        signal_type = _field(item, "signal_type", str)
        value = parse_value(signal_type, _field(item, "value", str))
        labels = item.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            raise RequestError("labels is a list of strings")
        reference = item.get("reference")
        if reference is not None and not isinstance(reference, str):
            raise RequestError("reference is a string")
        incident = item.get("incident")
        if incident is not None and not isinstance(incident, str):
            raise RequestError("incident is a string")
        return Add(
            timestamp_ms=int(item.get("timestamp_ms", now_ms)),
            signal_type=signal_type,
            value=value,
            labels=tuple(sorted(set(labels))),
            incident=incident,
            reference=reference.encode() if reference is not None else None,
        )
    except (ValidationError, ValueError, TypeError) as e:
        raise RequestError(f"invalid item: {e}") from e


def parse_hash(item: Any) -> tuple[str, bytes | str]:
    if not isinstance(item, dict):
        raise RequestError("each hash is an object with signal_type and value")
    try:
        signal_type = _field(item, "signal_type", str)
        return signal_type, parse_value(signal_type, _field(item, "value", str))
    except ValidationError as e:
        raise RequestError(str(e)) from e


def _field(item: dict[str, Any], name: str, kind: type) -> Any:
    value = item.get(name)
    if not isinstance(value, kind):
        raise RequestError(f"{name} is required ({kind.__name__})")
    return value
