"""STIX 2.1 output: the consortium's hashes as `indicator` objects in one bundle.

Pure conversion from hash views (the JSON shape of `GET /v1/export`) to a bundle written as a
stream. Choices (see docs/operator.md (section "Importing and exporting hash lists")):
- ids are UUIDv5 under a hashmesh namespace, from the consortium and the hash, so exporting
  twice names the same hash with the same id and tools update rather than duplicate it;
- patterns use the standard file hash keys where one exists (MD5, 'SHA-256'); STIX has no PDQ
  key, and the Hashes type asks custom algorithm names to start with `x_`, so PDQ is
  `file:hashes.x_pdq` (64 hex digits, as python-threatexchange and ThreatExchange write it);
  vPDQ, which has no common text form, is `file:hashes.x_hashmesh_vpdq` with our hex encoding;
- our provenance rides in top-level `x_hashmesh_*` properties declared by an
  extension-definition object (STIX 2.1's toplevel-property-extension);
- every member is an `identity` (organization), the first submitter is `created_by_ref`;
  a hash every submitter withdrew (only with --include-withdrawn) is `revoked`; one whose
  live adds the roster no longer vouches for carries `x_hashmesh_flags` (node/matching/policy.py);
- `confidence` (STIX 2.1 section 3.2, on the Low/Med/High scale of its Appendix A) says how many
  members stand behind the hash (docs/agreement.md): disputed, Low (15); one member, Med (50);
  two or more, High (85). A view without `agreement` (an older node's) has no confidence.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

NAMESPACE = uuid.UUID("07bc2682-5b59-4581-8c7b-0cdb5d6c9ab9")
EXTENSION_ID = f"extension-definition--{uuid.uuid5(NAMESPACE, 'hashmesh-provenance-1')}"
HASHMESH_IDENTITY = f"identity--{uuid.uuid5(NAMESPACE, 'hashmesh')}"
#: The `created` of the objects that are not hashes (identities, the extension definition):
#: fixed, so each is byte-identical in every export, as STIX asks of an unchanged object.
FIXED_CREATED = "2026-01-01T00:00:00.000Z"
#: The extension definition's `modified`: later than FIXED_CREATED since version 1.1 added
#: x_hashmesh_flags (STIX asks a changed object for a new `modified`).
EXTENSION_MODIFIED = "2026-12-01T00:00:00.000Z"
CUSTOM_PROPERTIES = (
    "x_hashmesh_signal_type",
    "x_hashmesh_members",
    "x_hashmesh_incidents",
    "x_hashmesh_disputes",
    "x_hashmesh_flags",
)
#: STIX object path of each signal type's value.
PATTERN_PATHS: dict[str, str] = {
    "md5": "file:hashes.MD5",
    "video_md5": "file:hashes.MD5",
    "sha256": "file:hashes.'SHA-256'",
    "pdq": "file:hashes.x_pdq",
    "vpdq": "file:hashes.x_hashmesh_vpdq",
    "url": "url:value",
}


def stix_time(ms: int) -> str:
    """RFC 3339 in UTC with milliseconds, as STIX timestamps are written."""
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def pattern(signal_type: str, value: str) -> str:
    """A STIX pattern matching the hash; quotes and backslashes escaped as patterning asks."""
    literal = value.replace("\\", "\\\\").replace("'", "\\'")
    return f"[{PATTERN_PATHS[signal_type]} = '{literal}']"


def indicator_id(consortium: str, signal_type: str, value: str) -> str:
    return f"indicator--{uuid.uuid5(NAMESPACE, f'{consortium}/{signal_type}:{value}')}"


def member_identity_id(consortium: str, member: str) -> str:
    return f"identity--{uuid.uuid5(NAMESPACE, f'{consortium}/member:{member}')}"


def consortium_identity_id(consortium: str) -> str:
    return f"identity--{uuid.uuid5(NAMESPACE, f'consortium:{consortium}')}"


def _identity(ident: str, name: str, identity_class: str, text: str) -> dict[str, Any]:
    return {
        "type": "identity",
        "spec_version": "2.1",
        "id": ident,
        "created": FIXED_CREATED,
        "modified": FIXED_CREATED,
        "name": name,
        "description": text,
        "identity_class": identity_class,
    }


def extension_definition() -> dict[str, Any]:
    return {
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": EXTENSION_ID,
        "created_by_ref": HASHMESH_IDENTITY,
        "created": FIXED_CREATED,
        "modified": EXTENSION_MODIFIED,
        "name": "hashmesh provenance",
        "description": "Which consortium members shared a hash, under which incidents, and how "
        "many disputes it drew.",
        "schema": "x_hashmesh_signal_type: string (pdq, vpdq, md5, sha256, video_md5, url); "
        "x_hashmesh_members: list of member ids; x_hashmesh_incidents: list of incident ids; "
        "x_hashmesh_disputes: integer; x_hashmesh_flags: list of flags of entries the roster "
        "no longer vouches for (past-compromised-key, member-removed)",
        "version": "1.1",
        "extension_types": ["toplevel-property-extension"],
        "extension_properties": list(CUSTOM_PROPERTIES),
    }


CONFIDENCE_DISPUTED, CONFIDENCE_ONE_MEMBER, CONFIDENCE_AGREED = 15, 50, 85


def confidence(view: dict[str, Any]) -> int | None:
    """STIX confidence from the members standing behind a hash and the disputes it drew."""
    agreement = view.get("agreement")
    if agreement is None:
        return None
    if any(s["disputes"] for s in view["submissions"] if s["active"]):
        return CONFIDENCE_DISPUTED
    return CONFIDENCE_AGREED if agreement["count"] >= 2 else CONFIDENCE_ONE_MEMBER


def indicator(view: dict[str, Any], consortium: str) -> dict[str, Any]:
    """One hash view as an indicator; times are the members' entry timestamps."""
    subs = view["submissions"]
    times = [s["timestamp_ms"] for s in subs]
    for s in subs:
        if s["retraction"] is not None:
            times.append(s["retraction"]["timestamp_ms"])
        times.extend(d["timestamp_ms"] for d in s["disputes"])
        times.extend(c["timestamp_ms"] for c in s.get("confirmations", []))
    first = min(subs, key=lambda s: (s["timestamp_ms"], s["log"], s["index"]))
    members = sorted({s["member"] for s in subs if s["member"] is not None})
    incidents = sorted({s["incident"] for s in subs if s["incident"] is not None})
    creator = (
        member_identity_id(consortium, first["member"])
        if first["member"] is not None
        else consortium_identity_id(consortium)
    )
    signal_type, value = view["signal_type"], view["value"]
    body: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": indicator_id(consortium, signal_type, value),
        "created_by_ref": creator,
        "created": stix_time(first["timestamp_ms"]),
        "modified": stix_time(max(times)),
        "name": ("URL" if signal_type == "url" else f"{signal_type} hash")
        + " of removed terrorist or violent extremist content",
        "description": f"Shared in the {consortium} consortium by "
        f"{', '.join(members) or 'a former member'}.",
        "indicator_types": ["malicious-activity"],
        "pattern": pattern(signal_type, value),
        "pattern_type": "stix",
        "pattern_version": "2.1",
        "valid_from": stix_time(first["timestamp_ms"]),
        "extensions": {EXTENSION_ID: {"extension_type": "toplevel-property-extension"}},
        "x_hashmesh_signal_type": signal_type,
        "x_hashmesh_disputes": sum(len(s["disputes"]) for s in subs),
    }
    # STIX forbids empty lists: a property with nothing to say is left out.
    if members:
        body["x_hashmesh_members"] = members
    if incidents:
        body["x_hashmesh_incidents"] = incidents
    if view["labels"]:
        body["labels"] = list(view["labels"])
    if view.get("flags"):  # a node older than the flags gives none
        body["x_hashmesh_flags"] = list(view["flags"])
    level = confidence(view)
    if level is not None:
        body["confidence"] = level
    if not view["active"]:
        body["revoked"] = True
    return body


def write_stix(
    views: Iterable[dict[str, Any]],
    out: TextIO,
    consortium: str,
    bundle_id: str | None = None,
) -> int:
    """Write a bundle, one object per line, as the views stream by; returns indicators written.

    Identities of members come last, once every member that appears is known.
    """
    out.write('{"type": "bundle", "id": ')
    out.write(json.dumps(bundle_id or f"bundle--{uuid.uuid4()}"))
    out.write(', "objects": [\n')
    header = [
        _identity(HASHMESH_IDENTITY, "hashmesh", "system", "hashmesh software"),
        extension_definition(),
        _identity(
            consortium_identity_id(consortium),
            consortium,
            "group",
            "A consortium of platforms sharing hashes through hashmesh.",
        ),
    ]
    for i, obj in enumerate(header):
        _write_object(out, obj, first=i == 0)
    members: set[str] = set()
    count = 0
    for view in views:
        _write_object(out, indicator(view, consortium))
        members.update(s["member"] for s in view["submissions"] if s["member"] is not None)
        count += 1
    for member in sorted(members):
        text = f"A member platform of the {consortium} consortium."
        ident = member_identity_id(consortium, member)
        _write_object(out, _identity(ident, member, "organization", text))
    out.write("\n]}\n")
    return count


def _write_object(out: TextIO, obj: dict[str, Any], first: bool = False) -> None:
    if not first:
        out.write(",\n")
    out.write(json.dumps(obj, ensure_ascii=False, sort_keys=True))
