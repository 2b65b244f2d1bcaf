"""Import parsing and export writing (node.formats.exchange, node.formats.stix), and the node's
`GET /v1/export` stream (node.http.export_api) over a real SQLite store on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from stix2validator import ValidationOptions, validate_instance

from node.formats.exchange import ExchangeError
from node.formats.export_writers import write_csv, write_jsonl, write_te_csv
from node.formats.import_check import ImportDefaults, parse_import
from node.formats.stix import indicator_id, pattern, write_stix
from node.http.export_api import export_routes
from protocol.entries import Add
from protocol.roster import DEFAULT_TAXONOMY
from tests.node.services import consortium, now_ms, served

TAXONOMY = DEFAULT_TAXONOMY
MD5 = hashlib.md5(b"a", usedforsecurity=False).hexdigest()
MD5_B = hashlib.md5(b"b", usedforsecurity=False).hexdigest()
SHA256 = hashlib.sha256(b"a").hexdigest()
PDQ = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
UNICODE_URL = "https://例え.jp/パス?q=ü&x=1,2"


def _csv(*lines: str) -> str:
    return "\n".join(["signal_type,value,labels,incident,reference", *lines]) + "\n"


# Our CSV.


def test_csv_rows_are_checked_and_normalised() -> None:
    text = _csv(
        f"md5,{MD5.upper()},terrorist-attack;glorification,inc-1,ref-1",
        f'url,"{UNICODE_URL}",,,',
        f"sha256,{SHA256},,,",
    )
    parsed = parse_import(text, "csv", TAXONOMY)
    assert parsed.problems == ()
    first, url, sha = parsed.rows
    assert (first.line, first.value, first.labels) == (
        2,
        MD5,
        ("glorification", "terrorist-attack"),
    )
    assert (first.incident, first.reference) == ("inc-1", "ref-1")
    assert url.value == UNICODE_URL and url.line == 3
    assert sha.item() == {"signal_type": "sha256", "value": SHA256, "labels": []}


def test_bad_rows_are_reported_with_their_line_numbers() -> None:
    text = _csv(
        f"md5,{MD5},,,",
        "md5,not-hex,,,",
        f"sha1,{MD5},,,",
        f"md5,{MD5_B},nonsense-label,,",
        f"pdq,{PDQ},,bad incident!,",
        f"md5,{MD5_B},,,,extra",
        'url,"ftp://example.com/x",,,',
    )
    parsed = parse_import(text, "csv", TAXONOMY)
    assert [r.line for r in parsed.rows] == [2]
    lines = {n.line: n.message for n in parsed.problems}
    assert sorted(lines) == [3, 4, 5, 6, 7, 8]
    assert "hex" in lines[3]
    assert "unknown signal type 'sha1'" in lines[4]
    assert "nonsense-label" in lines[5]
    assert "incident" in lines[6]
    assert "more field" in lines[7]
    assert "url" in lines[8]


def test_quoted_fields_spanning_lines_keep_line_numbers_right() -> None:
    text = _csv(
        f'md5,{MD5},"terrorist-attack;glorification",,"a reference, with a comma"',
        f'md5,{MD5_B},,,"two\nlines"',
        "md5,zz,,,",
    )
    parsed = parse_import(text, "csv", TAXONOMY)
    assert [r.line for r in parsed.rows] == [2, 3]
    assert parsed.rows[0].reference == "a reference, with a comma"
    assert parsed.rows[1].reference == "two\nlines"
    assert [n.line for n in parsed.problems] == [5]


def test_duplicates_are_skipped_and_defaults_apply() -> None:
    text = "\ufeff" + _csv(
        f"md5,{MD5},,,", f"md5,{MD5.upper()},,,", f"md5,{MD5_B},glorification,x1,"
    )
    defaults = ImportDefaults(("terrorist-attack",), "incident-9")
    parsed = parse_import(text, "csv", TAXONOMY, defaults)
    assert [(r.line, r.labels, r.incident) for r in parsed.rows] == [
        (2, ("terrorist-attack",), "incident-9"),
        (4, ("glorification", "terrorist-attack"), "x1"),
    ]
    assert [(n.line, n.message) for n in parsed.skipped] == [(3, "same hash as line 2")]


def test_a_default_label_outside_the_taxonomy_fails_every_row() -> None:
    parsed = parse_import(_csv(f"md5,{MD5},,,"), "csv", TAXONOMY, ImportDefaults(("spam",)))
    assert parsed.rows == () and "spam" in parsed.problems[0].message


def test_a_header_without_the_needed_columns_is_refused() -> None:
    with pytest.raises(ExchangeError, match="lacks value"):
        parse_import("signal_type,hash\nmd5,abc\n", "csv", TAXONOMY)
    assert parse_import("", "csv", TAXONOMY).rows == ()


# python-threatexchange's formats.


def test_te_csv_imports_positive_rows_and_maps_types_and_tags() -> None:
    text = (
        "signal_type,signal_str,collab,category,tags\n"
        f"pdq,{PDQ},Sample,POSITIVE_CLASS,terrorist-attack media_type_photo\n"
        f"video_sha256,{SHA256},Sample,TRUE_POSITIVE,\n"
        f"video_md5,{MD5},Sample,NEGATIVE_CLASS,\n"
        f"video_md5,{MD5_B},Sample,DISPUTED,\n"
        "raw_text,hello,Sample,POSITIVE_CLASS,\n"
        f"pdq,{PDQ[:-2]},Sample,POSITIVE_CLASS,\n"
        f"url,https://example.com/a,Sample,MAYBE,\n"
    )
    parsed = parse_import(text, "te-csv", TAXONOMY)
    assert [(r.signal_type, r.labels) for r in parsed.rows] == [
        ("pdq", ("terrorist-attack",)),
        ("sha256", ()),
    ]
    assert [n.line for n in parsed.skipped] == [4, 5, 6]
    assert [n.line for n in parsed.problems] == [7, 8]
    assert parsed.ignored_tags == ("media_type_photo",)
    assert parsed.unsupported == (("raw_text", 1),)


def test_te_file_lines_with_and_without_their_type() -> None:
    typed = f"pdq {PDQ}\n\nvideo_md5 {MD5}\nphoto_md5 {MD5_B}\n"
    parsed = parse_import(typed, "te-file", TAXONOMY)
    assert [(r.line, r.signal_type) for r in parsed.rows] == [(1, "pdq"), (3, "video_md5")]
    assert [n.line for n in parsed.problems] == [4]
    bare = parse_import(f"{MD5}\n{MD5_B}\n", "te-file", TAXONOMY, te_signal_type="video_md5")
    assert [r.value for r in bare.rows] == [MD5, MD5_B]


# Writers (over the JSON views GET /v1/export streams).


def _view(
    signal_type: str, value: str, active: bool = True, disputes: int = 0, member: str | None = "m1"
) -> dict[str, Any]:
    dispute = {"member": "m2", "log": "o/m2", "index": 3, "timestamp_ms": 1_700_000_002_000}
    return {
        "signal_type": signal_type,
        "value": value,
        "active": active,
        "labels": ["terrorist-attack"] if active else [],
        "submissions": [
            {
                "member": member,
                "log": "o/m1",
                "index": 7,
                "timestamp_ms": 1_700_000_000_123,
                "received_ms": 1_700_000_000_200,
                "labels": ["terrorist-attack"],
                "incident": "inc-1",
                "active": active,
                "retraction": None
                if active
                else {"log": "o/m1", "index": 9, "timestamp_ms": 1_700_000_005_000, "reason": ""},
                "disputes": [{**dispute, "reason_code": "other", "text": "x"}] * disputes,
            }
        ],
    }


VIEWS = [
    _view("md5", MD5),
    _view("url", "https://example.com/it's\\here"),
    _view("url", UNICODE_URL, disputes=1),
    _view("pdq", PDQ, member=None),
    _view("sha256", SHA256),
    _view("video_md5", MD5_B, active=False),
]


def test_csv_export_imports_back_as_it_was() -> None:
    out = io.StringIO()
    assert write_csv(VIEWS[:5], out) == 5
    parsed = parse_import(out.getvalue(), "csv", TAXONOMY)
    assert parsed.problems == ()
    assert [(r.signal_type, r.value, r.labels, r.incident) for r in parsed.rows] == [
        (v["signal_type"], v["value"], ("terrorist-attack",), "inc-1") for v in VIEWS[:5]
    ]


def test_te_csv_export_reads_back_and_leaves_out_types_it_lacks() -> None:
    out = io.StringIO()
    written, left_out = write_te_csv(VIEWS, out, "demo")
    assert (written, left_out) == (4, 2)  # md5 and sha256 have no python-threatexchange type
    lines = out.getvalue().splitlines()
    assert lines[0] == "signal_type,signal_str,collab,category,tags"
    assert f"pdq,{PDQ},demo,POSITIVE_CLASS,terrorist-attack" in lines
    parsed = parse_import(out.getvalue(), "te-csv", TAXONOMY)
    assert {r.value for r in parsed.rows} == {VIEWS[1]["value"], PDQ}
    assert {n.message.split(":")[0] for n in parsed.skipped} == {
        "category DISPUTED",
        "category NEGATIVE_CLASS",
    }


def test_jsonl_export_has_provenance_and_imports_back_only_active_hashes() -> None:
    out = io.StringIO()
    assert write_jsonl(VIEWS, out) == 6
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    withdrawn = records[5]
    assert withdrawn["active"] is False and withdrawn["submissions"][0]["retracted"] is True
    assert records[2]["value"] == UNICODE_URL
    sub = records[2]["submissions"][0]
    assert (sub["member"], sub["log"], sub["index"], sub["timestamp_ms"]) == (
        "m1",
        "o/m1",
        7,
        1_700_000_000_123,
    )
    assert sub["disputes"][0]["reason_code"] == "other"
    parsed = parse_import(out.getvalue() + "not json\n", "jsonl", TAXONOMY)
    assert len(parsed.rows) == 5 and parsed.rows[0].incident == "inc-1"
    assert [n.line for n in parsed.skipped] == [6]
    assert [n.line for n in parsed.problems] == [7]


def test_stix_bundle_is_valid_stix_2_1() -> None:
    out = io.StringIO()
    assert write_stix(VIEWS, out, "demo", "bundle--0b7c5d0e-3c43-4b8a-9d6b-6c1c0c3e1a11") == 6
    bundle = json.loads(out.getvalue())
    result = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for e in result.errors]
    kinds = [o["type"] for o in bundle["objects"]]
    assert kinds.count("indicator") == 6 and kinds.count("extension-definition") == 1
    indicators = [o for o in bundle["objects"] if o["type"] == "indicator"]
    md5 = next(o for o in indicators if o["pattern"] == f"[file:hashes.MD5 = '{MD5}']")
    assert md5["id"] == indicator_id("demo", "md5", MD5)
    assert (md5["created"], md5["valid_from"]) == ("2023-11-14T22:13:20.123Z",) * 2
    assert md5["labels"] == ["terrorist-attack"] and md5["indicator_types"] == [
        "malicious-activity"
    ]
    identities = {o["id"]: o for o in bundle["objects"] if o["type"] == "identity"}
    assert identities[md5["created_by_ref"]]["name"] == "m1"
    revoked = [o for o in indicators if o.get("revoked")]
    assert [o["x_hashmesh_signal_type"] for o in revoked] == ["video_md5"]
    assert revoked[0]["modified"] == "2023-11-14T22:13:25.000Z"


def test_stix_patterns_escape_quotes_and_backslashes() -> None:
    assert pattern("url", "https://e.com/it's\\x") == "[url:value = 'https://e.com/it\\'s\\\\x']"
    assert pattern("sha256", SHA256) == f"[file:hashes.'SHA-256' = '{SHA256}']"
    assert pattern("pdq", PDQ) == f"[file:hashes.x_pdq = '{PDQ}']"


# GET /v1/export on a node.


async def _export(url: str, token: str, query: str = "") -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{url}/v1/export{query}", headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        assert response.content_type == "application/x-ndjson"
        lines = [json.loads(line) for line in (await response.text()).splitlines()]
    assert lines[-1]["end"] is True and lines[-1]["count"] == len(lines) - 1
    return lines[:-1]


async def test_export_stream_lists_each_active_hash_once(tmp_path: Path) -> None:
    config = consortium(tmp_path, 1).configs[0]
    async with served(config) as node:
        service = node.service
        ts = now_ms()
        labels = ("terrorist-attack",)
        urls = [f"https://example.com/{i}" for i in range(3)]
        adds = [Add(ts, "md5", bytes.fromhex(MD5), labels), Add(ts, "md5", bytes.fromhex(MD5))]
        adds += [Add(ts, "url", u, labels) for u in urls]
        adds.append(Add(ts, "md5", bytes.fromhex(MD5_B), labels))
        refs = await service.submit(adds)
        await service.retract(refs[-1].index, "mistake")
        app = web.Application()
        app.add_routes(export_routes(service))
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            active = await _export(url, node.token)
            everything = await _export(url, node.token, "?include_withdrawn=1")
            only_urls = await _export(url, node.token, "?types=url")
        finally:
            await runner.cleanup()
    assert sorted((v["signal_type"], v["value"]) for v in active) == sorted(
        [("md5", MD5)] + [("url", u) for u in urls]
    )
    md5 = next(v for v in active if v["value"] == MD5)
    assert len(md5["submissions"]) == 2 and md5["submissions"][0]["member"] == "member1"
    assert {v["value"] for v in everything} - {v["value"] for v in active} == {MD5_B}
    assert [v["value"] for v in only_urls] == urls


def test_a_flagged_hash_keeps_its_flags_in_jsonl_and_stix_exports() -> None:
    first = VIEWS[0]
    flagged = {
        **first,
        "flags": ["past-compromised-key"],
        "submissions": [{**s, "standing": "past-compromised-key"} for s in first["submissions"]],
    }
    out = io.StringIO()
    write_jsonl([flagged, VIEWS[1]], out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[0]["flags"] == ["past-compromised-key"]
    assert records[0]["submissions"][0]["standing"] == "past-compromised-key"
    assert records[1]["flags"] == [] and records[1]["submissions"][0]["standing"] is None
    out = io.StringIO()
    write_stix([flagged, VIEWS[1]], out, "demo", "bundle--0b7c5d0e-3c43-4b8a-9d6b-6c1c0c3e1a11")
    bundle = json.loads(out.getvalue())
    result = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for e in result.errors]
    indicators = [o for o in bundle["objects"] if o["type"] == "indicator"]
    assert [o.get("x_hashmesh_flags") for o in indicators] == [["past-compromised-key"], None]


def test_stix_confidence_rises_with_the_members_standing_behind_a_hash() -> None:
    def agreed(view: dict[str, Any], count: int) -> dict[str, Any]:
        members = [{"member": f"m{i + 1}", "log": f"o/m{i + 1}"} for i in range(count)]
        return {**view, "agreement": {"count": count, "members": members}}

    views = [
        agreed(_view("md5", MD5), 1),
        agreed(_view("sha256", SHA256), 2),
        agreed(_view("url", UNICODE_URL, disputes=1), 2),
        _view("pdq", PDQ),  # from a node that predates agreement: no confidence
    ]
    out = io.StringIO()
    write_stix(views, out, "demo", "bundle--0b7c5d0e-3c43-4b8a-9d6b-6c1c0c3e1a11")
    bundle = json.loads(out.getvalue())
    result = validate_instance(bundle, ValidationOptions(version="2.1"))
    assert result.is_valid, [str(e) for e in result.errors]
    indicators = [o for o in bundle["objects"] if o["type"] == "indicator"]
    assert [o.get("confidence") for o in indicators] == [50, 85, 15, None]


def test_jsonl_export_keeps_who_confirmed_and_corroborated_a_hash() -> None:
    confirmation = {"member": "m2", "log": "o/m2", "index": 4, "timestamp_ms": 5,
                    "reason_code": "reviewed", "text": "", "active": True, "standing": None,
                    "retraction": None}  # fmt: skip
    first = VIEWS[0]
    view = {
        **first,
        "agreement": {"count": 2, "members": [{"member": "m1", "log": "o/m1"}]},
        "submissions": [{**first["submissions"][0], "confirmations": [confirmation]}],
    }
    out = io.StringIO()
    write_jsonl([view, VIEWS[1]], out)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert records[0]["submissions"][0]["confirmations"] == [confirmation]
    assert records[0]["agreement"]["count"] == 2
    assert records[1]["agreement"] is None and records[1]["submissions"][0]["confirmations"] == []
