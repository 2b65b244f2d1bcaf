"""Near-duplicate matching across real nodes: an image or video submitted on one member is
found on another from an altered copy, with the distance and the hash's provenance; and a
retraction on the origin turns every node's match result to 'ignore'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image, ImageEnhance

from node.app.procs import NodeGroup
from node.cli.main import main
from tests.cluster.support import consortium, wait_until

DATA = Path(__file__).parent.parent / "data"


def cli_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, object]]:
    capsys.readouterr()  # drop what earlier commands printed
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code in (0, 1, 6), err  # 6: hits, none to act on (a retracted one)
    return code, json.loads(out) if out.strip() else {}


def test_altered_copies_match_across_nodes_and_a_retraction_reaches_every_match(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = consortium(tmp_path, 3, sync_interval_s=0.5, sync_jitter_s=0.1)
    a, b, c = setup.configs
    original = DATA / "pdq" / "q0746.jpg"
    altered = tmp_path / "altered.jpg"
    with Image.open(original) as img:
        smaller = img.convert("RGB").resize((img.width * 3 // 4, img.height * 3 // 4))
        ImageEnhance.Brightness(smaller).enhance(1.15).save(altered, quality=70)
    video = DATA / "vpdq" / "test-padded-dimensions.mp4"
    with NodeGroup(setup.configs):
        code, submitted = cli_json(
            capsys, "submit", "--file", str(original), "--file", str(video),
            "--label", "terrorist-attack", "--node", str(a.directory),
        )  # fmt: skip
        assert code == 0
        # image: md5, sha256, pdq; video: md5, sha256, vpdq, video_md5
        assert len(submitted["entries"]) == 7  # type: ignore[arg-type]

        def matches(config: object, path: Path) -> list[dict[str, object]]:
            _, out = cli_json(capsys, "match", "--file", str(path), "--node", str(config.directory))  # type: ignore[attr-defined]
            return [m for r in out["results"] for m in r["matches"]]  # type: ignore[index, attr-defined]

        def pdq_match(config: object) -> dict[str, object] | None:
            return next((m for m in matches(config, altered) if m["signal_type"] == "pdq"), None)

        for config in (b, c):
            wait_until(lambda cfg=config: pdq_match(cfg) is not None, 30, "altered image matched")
            hit = pdq_match(config)
            assert hit is not None and 0 < int(hit["distance"]) <= 31  # type: ignore[call-overload]
            assert hit["submissions"][0]["member"] == a.member_id  # type: ignore[index]
            assert hit["decision"]["action"] == "act"  # type: ignore[index]
            videos = [m for m in matches(config, video) if m["signal_type"] == "vpdq"]
            assert len(videos) == 1 and float(videos[0]["target_percent"]) == 100.0  # type: ignore[arg-type]
        _, view = cli_json(capsys, "match", "--file", str(original), "--node", str(a.directory))
        pdq_entry = next(
            m
            for r in view["results"]
            for m in r["matches"]
            if m["signal_type"] == "pdq"  # type: ignore[attr-defined]
        )["submissions"][0]["index"]
        assert main(["retract", str(pdq_entry), "--node", str(a.directory)]) == 0
        for config in (a, b, c):
            wait_until(
                lambda cfg=config: pdq_match(cfg)["decision"]["action"] == "ignore",  # type: ignore[index]
                30,
                "retraction reached every match result",
            )
