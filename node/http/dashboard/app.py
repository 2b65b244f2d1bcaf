"""The dashboard's routes: its pages (pages.py) as an aiohttp application, and that application
mounted under /ui of the operator server, where it keeps its own login (a session cookie, not
the operator API's bearer token).
"""

from __future__ import annotations

from aiohttp import web

from node.core.service import NodeService
from node.http.dashboard.pages import HERE, Dashboard, EventSource, Handler, PeerStatus


def dashboard_app(
    service: NodeService,
    token: str,
    peer_status: PeerStatus | None,
    events: EventSource | None = None,
) -> web.Application:
    """The dashboard as an aiohttp application, to be mounted under /ui (see mount_dashboard)."""
    board = Dashboard(service, token, peer_status, events)
    app = board.app
    app.router.add_get("/", board.page(board.overview), name="overview")
    app.router.add_get("/login", board.login_form, name="login")
    app.router.add_post("/login", board.login, name="login_post")
    app.router.add_post("/logout", board.page(board.logout), name="logout")
    app.router.add_post("/sync", board.page(board.sync_now), name="sync")
    app.router.add_get("/feed", board.page(board.feed), name="feed")
    app.router.add_get("/feed.json", board.page(board.feed_json), name="feed_json")
    app.router.add_get("/incidents", board.page(board.incidents), name="incidents")
    app.router.add_get("/search", board.page(board.search), name="search")
    app.router.add_get("/alerts", board.page(board.alerts), name="alerts")
    app.router.add_get("/review", board.page(board.review), name="review")
    app.router.add_post("/review/confirm", board.page(board.review_confirm), name="review_confirm")
    app.router.add_post("/review/dispute", board.page(board.review_dispute), name="review_dispute")
    app.router.add_static("/static", HERE / "static", name="static")
    return app


def mount_dashboard(
    operator: web.Application,
    service: NodeService,
    token: str,
    peer_status: PeerStatus | None,
    events: EventSource | None = None,
    prefix: str = "/ui",
) -> web.Application:
    """Serve the dashboard at `prefix` of the operator server; returns the dashboard app.

    The operator API's middlewares (a bearer token on every request, JSON errors) would also
    wrap a sub-application's handlers, but a browser sends a session cookie, not a bearer
    token. So a first middleware hands requests routed into the dashboard straight to their
    handler, each of which checks its own session (Dashboard.page); every other request
    goes through the operator API's checks as before.
    """
    dashboard = dashboard_app(service, token, peer_status, events)

    @web.middleware
    async def dashboard_own_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if dashboard in request.match_info.apps:
            return await request.match_info.handler(request)
        return await handler(request)

    operator.middlewares.insert(0, dashboard_own_auth)
    operator.add_subapp(prefix, dashboard)
    return dashboard
