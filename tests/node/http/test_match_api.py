"""Matching hashes through the operator API (`POST /v1/match`), over real HTTP on loopback."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from protocol.entries import Add
from tests.node.conftest import StoreFor
from tests.node.services import consortium, now_ms, served


def _flip(h: bytes, bits: list[int]) -> bytes:
    v = int.from_bytes(h, "big")
    for b in bits:
        v ^= 1 << b
    return v.to_bytes(32, "big")


async def _match(url: str, token: str, hashes: list[dict[str, str]]) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.post(f"{url}/v1/match", json={"hashes": hashes}) as r,
    ):
        assert r.status == 200
        body: dict[str, Any] = await r.json()
        return list(body["results"])


def _count_reads(store: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Calls of the store's entry reads from now on, by name (counted as they happen)."""
    calls = {"entries": 0, "find_adds": 0}
    for name in calls:
        original = getattr(store, name)

        async def counted(*args: Any, _name: str = name, _original: Any = original) -> Any:
            calls[_name] += 1
            return await _original(*args)

        monkeypatch.setattr(store, name, counted)
    return calls


def _pdq(value: bytes) -> dict[str, str]:
    return {"signal_type": "pdq", "value": value.hex()}


async def test_a_batch_of_pdq_matches_reads_the_store_once_for_all_its_hits(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(20)
    held = [rng.randbytes(32) for _ in range(40)]
    setup = consortium(tmp_path)
    async with served(setup.configs[0], store_for(setup.configs[0])) as node:
        await node.service.submit([Add(now_ms(), "pdq", h) for h in held])
        await node.service.sign_pending()
        calls = _count_reads(node.service.store, monkeypatch)
        queries = [_pdq(_flip(h, rng.sample(range(256), 10))) for h in held]
        results = await _match(node.operator_url, node.token, queries)
    assert [r["matches"][0]["value"] for r in results] == [h.hex() for h in held]
    # One read of the hits' provenance for the whole batch, none per query or per hit.
    assert calls == {"entries": 0, "find_adds": 1}


async def test_a_batch_of_pdq_matches_reads_its_hits_near_duplicates_in_one_store_read(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each hit's corroboration names the near-duplicates of it that are held: their adds
    are read in one store read for the whole batch, not one read each."""
    rng = random.Random(21)
    held = [rng.randbytes(32) for _ in range(20)]
    variants = [_flip(h, rng.sample(range(256), 5)) for h in held]
    setup = consortium(tmp_path)
    async with served(setup.configs[0], store_for(setup.configs[0])) as node:
        await node.service.submit([Add(now_ms(), "pdq", h) for h in held + variants])
        await node.service.sign_pending()
        calls = _count_reads(node.service.store, monkeypatch)
        results = await _match(node.operator_url, node.token, [_pdq(h) for h in held])
    assert [[m["value"] for m in r["matches"]] for r in results] == [
        [h.hex(), v.hex()] for h, v in zip(held, variants, strict=True)
    ]
    # The hits' views, then their near-duplicates' adds: two reads for the whole batch.
    assert calls == {"entries": 0, "find_adds": 2}


async def test_each_query_of_a_mixed_batch_gets_its_own_matches_nearest_first(
    tmp_path: Path, store_for: StoreFor
) -> None:
    rng = random.Random(21)
    base = rng.randbytes(32)
    near = _flip(base, list(range(0, 200, 20)))  # 10 bits from base
    far = rng.randbytes(32)
    md5 = rng.randbytes(16)
    setup = consortium(tmp_path)
    async with served(setup.configs[0], store_for(setup.configs[0])) as node:
        adds = [Add(now_ms(), "pdq", v) for v in (base, near, base)] + [Add(now_ms(), "md5", md5)]
        await node.service.submit(adds)
        await node.service.sign_pending()
        query = _flip(base, [1, 3])  # 2 bits from base, 12 from near
        asked = [
            _pdq(query),
            {"signal_type": "md5", "value": md5.hex()},
            _pdq(far),
            _pdq(query),
            {"signal_type": "md5", "value": rng.randbytes(16).hex()},
        ]
        batch = await _match(node.operator_url, node.token, asked)
        one_by_one = [(await _match(node.operator_url, node.token, [a]))[0] for a in asked]
    assert batch == one_by_one
    assert [r["query"] for r in batch] == asked
    assert [r["found"] for r in batch] == [True, True, False, True, False]
    first = batch[0]["matches"]
    # base is held twice (one view, two submissions); near once; nearest first.
    assert [(m["value"], m["distance"]) for m in first] == [(base.hex(), 2), (near.hex(), 12)]
    assert len(first[0]["submissions"]) == 2
    assert batch[1]["matches"][0]["value"] == md5.hex()


async def test_a_match_merges_a_large_buffer_of_recent_adds_so_searches_stop_scanning_it(
    tmp_path: Path, store_for: StoreFor
) -> None:
    rng = random.Random(22)
    held = [rng.randbytes(32) for _ in range(5000)]  # fewer than a merge at add time needs
    setup = consortium(tmp_path)
    async with served(setup.configs[0], store_for(setup.configs[0])) as node:
        await node.service.submit([Add(now_ms(), "pdq", h) for h in held])
        await node.service.sign_pending()
        index = node.service.matcher.index
        before = index.pdq_buffered()
        results = await _match(node.operator_url, node.token, [_pdq(_flip(held[7], [0, 9]))])
        after = index.pdq_buffered()
    assert before == len(held)
    assert after == 0
    assert results[0]["matches"][0]["value"] == held[7].hex()
