"""GET /metrics on the operator API (behind its bearer token, like every operator route): the
node's Prometheus metrics (node/app/metrics.py)."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web


class Exposition(Protocol):
    """Metrics in a text exposition format."""

    @property
    def content_type(self) -> str: ...

    def exposition(self) -> bytes: ...


def metrics_routes(metrics: Exposition) -> list[web.RouteDef]:
    """GET /metrics for the operator app."""

    async def scrape(request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition(), headers={"Content-Type": metrics.content_type}
        )

    return [web.get("/metrics", scrape)]
