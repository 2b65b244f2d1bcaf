"""The dashboard's review queue against two real nodes (SQLite, replication on loopback): a
hash matched on this platform that one other member alone stands behind is listed, oldest
first, with confirm and dispute buttons that need the session's CSRF token; confirming it
appends a confirmation that reaches the origin, the hash leaves the queue, and its search
page shows who stands behind it."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from node.formats.json_views import parse_add
from protocol.entries import EntryRef
from tests.node.http.dashboard.support import Node, consortium, running, wait_for


def md5(seed: str) -> str:
    return hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()


async def submit(node: Node, value: str) -> EntryRef:
    add = parse_add({"signal_type": "md5", "value": value, "labels": ["recruitment"]}, 1)
    (ref,) = await node.service.submit([add])
    return ref


async def match(node: Node, values: list[str]) -> None:
    """A match through the operator API, as the platform's systems make one."""
    body = {"hashes": [{"signal_type": "md5", "value": v} for v in values]}
    headers = {"Authorization": f"Bearer {node.token}"}
    async with aiohttp.ClientSession() as client:
        url = f"{node.config.operator_url}/v1/match"
        async with client.post(url, json=body, headers=headers) as r:
            assert r.status == 200, await r.text()


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def log_in(client: aiohttp.ClientSession, node: Node) -> str:
    async with client.get(node.ui + "login") as r:
        nonce = field(await r.text(), "nonce")
    async with client.post(node.ui + "login", data={"nonce": nonce, "token": node.token}) as r:
        return await r.text()


async def test_a_hash_only_its_origin_stands_behind_is_queued_and_confirmed_with_csrf(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    members = consortium(tmp_path, 2, sync_interval_s=0.5, sync_jitter_s=0.1)
    async with running(members.configs[0]) as origin, running(members.configs[1]) as reviewer:
        older, newer, ours = md5("older"), md5("newer"), md5("ours")
        older_ref = await submit(origin, older)
        await submit(origin, newer)
        await submit(reviewer, ours)

        async def held() -> bool:
            views = await reviewer.service.lookup("md5", [bytes.fromhex(newer)])
            return bool(views[0].submissions)

        await wait_for(held, 30, "the origin's hashes reached the reviewer")
        await match(reviewer, [older])
        await match(reviewer, [newer, ours, md5("never submitted")])

        page = await log_in(browser, reviewer)
        async with browser.get(reviewer.ui + "review") as r:
            queue = await r.text()
        assert older in queue and newer in queue
        assert queue.index(older) < queue.index(newer)  # oldest match first
        assert ours not in queue  # our own hash: we cannot confirm it

        form = {"log": older_ref.log, "index": str(older_ref.index), "reason_code": "reviewed"}
        size = reviewer.service.own_size
        async with browser.post(reviewer.ui + "review/confirm", data={**form, "csrf": "x"}) as r:
            assert r.status == 403
        assert reviewer.service.own_size == size  # nothing appended without the session's token
        async with browser.post(
            reviewer.ui + "review/confirm", data={**form, "csrf": field(page, "csrf")}
        ) as r:
            assert r.status == 200
            after = await r.text()
        assert 'id="done"' in after and f"confirmed {older_ref.log}#{older_ref.index}" in after
        assert older not in after and newer in after  # two members stand behind it now
        async with browser.get(reviewer.ui + "search", params={"value": older}) as r:
            shown = await r.text()
        assert "2 member(s) stand behind it" in shown
        assert 'class="confirmation"' in shown and "reviewed" in shown

        async def confirmed_at_origin() -> bool:
            (view,) = await origin.service.lookup("md5", [bytes.fromhex(older)])
            notes = view.submissions[0].confirmations
            return [n.ref.log for n in notes] == [reviewer.config.origin]

        await wait_for(confirmed_at_origin, 30, "the confirmation reached the origin")
