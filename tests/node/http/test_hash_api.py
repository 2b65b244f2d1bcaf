"""Hashing and matching uploaded files through the operator API, over real HTTP on loopback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes

from node.matching.hashing import hash_file
from protocol.entries import Add
from tests.node.conftest import StoreFor
from tests.node.services import consortium, now_ms, served
from tests.pdq_modes import pillow_modes

DATA = Path(__file__).resolve().parents[2] / "data"
IMAGE = DATA / "pdq" / "q0746.jpg"
VIDEO = DATA / "vpdq" / "test-padded-dimensions.mp4"


async def _post(url: str, token: str, files: list[Path]) -> tuple[int, dict[str, object]]:
    form = aiohttp.FormData()
    for path in files:
        form.add_field("file", path.read_bytes(), filename=path.name)
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=form, headers=headers) as r,
    ):
        return r.status, await r.json()


async def test_uploaded_files_are_hashed_as_the_cli_hashes_them(
    tmp_path: Path, store_for: StoreFor
) -> None:
    setup = consortium(tmp_path)
    async with served(setup.configs[0], store_for(setup.configs[0])) as node:
        status, body = await _post(f"{node.operator_url}/v1/hash", node.token, [IMAGE, VIDEO])
    assert status == 200
    [image, video] = body["files"]  # type: ignore[misc]
    assert [h["signal_type"] for h in image["hashes"]] == ["md5", "sha256", "pdq"]
    local = {h.signal_type: h.value.hex() for h in hash_file(IMAGE)}
    assert {h["signal_type"]: h["value"] for h in image["hashes"]}["pdq"] == local["pdq"]
    assert {"vpdq", "video_md5"} <= {h["signal_type"] for h in video["hashes"]}
    assert not list((setup.configs[0].data_dir / "uploads").iterdir())  # nothing kept


async def test_uploaded_files_are_matched_against_the_consortium(
    tmp_path: Path, store_for: StoreFor
) -> None:
    setup = consortium(tmp_path)
    async with served(setup.configs[0], store_for(setup.configs[0])) as node:
        [pdq] = [h.value for h in hash_file(IMAGE) if h.signal_type == "pdq"]
        await node.service.submit([Add(now_ms(), "pdq", pdq)])
        await node.service.sign_pending()
        status, body = await _post(f"{node.operator_url}/v1/match/files", node.token, [IMAGE])
        unauthorised, _ = await _post(f"{node.operator_url}/v1/match/files", "wrong", [IMAGE])
    assert status == 200 and unauthorised == 401
    [upload] = body["files"]  # type: ignore[misc]
    assert upload["found"]
    pdq_result = next(r for r in upload["results"] if r["query"]["signal_type"] == "pdq")
    assert pdq_result["matches"][0]["distance"] == 0


async def test_status_says_whether_the_match_index_has_loaded_what_the_store_holds(
    tmp_path: Path, store_for: StoreFor
) -> None:
    setup = consortium(tmp_path)
    config = setup.configs[0]
    async with served(config, store_for(config)) as node:
        await node.service.submit([Add(now_ms(), "pdq", bytes(range(32)))])
        await node.service.sign_pending()
    # Started again on the same store: the entry is stored, the index not yet loaded.
    async with served(config, store_for(config)) as node:
        headers = {"Authorization": f"Bearer {node.token}"}
        async with aiohttp.ClientSession(headers=headers) as session:
            async with session.get(f"{node.operator_url}/v1/status") as r:
                before = (await r.json())["match_index"]
            await node.service.matcher.load()
            async with session.get(f"{node.operator_url}/v1/status") as r:
                after = (await r.json())["match_index"]
    assert before == {"loaded": False, "hashes": {"pdq": 0, "vpdq": 0}}
    assert after == {"loaded": True, "hashes": {"pdq": 1, "vpdq": 0}}


async def test_an_upload_is_matched_by_the_hash_python_threatexchange_made_of_it(
    tmp_path: Path, store_for: StoreFor
) -> None:
    cmyk = pillow_modes(tmp_path / "modes")["CMYK.jpg"]
    theirs = bytes.fromhex(pdq_from_bytes(cmyk.read_bytes())[0])
    setup = consortium(tmp_path)
    async with served(setup.configs[0], store_for(setup.configs[0])) as node:
        await node.service.submit([Add(now_ms(), "pdq", theirs)])
        await node.service.sign_pending()
        status, body = await _post(f"{node.operator_url}/v1/match/files", node.token, [cmyk])
    assert status == 200
    [upload] = body["files"]  # type: ignore[misc]
    [pdq] = [h for h in upload["hashes"] if h["signal_type"] == "pdq"]
    assert pdq["threatexchange_value"] == theirs.hex() and pdq["threatexchange_quality"] == 100
    assert _distance(bytes.fromhex(pdq["value"]), theirs) == 256  # the picture's negative
    [result] = [r for r in upload["results"] if r["query"]["signal_type"] == "pdq"]
    [match] = result["matches"]
    assert (match["value"], match["distance"], match["pdq_convention"]) == (
        theirs.hex(),
        0,
        "threatexchange",
    )


def _flip(value: bytes, bits: int) -> bytes:
    return (int.from_bytes(value, "big") ^ ((1 << bits) - 1)).to_bytes(32, "big")


def _distance(a: bytes, b: bytes) -> int:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()


async def test_a_pdq_query_with_both_hashes_finds_each_stored_hash_once_at_the_nearer(
    tmp_path: Path, store_for: StoreFor
) -> None:
    stored = bytes(range(32))
    queries = [
        {"value": stored.hex(), "threatexchange_value": _flip(stored, 5).hex()},
        {"value": _flip(stored, 20).hex(), "threatexchange_value": _flip(stored, 3).hex()},
        {"value": _flip(stored, 40).hex(), "threatexchange_value": _flip(stored, 50).hex()},
    ]
    bad = [
        {"signal_type": "md5", "value": "00" * 16, "threatexchange_value": stored.hex()},
        {"signal_type": "pdq", "value": stored.hex(), "threatexchange_value": "00" * 31},
        {"signal_type": "pdq", "value": stored.hex(), "threatexchange_value": 7},
    ]
    setup = consortium(tmp_path)
    async with served(setup.configs[0], store_for(setup.configs[0])) as node:
        await node.service.submit([Add(now_ms(), "pdq", stored)])
        await node.service.sign_pending()
        body = {"hashes": [{"signal_type": "pdq", **q} for q in queries]}
        status, answer = await _post_json(f"{node.operator_url}/v1/match", node.token, body)
        refused = [
            (await _post_json(f"{node.operator_url}/v1/match", node.token, {"hashes": [b]}))[0]
            for b in bad
        ]
    assert status == 200 and refused == [400, 400, 400]
    found = [
        [(m["distance"], m["pdq_convention"]) for m in r["matches"]] for r in answer["results"]
    ]
    assert found == [[(0, "rgb")], [(3, "threatexchange")], []]


async def _post_json(url: str, token: str, body: object) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body, headers=headers) as r,
    ):
        return r.status, await r.json()


MEDIA_PROBE = """
import json, sys
import node.app.runner
print(json.dumps(sorted(sys.modules)))
"""


def test_a_running_node_holds_no_media_hashing_library_until_a_file_is_uploaded() -> None:
    """Pillow, pdqhash and vpdq (with FFmpeg's libraries, about 30 MB resident) are imported
    by the first upload's hashing thread, not when the node starts."""
    done = subprocess.run(
        [sys.executable, "-c", MEDIA_PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(done.stdout))
    media = ("PIL", "pdqhash", "vpdq", "node.matching.hashing")
    assert [m for m in media if m in loaded] == []
