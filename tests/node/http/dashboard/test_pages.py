"""The dashboard's pages over HTTP against a real node (SQLite, operator server on loopback):
login and sessions, CSRF, what each page shows, escaping, and that the operator API keeps
requiring its bearer token beside it."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest
from yarl import URL

from node.core.status import node_status
from node.credentials.key_files import load_key
from node.errors import StoreError
from node.formats.json_views import parse_add
from node.http.dashboard.session import COOKIE_NAME, Sessions
from protocol.roster import SignedRoster
from protocol.signals import VpdqFrame, encode_vpdq, value_text
from tests.node.event_fakes import fake_outbox
from tests.node.http.dashboard.support import Node, consortium, running, wait_for


def md5(seed: str) -> str:
    return hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()


def sha256(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


async def submit(node: Node, items: list[dict[str, object]]) -> list[dict[str, object]]:
    now = node.service.clock()
    adds = [parse_add({"labels": ["terrorist-attack"], **item}, now) for item in items]
    refs = await node.service.submit(adds)
    return [{"log": r.log, "index": r.index} for r in refs]


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    members = consortium(tmp_path, 2, roster_warn_days=400.0)
    async with running(members.configs[0], replicate=False) as started:
        yield started


@pytest.fixture
async def browser() -> AsyncIterator[aiohttp.ClientSession]:
    # unsafe: keep cookies for an IP address host (127.0.0.1), as a browser does
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


def field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert found, f"no {name} field in the page"
    return found.group(1)


async def log_in(client: aiohttp.ClientSession, node: Node, token: str | None = None) -> str:
    async with client.get(node.ui + "login") as r:
        nonce = field(await r.text(), "nonce")
    async with client.post(
        node.ui + "login", data={"nonce": nonce, "token": token or node.token}
    ) as r:
        return await r.text()


async def test_every_page_needs_a_login(node: Node, browser: aiohttp.ClientSession) -> None:
    for page in ["", "feed", "incidents", "search?value=00", "alerts"]:
        async with browser.get(node.ui + page, allow_redirects=False) as r:
            assert r.status == 303
            assert r.headers["Location"] == "/ui/login"
    async with browser.get(node.ui + "feed.json") as r:
        assert r.status == 401
    async with browser.post(node.ui + "sync", allow_redirects=False) as r:
        assert r.status == 303
    async with browser.get(node.ui + "login") as r:
        assert r.status == 200
        assert "Operator token" in await r.text()
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]


async def test_a_wrong_token_or_a_stale_form_gets_no_session(
    node: Node, browser: aiohttp.ClientSession
) -> None:
    page = await log_in(browser, node, token="not-the-token")
    assert "wrong operator token" in page
    assert not browser.cookie_jar.filter_cookies(URL(node.ui)).get(COOKIE_NAME)
    async with browser.post(
        node.ui + "login", data={"nonce": "1.forged", "token": node.token}
    ) as r:
        assert r.status == 401
        assert "expired" in await r.text()
    assert not browser.cookie_jar.filter_cookies(URL(node.ui)).get(COOKIE_NAME)


async def test_login_sets_a_strict_httponly_cookie_and_logout_ends_it(
    node: Node, browser: aiohttp.ClientSession
) -> None:
    async with browser.get(node.ui + "login") as r:
        nonce = field(await r.text(), "nonce")
    async with browser.post(
        node.ui + "login", data={"nonce": nonce, "token": node.token}, allow_redirects=False
    ) as r:
        assert r.status == 303
        cookie = r.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Strict" in cookie
    assert "Path=/ui/" in cookie
    assert node.token not in cookie
    async with browser.get(node.ui) as r:
        page = await r.text()
    assert "The consortium at a glance" in page
    # Logging out needs the form's CSRF token; without it the session survives.
    async with browser.post(node.ui + "logout", data={"csrf": "wrong"}) as r:
        assert r.status == 403
    async with browser.get(node.ui, allow_redirects=False) as r:
        assert r.status == 200
    async with browser.post(node.ui + "logout", data={"csrf": field(page, "csrf")}) as r:
        assert "Operator token" in await r.text()
    stolen = cookie.split(";")[0].split("=", 1)[1]
    async with (
        aiohttp.ClientSession() as other,
        other.get(
            node.ui, headers={"Cookie": f"{COOKIE_NAME}={stolen}"}, allow_redirects=False
        ) as r,
    ):
        assert r.status == 303  # a logged-out session stays dead even with its cookie


async def test_a_tampered_cookie_is_refused(node: Node, browser: aiohttp.ClientSession) -> None:
    await log_in(browser, node)
    value = browser.cookie_jar.filter_cookies(URL(node.ui))[COOKIE_NAME].value
    expires, session_id, mac = value.split(".")
    for forged in [f"{int(expires) + 1}.{session_id}.{mac}", f"{expires}.{session_id}.{'0' * 64}"]:
        async with (
            aiohttp.ClientSession() as other,
            other.get(
                node.ui, headers={"Cookie": f"{COOKIE_NAME}={forged}"}, allow_redirects=False
            ) as r,
        ):
            assert r.status == 303


def test_sessions_expire() -> None:
    clock = [1_000]
    sessions = Sessions("secret-token", lambda: clock[0], lifetime_ms=60_000)
    assert sessions.token_matches(" secret-token\n")
    assert not sessions.token_matches("secret")
    session, cookie = sessions.open()
    assert sessions.check(cookie) == session
    nonce = sessions.login_nonce()
    assert sessions.login_nonce_ok(nonce)
    clock[0] += 60_000
    assert sessions.check(cookie) is None
    clock[0] += 3_600_000
    assert not sessions.login_nonce_ok(nonce)
    other = Sessions("secret-token", lambda: clock[0])
    assert other.check(other.open()[1]) is not None
    assert other.check(sessions.open()[1]) is None  # another process's key signed it


async def test_the_operator_api_still_wants_its_bearer_token(
    node: Node, browser: aiohttp.ClientSession
) -> None:
    await log_in(browser, node)
    api = node.config.operator_url + "/v1/status"
    async with browser.get(api) as r:
        assert r.status == 401  # a dashboard session is no API credential
    async with browser.get(api, headers={"Authorization": f"Bearer {node.token}"}) as r:
        assert r.status == 200


async def test_search_shows_provenance_and_retraction(
    node: Node, browser: aiohttp.ClientSession
) -> None:
    value = md5("search me")
    refs = await submit(node, [{"signal_type": "md5", "value": value, "incident": "inc-42"}])
    await node.service.retract(int(str(refs[0]["index"])), "submitted by mistake")
    await log_in(browser, node)
    async with browser.get(node.ui + "search", params={"value": value}) as r:
        page = await r.text()
    assert r.status == 200
    assert f"md5:{value}" in page
    assert "member1" in page
    assert "inc-42" in page
    assert "submitted by mistake" in page
    assert "retracted by every submitter" in page
    async with browser.get(
        node.ui + "search", params={"signal_type": "md5", "value": md5("never seen")}
    ) as r:
        assert "No member has submitted this hash" in await r.text()
    async with browser.get(node.ui + "search", params={"signal_type": "md5", "value": "xyz"}) as r:
        assert r.status == 400
        assert "hex" in await r.text()


async def test_submitted_text_is_escaped_everywhere(
    node: Node, browser: aiohttp.ClientSession
) -> None:
    url = 'https://example.com/"><script>alert(1)</script>'
    await submit(node, [{"signal_type": "url", "value": url}])
    await node.service.sign_pending()
    await log_in(browser, node)
    for path, params in [("search", {"value": url}), ("feed", {})]:
        async with browser.get(node.ui + path, params=params) as r:
            page = await r.text()
        assert "<script>alert(1)" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


async def test_bidi_and_control_characters_in_submitted_text_show_as_visible_escapes(
    node: Node, browser: aiohttp.ClientSession
) -> None:
    # Regression: a right-to-left override made "...\u202eexe.gpj" read as "...jpg.exe".
    url = "https://example.com/holiday\u202eexe.gpj"
    [ref] = await submit(node, [{"signal_type": "url", "value": url}])
    await node.service.retract(int(str(ref["index"])), "mis\u200bsubmitted\tby\u2066 us")
    await node.service.sign_pending()
    await log_in(browser, node)
    for path, params in [("search", {"signal_type": "url", "value": url}), ("feed", {})]:
        async with browser.get(node.ui + path, params=params) as r:
            page = await r.text()
        assert "https://example.com/holiday⟨U+202E⟩exe.gpj" in page
        assert "\u202e" not in page and "\u200b" not in page and "\u2066" not in page
        if path == "search":  # the retraction's free-text reason
            assert "mis⟨U+200B⟩submitted⟨U+0009⟩by⟨U+2066⟩ us" in page


async def test_feed_and_incidents_show_new_entries(
    node: Node, browser: aiohttp.ClientSession
) -> None:
    first, second = md5("attack video 1"), md5("attack video 2")
    await submit(
        node,
        [
            {"signal_type": "md5", "value": first, "incident": "christchurch-like-1"},
            {"signal_type": "md5", "value": second, "incident": "christchurch-like-1"},
            {"signal_type": "md5", "value": md5("unrelated")},
        ],
    )
    await log_in(browser, node)
    async with browser.get(node.ui + "feed.json") as r:
        items = (await r.json())["items"]
    assert [i["value"] for i in items][:3] == [md5("unrelated"), second, first]
    assert all(i["member"] == "member1" and i["kind"] == "add" for i in items)
    assert all(i["received_ms"] > 0 for i in items)
    async with browser.get(node.ui + "incidents") as r:
        page = await r.text()
    assert "christchurch-like-1" in page
    assert "2 takedown(s); 2 hash(es)" in page  # two md5 hashes: two files
    assert md5("unrelated") not in page


async def test_incidents_count_takedowns_not_hashes_and_retracted_ones_apart(
    node: Node, browser: aiohttp.ClientSession
) -> None:
    files = [
        [
            {"signal_type": "md5", "value": md5(f"file {n}"), "incident": "attack-7"},
            {"signal_type": "sha256", "value": sha256(f"file {n}"), "incident": "attack-7"},
        ]
        for n in range(3)
    ]
    refs = await submit(node, [item for f in files for item in f])  # one request, three files
    for ref in refs[2:4]:  # every hash of the second file
        await node.service.retract(int(str(ref["index"])), "wrong file")
    await node.service.retract(int(str(refs[4]["index"])), "half of the third file")
    await log_in(browser, node)
    async with browser.get(node.ui + "incidents") as r:
        page = await r.text()
    assert "2 takedown(s), 1 more retracted; 6 hash(es)" in page
    row = re.search(r"<td><code>member1</code></td>(.*?)</tr>", page, re.S)
    assert row is not None
    assert re.findall(r'<td class="num">(\d+)</td>', row.group(1)) == ["2", "1", "6"]


async def test_long_hashes_are_shortened_with_a_button_that_copies_them_whole(
    node: Node, browser: aiohttp.ClientSession
) -> None:
    frames = [VpdqFrame(bytes([i]) * 32, 90, i, i * 1000) for i in range(40)]
    video = value_text("vpdq", encode_vpdq(frames))
    await submit(node, [{"signal_type": "vpdq", "value": video, "incident": "attack-8"}])
    await log_in(browser, node)
    for page in ("feed", "incidents", f"search?signal_type=vpdq&value={video}"):
        async with browser.get(node.ui + page) as r:
            text = await r.text()
        assert f'data-copy="vpdq:{video}"' in text, page
        shown = re.findall(r'class="hash short" title="[^"]*">([^<]*)</a>', text)
        assert shown and all(len(s) < 80 and s.startswith("vpdq:") for s in shown), page
        assert f">vpdq:{video}<" not in text, page  # never the whole value as text
        assert "copy.js" in text


async def test_the_login_page_shows_nothing_about_the_consortium(node: Node) -> None:
    consortium_name = node_status(node.service)["roster"]["consortium"]
    async with aiohttp.ClientSession() as anonymous, anonymous.get(node.ui + "login") as r:
        page = await r.text()
    assert r.status == 200 and 'id="token"' in page
    for secret in (consortium_name, node.config.member_id, node.config.origin, "member2"):
        assert secret not in page, secret


async def test_alerts_show_an_expiring_roster_and_sync_needs_csrf(
    node: Node, browser: aiohttp.ClientSession
) -> None:
    page = await log_in(browser, node)
    assert 'id="alert-count">1<' in page
    async with browser.get(node.ui + "alerts") as r:
        alerts = await r.text()
    assert "roster version 1 expires in" in alerts
    asked = []
    node.service.request_sync = lambda: asked.append(True)
    async with browser.post(node.ui + "sync", data={"csrf": "forged"}) as r:
        assert r.status == 403
    assert not asked
    async with browser.post(node.ui + "sync", data={"csrf": field(page, "csrf")}) as r:
        assert "A sync round with every peer was asked for" in await r.text()
    await wait_for(lambda: bool(asked), 1.0, "sync requested")


async def test_overview_shows_the_webhook_outbox(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    members = consortium(tmp_path, 2)
    outbox = fake_outbox(tmp_path / "outbox.db", deliver=True)
    await outbox.open()
    try:
        async with running(members.configs[0], replicate=False, events=outbox) as node:
            await log_in(browser, node)
            async with browser.get(node.ui) as r:
                page = await r.text()
    finally:
        await outbox.close()
    assert "Webhook outbox" in page
    assert "0 pending" in page


async def test_entries_past_a_compromised_key_are_flagged_on_search_overview_and_alerts(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    members = consortium(tmp_path, 2, roster_warn_days=0.0)
    async with running(members.configs[0], replicate=False) as node:
        before, after = md5("before the theft"), md5("after the theft")
        await submit(node, [{"signal_type": "md5", "value": before}])
        await wait_for(lambda: node.service.own_checkpoint is not None, 10, "signed at 1")
        await submit(node, [{"signal_type": "md5", "value": after}])
        origin = node.config.origin
        await wait_for(
            lambda: node_status(node.service)["logs"][origin]["checkpoint_size"] == 2, 10, "at 2"
        )
        roster = node.service.rosters.roster
        me = roster.member(node.config.member_id)
        keys = tuple(
            dataclasses.replace(k, last_size=1, compromised=True) for k in me.checkpoint_keys
        )
        changed = dataclasses.replace(me, checkpoint_keys=keys)
        v2 = dataclasses.replace(
            roster,
            version=2,
            issued_ms=node.service.clock(),
            members=tuple(changed if m is me else m for m in roster.members),
        )
        _, admin = load_key(members.admin_key_paths[0])
        assert await node.service.rosters.offer(
            SignedRoster(v2.encode(), ()).with_signature(admin).encode()
        )
        page = await log_in(browser, node)
        assert "1 flagged: past-compromised-key" in page and "up to date" not in page
        async with browser.get(node.ui + "search", params={"value": after}) as r:
            flagged = await r.text()
        assert "flagged: past-compromised-key" in flagged and "review before acting" in flagged
        async with browser.get(node.ui + "search", params={"value": before}) as r:
            assert "flagged:" not in await r.text()
        async with browser.get(node.ui + "alerts") as r:
            assert "1 entries of" in await r.text()


async def test_alerts_show_a_filling_disk_and_failed_writes(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    # Any disk has less than 100 % free: the low-space alert shows at once.
    members = consortium(tmp_path, 2, disk_alert_free_percent=100.0)
    async with running(members.configs[0], replicate=False) as node:
        node.service.disk.write_failed(StoreError("database or disk is full"))
        await log_in(browser, node)
        async with browser.get(node.ui + "alerts") as r:
            page = await r.text()
    assert re.search(
        r'class="pill critical">critical</span> <span class="kind">disk</span> 1 store write', page
    )
    assert re.search(
        r'class="pill warning">warning</span> <span class="kind">disk</span> low disk space', page
    )


async def test_a_removed_members_log_shows_as_removed_and_its_node_shows_peers_refusing_it(
    tmp_path: Path,
) -> None:
    members = consortium(tmp_path, 2, sync_interval_s=0.3)
    a_config, b_config = members.configs
    async with (
        running(a_config) as a,
        running(b_config) as b,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as a_browser,
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as b_browser,
    ):
        await submit(b, [{"signal_type": "md5", "value": md5("before the removal")}])
        await wait_for(lambda: a.service.peers.replicas().get(b.config.origin), 10, "b's log at a")
        a.service.request_sync()
        await wait_for(lambda: a.service.peers.replica(b.config.origin).size == 1, 10, "b's entry")

        current = a.service.rosters.roster
        v2 = replace(
            current,
            version=2,
            members=tuple(m for m in current.members if m.member_id != b.config.member_id),
        )
        signed = SignedRoster(v2.encode(), ()).with_signature(
            load_key(members.admin_key_paths[0])[1]
        )
        assert await a.service.rosters.offer(signed.encode())

        await log_in(a_browser, a)
        async with a_browser.get(a.ui) as r:
            assert "removed from the roster" in await r.text()
        # a sends b the roster that removed it; b's peer (a) then refuses it.
        await wait_for(lambda: b.service.rosters.roster.version == 2, 10, "b told of v2")
        b.service.request_sync()
        await wait_for(
            lambda: (
                b.replicator is not None
                and b.replicator.peer_status()[a.config.member_id]["refusing"]
            ),
            10,
            "a refuses b",
        )
        await log_in(b_browser, b)
        async with b_browser.get(b.ui) as r:
            assert "refuses us" in await r.text()
        async with b_browser.get(b.ui + "alerts") as r:
            alerts = await r.text()
        assert (
            "NOT IN roster version 2" in alerts
            and f"peer {a.config.member_id} refuses us" in alerts
        )


async def test_a_node_refused_by_its_peers_says_so_before_any_roster_tells_it_why(
    tmp_path: Path, browser: aiohttp.ClientSession
) -> None:
    members = consortium(tmp_path, 2, sync_interval_s=0.3)
    a_config, b_config = members.configs
    # a does not replicate, so it cannot send b the roster that removes b.
    async with running(a_config, replicate=False) as a, running(b_config) as b:
        current = a.service.rosters.roster
        v2 = replace(
            current,
            version=2,
            members=tuple(m for m in current.members if m.member_id != b.config.member_id),
        )
        signed = SignedRoster(v2.encode(), ()).with_signature(
            load_key(members.admin_key_paths[0])[1]
        )
        assert await a.service.rosters.offer(signed.encode())
        b.service.request_sync()
        await wait_for(lambda: b.service.refused_by() == [a.config.member_id], 10, "refused")
        assert b.replicator is not None
        assert b.replicator.peer_status()[a.config.member_id]["reachable"] is False
        assert node_status(b.service)["in_roster"] is True  # b holds no roster without it yet
        await log_in(browser, b)
        async with browser.get(b.ui + "alerts") as r:
            alerts = await r.text()
        assert f"peers refuse us (401): {a.config.member_id}" in alerts
