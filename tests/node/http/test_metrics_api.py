"""GET /metrics (node/http/metrics_api.py): the node's metrics as their exposition says."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from node.http.metrics_api import metrics_routes

EXPOSITION = b"# HELP hashmesh_alerts alerts\n# TYPE hashmesh_alerts gauge\nhashmesh_alerts 2.0\n"


class FixedMetrics:
    """An exposition that is always the same text."""

    content_type = "text/plain; version=0.0.4; charset=utf-8"

    def __init__(self) -> None:
        self.scrapes = 0

    def exposition(self) -> bytes:
        self.scrapes += 1
        return EXPOSITION


async def test_a_scrape_answers_the_current_exposition_with_its_media_type() -> None:
    metrics = FixedMetrics()
    app = web.Application()
    app.add_routes(metrics_routes(metrics))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/metrics"
        async with aiohttp.ClientSession() as http:
            for scrapes in (1, 2):
                async with http.get(url) as r:
                    assert r.status == 200
                    assert r.headers["Content-Type"] == FixedMetrics.content_type
                    assert await r.read() == EXPOSITION
                assert metrics.scrapes == scrapes  # made afresh for every scrape
    finally:
        await runner.cleanup()
