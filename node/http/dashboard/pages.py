"""The dashboard's pages: server-rendered (Jinja2, autoescaped) behind a login.

Every page but the login form needs a session cookie (see session.py); every POST needs the
form's CSRF token. Pages only read the node through NodeService and the replicator's peer
status, the same sources as the operator API. The actions: "sync now" asks for an
anti-entropy round; the review queue's confirm and dispute buttons append a confirmation or
a dispute to our log, as `hashmesh confirm` and `hashmesh dispute` do. A small script
(static/feed.js) refreshes the live feed from feed.json. Every value a template shows passes
`visible` (the environment's finalize; filters.py), so control, bidi and other invisible
format characters in peer-supplied text show as ⟨U+202E⟩ instead of reordering or hiding what
is around them. The routes that lead to these handlers are in app.py.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

import jinja2
from aiohttp import web

from node.core.service import NodeService
from node.core.status import node_status
from node.errors import NodeError, RequestError
from node.formats.json_views import view_json
from node.http.dashboard import panels, queries
from node.http.dashboard.filters import duration, visible, when
from node.http.dashboard.session import COOKIE_NAME, Session, Sessions
from protocol.entries import EntryRef
from protocol.errors import ProtocolError, ValidationError
from protocol.reason_codes import CONFIRM_REASONS, DISPUTE_REASONS
from protocol.signal_names import SIGNAL_TYPES
from protocol.signals import parse_value

PeerStatus = Callable[[], dict[str, dict[str, object]]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PageHandler = Callable[[web.Request, Session], Awaitable[web.StreamResponse]]
HERE = Path(__file__).parent
FAILED_LOGIN_DELAY_S = 0.5
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class EventSource(Protocol):
    """The part of the event outbox the dashboard reads: its cursor and webhook backlog."""

    async def latest_id(self) -> int: ...
    async def pending_count(self) -> int: ...


class Dashboard:
    """The dashboard of one node: its sessions, templates and page handlers."""

    def __init__(
        self,
        service: NodeService,
        token: str,
        peer_status: PeerStatus | None,
        events: EventSource | None,
    ) -> None:
        self.service = service
        self.sessions = Sessions(token, service.clock)
        self.peer_status = peer_status
        self.events = events
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(HERE / "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            finalize=visible,
        )
        self.templates.filters["visible"] = visible
        self.templates.filters["when"] = when
        self.templates.filters["duration"] = duration
        #: The dashboard's own routes, named; `request.app` may be the server it is mounted on.
        self.app = web.Application()
        self.router = self.app.router

    def peers(self) -> dict[str, dict[str, object]]:
        return self.peer_status() if self.peer_status else {}

    def render(
        self,
        request: web.Request,
        name: str,
        session: Session | None,
        status: int = 200,
        **ctx: Any,
    ) -> web.Response:
        def url(route: str, **query: str) -> str:
            return str(self.router[route].url_for().with_query(query or None))

        def static(filename: str) -> str:
            return str(self.router["static"].url_for(filename=filename))

        status_now = node_status(self.service)
        text = self.templates.get_template(name).render(
            url=url,
            static=static,
            page=name.removesuffix(".html"),
            csrf=self.sessions.csrf_token(session) if session else "",
            logged_in=session is not None,
            # Nothing about the consortium before login: the login page is public.
            member_id=self.service.config.member_id if session else "",
            consortium=status_now["roster"]["consortium"] if session else "",
            alert_count=len(panels.alerts(status_now, self.peers())) if session else 0,
            now_ms=self.service.clock(),
            **ctx,
        )
        return web.Response(
            text=text, content_type="text/html", status=status, headers=SECURITY_HEADERS
        )

    def page(self, handler: PageHandler) -> Handler:
        """Require a live session; show our own errors as a page, not a traceback."""

        @functools.wraps(handler)
        async def wrapped(request: web.Request) -> web.StreamResponse:
            session = self.sessions.check(request.cookies.get(COOKIE_NAME))
            if session is None:
                if request.path.endswith(".json"):
                    return web.json_response({"error": "log in first"}, status=401)
                raise web.HTTPSeeOther(self.router["login"].url_for())
            if request.method == "POST":
                form = await request.post()
                if not self.sessions.csrf_ok(session, _text(form.get("csrf"))):
                    return self.render(
                        request, "error.html", session, 403, message="stale form; reload the page"
                    )
            try:
                return await handler(request, session)
            except (NodeError, ProtocolError) as e:
                return self.render(request, "error.html", session, 400, message=str(e))

        return wrapped

    # Logging in and out.

    async def login_form(self, request: web.Request) -> web.Response:
        return self.render(request, "login.html", None, nonce=self.sessions.login_nonce(), error="")

    async def login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        if not self.sessions.login_nonce_ok(_text(form.get("nonce"))):
            error = "the login form expired; try again"
        elif not self.sessions.token_matches(_text(form.get("token")) or ""):
            await asyncio.sleep(FAILED_LOGIN_DELAY_S)  # slows guessing; tokens are long anyway
            error = "wrong operator token"
        else:
            session, cookie = self.sessions.open()
            response = web.HTTPSeeOther(self.router["overview"].url_for())
            response.set_cookie(
                COOKIE_NAME,
                cookie,
                max_age=max(1, (session.expires_ms - self.service.clock()) // 1000),
                path=str(self.router["overview"].url_for()),
                httponly=True,
                samesite="Strict",
                secure=request.secure,
            )
            raise response
        return self.render(
            request, "login.html", None, 401, nonce=self.sessions.login_nonce(), error=error
        )

    async def logout(self, request: web.Request, session: Session) -> web.StreamResponse:
        self.sessions.close(session)
        response = web.HTTPSeeOther(self.router["login"].url_for())
        response.del_cookie(COOKIE_NAME, path=str(self.router["overview"].url_for()))
        raise response

    # Pages.

    async def overview(self, request: web.Request, session: Session) -> web.Response:
        status = node_status(self.service)
        peers = self.peers()
        roster = self.service.rosters.roster
        outbox = None
        if self.events is not None:
            outbox = {
                "latest": await self.events.latest_id(),
                "pending": await self.events.pending_count(),
            }
        return self.render(
            request,
            "overview.html",
            session,
            roster=roster,
            members=panels.member_rows(roster, self.service.config.member_id, peers),
            logs=panels.log_rows(status),
            last_sync_ms=panels.last_sync_ms(peers),
            outbox=outbox,
            synced=request.query.get("synced") == "1",
        )

    async def sync_now(self, request: web.Request, session: Session) -> web.StreamResponse:
        self.service.request_sync()
        raise web.HTTPSeeOther(self.router["overview"].url_for().with_query({"synced": "1"}))

    async def feed(self, request: web.Request, session: Session) -> web.Response:
        items = await queries.recent_entries(self.service)
        return self.render(request, "feed.html", session, items=items)

    async def feed_json(self, request: web.Request, session: Session) -> web.Response:
        items = await queries.recent_entries(self.service)
        body = {"now_ms": self.service.clock(), "items": [i.to_json() for i in items]}
        return web.json_response(body, headers=SECURITY_HEADERS)

    async def incidents(self, request: web.Request, session: Session) -> web.Response:
        found = await queries.incidents(self.service)
        return self.render(request, "incidents.html", session, incidents=found)

    async def search(self, request: web.Request, session: Session) -> web.Response:
        signal_type = request.query.get("signal_type", "any")
        value = request.query.get("value", "").strip()
        results: list[dict[str, Any]] = []
        error = ""
        if value:
            try:
                results = await self._lookup(signal_type, value)
            except ValidationError as e:
                error = str(e)
        return self.render(
            request,
            "search.html",
            session,
            400 if error else 200,
            signal_types=SIGNAL_TYPES,
            signal_type=signal_type,
            value=value,
            results=results,
            searched=bool(value) and not error,
            error=error,
        )

    async def _lookup(self, signal_type: str, text: str) -> list[dict[str, Any]]:
        """Views of the hash under the type asked, or under every type it can be ("any")."""
        if signal_type != "any" and signal_type not in SIGNAL_TYPES:
            raise ValidationError(f"unknown signal type {signal_type!r}")
        kinds = SIGNAL_TYPES if signal_type == "any" else (signal_type,)
        parsed = []
        last: ValidationError | None = None
        for kind in kinds:
            try:
                parsed.append((kind, parse_value(kind, text)))
            except ValidationError as e:
                if signal_type != "any":
                    raise
                last = e
        if not parsed:
            raise ValidationError(f"not a hash or URL of any signal type ({last})")
        member_of = queries.member_lookup(self.service)
        results = []
        for kind, value in parsed:
            for view in await self.service.lookup(kind, [value]):
                if view.submissions or signal_type != "any":
                    results.append(view_json(view, member_of))
        return results

    async def review(self, request: web.Request, session: Session) -> web.Response:
        items = await queries.review_items(self.service)
        return self.render(
            request,
            "review.html",
            session,
            items=items,
            done=request.query.get("done", ""),
            confirm_reasons=CONFIRM_REASONS,
            dispute_reasons=DISPUTE_REASONS,
        )

    async def review_confirm(self, request: web.Request, session: Session) -> web.StreamResponse:
        form = await request.post()
        target = _target(form.get("log"), form.get("index"))
        ref = await self.service.confirm(target, _text(form.get("reason_code")) or "", "")
        done = f"confirmed {target.log}#{target.index} (your entry #{ref.index})"
        raise web.HTTPSeeOther(self.router["review"].url_for().with_query({"done": done}))

    async def review_dispute(self, request: web.Request, session: Session) -> web.StreamResponse:
        form = await request.post()
        target = _target(form.get("log"), form.get("index"))
        reason_code, text = _text(form.get("reason_code")) or "", _text(form.get("text")) or ""
        ref = await self.service.dispute(target, reason_code, text)
        done = f"disputed {target.log}#{target.index} (your entry #{ref.index})"
        raise web.HTTPSeeOther(self.router["review"].url_for().with_query({"done": done}))

    async def alerts(self, request: web.Request, session: Session) -> web.Response:
        status = node_status(self.service)
        return self.render(
            request,
            "alerts.html",
            session,
            alerts=panels.alerts(status, self.peers()),
            equivocations=status.get("equivocations", []),
        )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _target(log: object, index: object) -> EntryRef:
    """The entry a review form names; a malformed one is the operator's request error."""
    text = _text(index) or ""
    if not _text(log) or not text.isdigit() or len(text) > 19:
        raise RequestError("the form names no entry (log and index)")
    return EntryRef(str(log), int(text))
