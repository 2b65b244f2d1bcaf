"""Retracting through the operator API (`POST /v1/retract`), over real HTTP on loopback: an
entry is retracted once, whoever asks and however many ask at once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp

from node.formats.json_views import parse_add
from protocol.entries import EntryRef, Retract, decode_entry
from tests.node.conftest import StoreFor
from tests.node.lossy import new_md5
from tests.node.services import Served, consortium, now_ms, served


async def post_retract(
    http: aiohttp.ClientSession, node: Served, body: dict[str, Any]
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {node.token}"}
    async with http.post(f"{node.operator_url}/v1/retract", json=body, headers=headers) as r:
        return r.status, await r.json()


async def test_two_concurrent_retracts_of_one_index_leave_exactly_one_retraction(
    tmp_path: Path, store_for: StoreFor
) -> None:
    config = consortium(tmp_path).configs[0]
    async with served(config, store_for(config)) as node, aiohttp.ClientSession() as http:
        await node.service.submit([parse_add(new_md5(), now_ms())])
        answers = await asyncio.gather(
            post_retract(http, node, {"index": 0, "reason": "mistake"}),
            post_retract(http, node, {"index": 0, "reason": "mistake"}),
        )
        assert [status for status, _ in answers] == [200, 200], answers
        retraction = {"log": config.origin, "index": 1}
        assert [body["entry"] for _, body in answers] == [retraction, retraction]
        assert sorted(body["appended"] for _, body in answers) == [False, True]
        raws = await node.service.store.entries(config.origin, 0, 10)
        retracts = [decode_entry(raw) for raw in raws[1:]]
        assert len(raws) == 2 and isinstance(retracts[0], Retract)
        assert retracts[0].target == EntryRef(config.origin, 0)


async def test_retracting_a_retraction_answers_400_with_the_reason(
    tmp_path: Path, store_for: StoreFor
) -> None:
    config = consortium(tmp_path).configs[0]
    async with served(config, store_for(config)) as node, aiohttp.ClientSession() as http:
        await node.service.submit([parse_add(new_md5(), now_ms())])
        status, body = await post_retract(http, node, {"index": 0})
        assert (status, body["appended"]) == (200, True)
        status, body = await post_retract(http, node, {"index": 1})
        assert status == 400 and "is a retraction" in body["detail"], body
        status, body = await post_retract(http, node, {"index": -1})
        assert status == 400 and "no entry -1" in body["detail"], body
        assert node.service.own_size == 2
