"""The dashboard in a real headless browser (Debian's chromium, driven by Selenium) against
running nodes: member1 shows the dashboard, member2 replicates with it, member3 is in the
roster but never started (an unreachable peer), and the roster expires within the warning
window. Logs in, loads every page, finds a submitted hash, sees the alerts, and watches the
live feed pick up a takedown made while it is open.

Screenshots go to a temporary folder, or to $HASHMESH_SCREENSHOTS (docs/img to refresh the
docs' pictures).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from node.core.status import node_status
from node.formats.json_views import parse_add
from protocol.entries import EntryRef
from protocol.roster import SignedRoster
from protocol.signals import VpdqFrame, encode_vpdq, value_text
from tests.node.http.dashboard.support import Node, consortium, running, wait_for

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
from selenium.common.exceptions import TimeoutException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.slow
T = TypeVar("T")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


def md5(seed: str) -> str:
    return hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()


@pytest.fixture
def driver() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip("no browser: apt-get install chromium chromium-driver")
    options = Options()
    options.binary_location = CHROMIUM
    for argument in [
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI, where Chromium's sandbox refuses to start
        "--disable-dev-shm-usage",
        "--window-size=1360,900",
        "--force-device-scale-factor=1",
    ]:
        options.add_argument(argument)
    try:
        browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as e:
        pytest.skip(f"chromium did not start: {e.msg}")
    try:
        yield browser
    finally:
        browser.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HASHMESH_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def in_thread(fn: Callable[[], T]) -> T:
    """Selenium blocks; the nodes serve from this event loop, so drive it from a thread."""
    return await asyncio.to_thread(fn)


async def submit(node: Node, items: list[dict[str, str]]) -> list[EntryRef]:
    now = node.service.clock()
    adds = [parse_add({"labels": ["terrorist-attack"], **item}, now) for item in items]
    return await node.service.submit(adds)


def page_text(browser: Any) -> str:
    return str(browser.find_element(By.TAG_NAME, "body").text)


async def test_dashboard_in_a_browser(tmp_path: Path, driver: Any, shots: Path) -> None:
    members = consortium(tmp_path, 3, roster_warn_days=400.0, sync_interval_s=3600.0)
    async with running(members.configs[0]) as one, running(members.configs[1]) as two:
        attack = [md5(f"attack video {i}") for i in range(3)]
        refs = await submit(
            two,
            [{"signal_type": "md5", "value": v, "incident": "incident-2026-03"} for v in attack],
        )
        await submit(
            one, [{"signal_type": "md5", "value": attack[0], "incident": "incident-2026-03"}]
        )
        await submit(one, [{"signal_type": "md5", "value": md5("manifesto pdf")}])
        frames = [VpdqFrame(bytes([i]) * 32, 90, i, i * 1000) for i in range(40)]
        video = value_text("vpdq", encode_vpdq(frames))
        await submit(two, [{"signal_type": "vpdq", "value": video}])
        await two.service.retract(refs[2].index, "duplicate of an earlier submission")
        two_log = two.config.origin
        await wait_for(
            lambda: node_status(one.service)["logs"].get(two_log, {}).get("size") == 5,
            10.0,
            "member2's entries at member1",
        )
        await one.service.dispute(refs[1], "not-terrorist-content", "news report, not propaganda")
        one.service.request_sync()
        await wait_for(
            lambda: (
                one.replicator is not None
                and one.replicator.peer_status().get("member3", {}).get("reachable") is False
            ),
            10.0,
            "member3 found unreachable",
        )

        # Log in with the operator token.
        def log_in() -> str:
            driver.get(one.ui)
            assert driver.current_url.endswith("/ui/login")
            driver.save_screenshot(str(shots / "dashboard-login.png"))
            before = page_text(driver) + str(driver.title)
            name = SignedRoster.decode(members.roster).roster.consortium
            assert "member1" not in before and name not in before
            driver.find_element(By.ID, "token").send_keys(one.token)
            driver.find_element(By.ID, "login").click()
            WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "members"))
            driver.save_screenshot(str(shots / "dashboard-overview.png"))
            return page_text(driver)

        overview = await in_thread(log_in)
        assert "The consortium at a glance" in overview
        assert "version 1" in overview
        for member in ["member1", "member2", "member3"]:
            assert member in overview
        assert "unreachable" in overview
        assert "Platform 2" in overview
        cookies = await in_thread(driver.get_cookies)
        session = next(c for c in cookies if c["name"] == "hashmesh_session")
        assert session["httpOnly"] is True
        assert session["sameSite"] == "Strict"

        # Search finds a submitted hash with its provenance and the dispute.
        def search() -> str:
            driver.find_element(By.LINK_TEXT, "Search").click()
            driver.find_element(By.ID, "value").send_keys(attack[1])
            driver.find_element(By.ID, "search-button").click()
            WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "verdict"))
            driver.save_screenshot(str(shots / "dashboard-search.png"))
            return page_text(driver)

        found = await in_thread(search)
        assert f"md5:{attack[1]}" in found
        assert "active: match and act on it" in found
        assert f"{two_log}#1" in found
        assert "incident-2026-03" in found
        assert "not-terrorist-content" in found
        assert "news report, not propaganda" in found

        # The alerts: the expiring roster and the unreachable peer.
        def alerts() -> str:
            driver.find_element(By.PARTIAL_LINK_TEXT, "Alerts").click()
            WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "alerts"))
            driver.save_screenshot(str(shots / "dashboard-alerts.png"))
            return page_text(driver)

        shown = await in_thread(alerts)
        assert "roster version 1 expires in" in shown
        assert "peer member3 is unreachable" in shown

        def incidents() -> str:
            driver.find_element(By.LINK_TEXT, "Incidents").click()
            WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.CLASS_NAME, "incident"))
            driver.find_element(By.TAG_NAME, "summary").click()
            driver.save_screenshot(str(shots / "dashboard-incidents.png"))
            return page_text(driver)

        grouped = await in_thread(incidents)
        assert "incident-2026-03" in grouped
        # member2's three md5 hashes are three files, one of them retracted; member1's is one.
        assert "3 takedown(s), 1 more retracted; 4 hash(es)" in grouped

        # The live feed refreshes itself: a takedown on member2 appears without a reload.
        def open_feed() -> str:
            driver.find_element(By.LINK_TEXT, "Live feed").click()
            WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "feed"))
            return page_text(driver)

        assert attack[2] in await in_thread(open_feed)

        def feed_layout() -> tuple[list[int], str]:
            driver.save_screenshot(str(shots / "dashboard-feed.png"))
            lines = driver.execute_script(
                "return [...document.querySelectorAll('#feed td.when')].map(td => {"
                "  const r = document.createRange(); r.selectNodeContents(td);"
                "  return r.getClientRects().length; });"
            )
            short = driver.find_element(By.CSS_SELECTOR, "#feed a.hash.short").text
            return lines, str(short)

        lines, short = await in_thread(feed_layout)
        # Each arrival time on one line, and the vPDQ shortened.
        assert lines and set(lines) == {1}, lines
        assert short.startswith("vpdq:") and len(short) < 80 and video not in short
        fresh = md5("livestream clip")
        await submit(two, [{"signal_type": "md5", "value": fresh}])

        def see_fresh() -> str:
            try:
                WebDriverWait(driver, 15).until(lambda d: fresh in page_text(d))
            except TimeoutException as e:
                raise AssertionError(f"the feed never showed {fresh}") from e
            assert "Updated" in driver.find_element(By.ID, "feed-state").text
            driver.save_screenshot(str(shots / "dashboard-feed.png"))
            return page_text(driver)

        feed = await in_thread(see_fresh)
        assert "member2" in feed

        # Logging out ends the session in the browser.
        def log_out() -> str:
            driver.find_element(By.CSS_SELECTOR, ".logout button").click()
            WebDriverWait(driver, 10).until(lambda d: d.find_elements(By.ID, "token"))
            driver.get(one.ui + "alerts")
            return str(driver.current_url)

        assert (await in_thread(log_out)).endswith("/ui/login")
    for name in ["login", "overview", "search", "alerts", "incidents", "feed"]:
        assert (shots / f"dashboard-{name}.png").stat().st_size > 10_000
