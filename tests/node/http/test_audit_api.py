"""The public auditor API (node/http/audit_api.py) over real HTTP, on SQLite and PostgreSQL: no
authentication for its GETs, bounded answers, a bound on requests at once, and no exemption
for anything else."""

from __future__ import annotations

import base64
from pathlib import Path

import aiohttp
import pytest

from node.http import audit_api
from protocol import merkle
from protocol.entries import Add
from protocol.roster import verify_chain
from protocol.tlogproof import parse_tlog_proof
from protocol.trust import open_trusted
from tests.node.conftest import StoreFor
from tests.node.services import consortium, now_ms, served


async def test_an_unauthenticated_auditor_gets_checkpoints_by_size_and_proofs_against_them(
    tmp_path: Path, store_for: StoreFor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_api, "MAX_SIZES", 2)
    owner, _ = consortium(tmp_path).configs
    async with served(owner, store_for(owner)) as node, aiohttp.ClientSession() as http:
        for i in range(3):
            await node.service.submit([Add(now_ms(), "md5", bytes([i]) * 16)])
            await node.service.sign_pending()
        base, log = node.peer_url + "/v1/audit", owner.origin
        async with http.get(f"{base}/rosters") as r:
            chain = [base64.b64decode(x) for x in (await r.json())["rosters"]]
        roster = verify_chain(chain[0], chain[1:], now_ms())
        async with http.get(f"{base}/checkpoints", params={"log": log}) as r:
            assert await r.json() == {"log": log, "sizes": [1, 2], "more": True}
        async with http.get(f"{base}/checkpoints", params={"log": log, "after": "2"}) as r:
            assert (await r.json())["sizes"] == [3]
        async with http.get(f"{base}/checkpoint", params={"log": log, "size": "1"}) as r:
            assert open_trusted(await r.read(), roster, log).checkpoint.size == 1
        params = {"log": log, "index": "0", "size": "2"}
        async with http.get(f"{base}/proof", params=params) as r:
            answer = await r.json()
        proof = parse_tlog_proof(answer["tlog_proof"].encode())
        cp = open_trusted(proof.checkpoint_raw, roster, log).checkpoint
        entry = (await node.service.store.entries(log, 0, 1))[0]
        merkle.verify_inclusion(0, cp.size, merkle.leaf_hash(entry), proof.proof, cp.root)
        assert answer["size"] == cp.size == 2 and "entry" not in answer
        # Writes and the rest of the peer API still need a signed request.
        async with http.post(f"{base}/rosters") as r:
            assert r.status == 401
        async with http.get(node.peer_url + "/v1/checkpoints") as r:
            assert r.status == 401


async def test_auditor_requests_beyond_the_bound_are_answered_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit_api, "PUBLIC_CONCURRENCY", 0)
    owner, _ = consortium(tmp_path).configs
    async with (
        served(owner) as node,
        aiohttp.ClientSession() as http,
        http.get(node.peer_url + "/v1/audit/rosters") as r,
    ):
        assert r.status == 503 and r.headers["Retry-After"] == "1"
