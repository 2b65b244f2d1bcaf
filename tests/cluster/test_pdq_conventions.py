"""An image held as either tool hashed it is found from the file: a live node holds, for the
same picture in every Pillow mode, the PDQ hash hashmesh makes (of the RGB conversion) and the
one python-threatexchange makes (of the decoded array), and `hashmesh match --file` of each
file finds both, saying which of the file's two hashes found each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes

from node.app.procs import NodeGroup
from node.cli.main import main
from tests.cluster.support import consortium, wait_until
from tests.pdq_modes import CONVENTIONS_DIFFER, pillow_modes


def _made_by_each_tool(
    images: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> dict[str, dict[str, str]]:
    """file -> tool -> the PDQ hash (hex) that tool makes of it."""
    made: dict[str, dict[str, str]] = {}
    for name, path in images.items():
        capsys.readouterr()
        assert main(["hash", str(path), "--json"]) == 0
        [ours] = [h for h in json.loads(capsys.readouterr().out) if h["signal_type"] == "pdq"]
        made[name] = {"hashmesh": ours["value"]}
        try:
            made[name]["threatexchange"] = pdq_from_bytes(path.read_bytes())[0]
        except (ValueError, IndexError):  # I and F modes: threatexchange's hasher fails
            assert name in ("I.tiff", "F.tiff")
    return made


def test_a_hash_made_by_either_tool_finds_the_image_in_every_pillow_mode(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    [config] = consortium(tmp_path, 1).configs
    images = pillow_modes(tmp_path / "modes")
    made = _made_by_each_tool(images, capsys)
    held = sorted({value for tools in made.values() for value in tools.values()})
    node = ["--node", str(config.directory)]

    def pdq_matches(path: Path) -> dict[str, dict[str, Any]]:
        capsys.readouterr()
        main(["match", "--file", str(path), *node, "--json"])
        results = json.loads(capsys.readouterr().out)["results"]
        [pdq] = [r for r in results if r["query"]["signal_type"] == "pdq"]
        return {m["value"]: m for m in pdq["matches"]}

    with NodeGroup([config]):
        submit = ["submit", *[f"pdq:{v}" for v in held], "--label", "terrorist-attack", *node]
        assert main(submit) == 0
        first = images["RGB.png"]
        wait_until(lambda: made["RGB.png"]["hashmesh"] in pdq_matches(first), 60, "indexed")
        for name, path in images.items():
            found = pdq_matches(path)
            for tool, value in made[name].items():
                assert value in found, f"{tool}'s hash of {name} not found from the file"
                assert found[value]["distance"] == 0, (name, tool)
                if name in CONVENTIONS_DIFFER:
                    expected = "rgb" if tool == "hashmesh" else "threatexchange"
                    assert found[value]["pdq_convention"] == expected, (name, tool)
        capsys.readouterr()
        main(["match", "--file", str(images["CMYK.jpg"]), *node])
        text = capsys.readouterr().out
    assert f"(threatexchange: {made['CMYK.jpg']['threatexchange']})" in text
    assert "distance=0 (threatexchange hash)" in text
