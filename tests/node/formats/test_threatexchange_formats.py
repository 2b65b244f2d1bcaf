"""python-threatexchange's formats against the real threatexchange package: the files its own
CLI writes import (types we lack skipped and counted), vPDQ in its text form both ways, and what
we write is what its signal types accept."""

from __future__ import annotations

import csv
import io
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from threatexchange.extensions.vpdq.vpdq import VPDQSignal
from threatexchange.extensions.vpdq.vpdq_util import VpdqCompactFeature, json_to_vpdq, vpdq_to_json
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.url import URLSignal

from node.formats.export_writers import write_te_csv
from node.formats.import_check import parse_import
from protocol.errors import ValidationError
from protocol.roster import DEFAULT_TAXONOMY
from protocol.signals import VpdqFrame, decode_vpdq, encode_vpdq, value_text
from protocol.te_text import vpdq_from_te_text, vpdq_to_te_text

TE_TYPES = {"pdq": PdqSignal, "video_md5": VideoMD5Signal, "url": URLSignal, "vpdq": VPDQSignal}


def threatexchange(state: Path, *args: str) -> str:
    """The real `threatexchange` CLI, with its own state directory."""
    result = subprocess.run(
        [sys.executable, "-m", "threatexchange.cli.main", *args],
        env={**os.environ, "TX_STATEDIR": str(state)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def sample_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """What `threatexchange dataset` writes for its built-in sample collaboration (with the
    vPDQ extension it ships), as CSV and as signals only."""
    state = tmp_path_factory.mktemp("tx_state")
    threatexchange(state, "config", "extensions", "add", "threatexchange.extensions.vpdq.manifest")
    threatexchange(state, "fetch")
    return {
        "te-csv": threatexchange(state, "dataset", "-P", "--csv"),
        "te-file": threatexchange(state, "dataset", "-P", "-S"),
    }


def test_the_files_threatexchanges_cli_writes_import_with_types_we_lack_skipped_and_counted(
    sample_files: dict[str, str],
) -> None:
    lacking = (("raw_text", 3), ("trend_query", 1), ("url_md5", 1))
    signals = parse_import(sample_files["te-file"], "te-file", DEFAULT_TAXONOMY)
    assert signals.problems == ()
    assert signals.unsupported == lacking
    types = sorted({r.signal_type for r in signals.rows})
    assert types == ["pdq", "sha256", "url", "video_md5", "vpdq"]
    lines = sample_files["te-file"].splitlines()
    assert len(signals.rows) + sum(n for _, n in lacking) == len(lines)
    # The CSV's sample rows are investigation seeds: skipped as not positive, none an error.
    listed = parse_import(sample_files["te-csv"], "te-csv", DEFAULT_TAXONOMY)
    assert (listed.problems, listed.rows) == ((), ())
    assert listed.unsupported == lacking
    assert len(listed.skipped) == len(lines)


def test_threatexchanges_sample_vpdq_imports_and_exports_back_as_the_same_frames(
    sample_files: dict[str, str],
) -> None:
    [te_line] = [x for x in sample_files["te-file"].splitlines() if x.startswith("vpdq ")]
    te_text = te_line.removeprefix("vpdq ")
    [row] = [r for r in parse_import(te_line, "te-file", DEFAULT_TAXONOMY).rows]
    out = io.StringIO()
    view = {"signal_type": "vpdq", "value": row.value, "active": True, "labels": []}
    write_te_csv([{**view, "submissions": []}], out, "demo")
    [written] = list(csv.DictReader(io.StringIO(out.getvalue())))
    VPDQSignal.validate_signal_str(written["signal_str"])
    assert _frames(json_to_vpdq(written["signal_str"])) == _frames(json_to_vpdq(te_text))


def _frames(features: list[VpdqCompactFeature]) -> list[tuple[str, int, float]]:
    return [(f.pdq_hex, f.quality, round(f.timestamp, 3)) for f in features]


def test_vpdq_in_threatexchanges_text_form_round_trips_both_ways() -> None:
    rng = random.Random(7)
    seconds = [0.0, 1 / 30, 1.0, 12.345, 123.456, 3600.5]
    features = [
        VpdqCompactFeature(f"{rng.getrandbits(256):064x}", rng.randrange(101), s) for s in seconds
    ]
    theirs = vpdq_to_json(features)  # threatexchange's writer: 3 significant digits
    ours = vpdq_from_te_text(theirs)
    frames = decode_vpdq(ours)
    assert [f.frame_number for f in frames] == list(range(len(seconds)))
    assert [(f.pdq.hex(), f.quality) for f in frames] == [(f.pdq_hex, f.quality) for f in features]
    back = json_to_vpdq(vpdq_to_te_text(ours))  # read by threatexchange's own parser
    assert _frames(back) == _frames(json_to_vpdq(theirs))

    # Ours with frames numbered in order and millisecond timestamps comes back exactly.
    exact = encode_vpdq(
        [VpdqFrame(bytes([i]) * 32, 90 + i, i, ms) for i, ms in enumerate([0, 33, 12_345, 2**31])]
    )
    text = vpdq_to_te_text(exact)
    VPDQSignal.validate_signal_str(text)
    assert [f.timestamp for f in json_to_vpdq(text)] == [0.0, 0.033, 12.345, 2**31 / 1000]
    assert vpdq_from_te_text(text) == exact


@pytest.mark.parametrize(
    "text",
    [
        "[]",
        "not json",
        '{"0": "x"}',
        '["abc,100,0.0"]',
        f'["{"a" * 64},101,0.0"]',
        f'["{"a" * 64},100,-1"]',
        f'["{"a" * 64},100,nan"]',
        f'["{"a" * 64},100"]',
    ],
)
def test_a_malformed_threatexchange_vpdq_is_a_problem_of_its_row(text: str) -> None:
    with pytest.raises(ValidationError):
        vpdq_from_te_text(text)
    parsed = parse_import(f"pdq {'0' * 64}\nvpdq {text}\n", "te-file", DEFAULT_TAXONOMY)
    assert [n.line for n in parsed.problems] == [2] and len(parsed.rows) == 1


def _view(signal_type: str, value: str) -> dict[str, Any]:
    return {"signal_type": signal_type, "value": value, "active": True, "labels": []}


def test_exact_hashes_go_to_threatexchanges_types_where_it_has_them() -> None:
    md5, sha256 = "0cc175b9c0f1b6a831c399e269772661", "ca978112ca1bbdcafac231b39a23dc4da786eff8"
    sha256 += "331c834e0ba2d6f4a95a9e61"
    te_csv = (
        "signal_type,signal_str,collab,category,tags\n"
        f"video_md5,{md5.upper()},c,POSITIVE_CLASS,\n"
        f"video_sha256,{sha256},c,POSITIVE_CLASS,\n"
    )
    parsed = parse_import(te_csv, "te-csv", DEFAULT_TAXONOMY)
    assert [(r.signal_type, r.value) for r in parsed.rows] == [
        ("video_md5", md5),
        ("sha256", sha256),
    ]
    vpdq = value_text("vpdq", encode_vpdq([VpdqFrame(b"\x01" * 32, 80, 0, 0)]))
    views = [
        {**_view(t, v), "submissions": []}
        for t, v in [
            ("video_md5", md5),
            ("sha256", sha256),  # a file's SHA-256, maybe an image's: not a video_sha256
            ("md5", md5),  # threatexchange has no file MD5
            ("pdq", "f" * 64),
            ("url", "https://example.com/x"),
            ("vpdq", vpdq),
        ]
    ]
    out = io.StringIO()
    assert write_te_csv(views, out, "demo") == (4, 2)
    for row in csv.DictReader(io.StringIO(out.getvalue())):
        signal_type = TE_TYPES[row["signal_type"]]
        assert signal_type.validate_signal_str(row["signal_str"]) == row["signal_str"]
