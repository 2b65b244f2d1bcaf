"""The operator API's lookup and match routes, over anything that can look hashes up: the node
itself, or a read-only match server sharing its PostgreSQL store (node.app.match_server), whose
whole app (`match_app`: these routes and /v1/status behind the bearer token) is here too."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from aiohttp import web

from node.credentials.request_auth import check_bearer
from node.errors import RequestError
from node.formats.json_views import parse_hash, view_json
from node.http.common import Handler, errors_middleware
from node.matching.lookups import nearest_of_both
from node.matching.matcher import MatchHit
from node.matching.policy import MatchPolicy, decide
from protocol.errors import ValidationError
from protocol.signals import parse_value
from protocol.view import HashView

MAX_HASHES = 10_000


class Matching(Protocol):
    async def lookup(self, signal_type: str, values: Sequence[bytes | str]) -> list[HashView]: ...
    async def match(self, signal_type: str, value: bytes | str) -> list[MatchHit]: ...
    async def match_many(
        self, signal_type: str, values: Sequence[bytes | str]
    ) -> list[list[MatchHit]]: ...
    def match_policy(self) -> MatchPolicy: ...
    def member_of(self, origin: str) -> str | None: ...


class MatchServing(Matching, Protocol):
    """A read-only match server: matching, and its status."""

    def status(self) -> dict[str, Any]: ...


async def _hashes(request: web.Request) -> list[Any]:
    try:
        body = json.loads(await request.read())
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestError(f"body is not JSON: {e}") from e
    items = body.get("hashes") if isinstance(body, dict) else None
    if not isinstance(items, list) or not 0 < len(items) <= MAX_HASHES:
        raise RequestError(f"hashes is a list of 1..{MAX_HASHES} hashes")
    return items


def _shown(view: HashView, matching: Matching, policy: MatchPolicy) -> dict[str, Any]:
    body = view_json(view, matching.member_of)
    decision = decide(view, policy)
    body["decision"] = (
        None if decision is None else {"action": decision.action, "reason": decision.reason}
    )
    return body


def match_routes(
    matching: Matching,
    on_lookup: Callable[[int, int], None] | None = None,
    on_views: Callable[[list[HashView]], None] | None = None,
) -> list[web.RouteDef]:
    """The lookup and match routes; `on_lookup` counts hashes asked and found, `on_views` is
    offered every view found (the node's review queue)."""

    async def lookup(request: web.Request) -> web.Response:
        asked = [parse_hash(item) for item in await _hashes(request)]
        by_type: dict[str, list[bytes | str]] = {}
        for signal_type, value in asked:
            by_type.setdefault(signal_type, []).append(value)
        views = {}
        for signal_type, values in by_type.items():
            for view in await matching.lookup(signal_type, values):
                views[(signal_type, view.value)] = view
        policy = matching.match_policy()
        results = [_shown(views[key], matching, policy) for key in asked]
        if on_views:
            on_views([v for v in views.values() if v.submissions])
        if on_lookup:
            on_lookup(len(asked), sum(1 for key in asked if views[key].submissions))
        return web.json_response({"results": results})

    async def match(request: web.Request) -> web.Response:
        items = await _hashes(request)
        found: list[HashView] = []
        results = await match_results(matching, items, found.append if on_views else None)
        if on_views:
            on_views(found)
        if on_lookup:
            on_lookup(len(items), sum(1 for r in results if r["found"]))
        return web.json_response({"results": results})

    return [web.post("/v1/lookup", lookup), web.post("/v1/match", match)]


def _threatexchange_value(item: dict[str, Any], signal_type: str) -> bytes | None:
    """A pdq query's optional second hash of the same image, python-threatexchange's."""
    text = item.get("threatexchange_value")
    if text is None:
        return None
    if signal_type != "pdq" or not isinstance(text, str):
        raise RequestError("threatexchange_value is a pdq query's second hash (64 hex digits)")
    try:
        value = parse_value("pdq", text)
    except ValidationError as e:
        raise RequestError(f"threatexchange_value: {e}") from e
    assert isinstance(value, bytes)  # parse_value: pdq values are bytes
    return value


async def match_results(
    matching: Matching, items: list[Any], on_view: Callable[[HashView], None] | None = None
) -> list[dict[str, Any]]:
    """Every match of each queried hash ({signal_type, value}), nearest first. The queries of
    one signal type are matched together (`Matching.match_many`). A pdq query may add
    `threatexchange_value`, the same image's hash as python-threatexchange makes it: both are
    searched, and each match says which found it (`pdq_convention`). Each view found is also
    given to `on_view` (the node's review queue)."""
    policy = matching.match_policy()
    asked = [parse_hash(item) for item in items]
    by_type: dict[str, list[int]] = {}
    for position, (signal_type, _) in enumerate(asked):
        by_type.setdefault(signal_type, []).append(position)
    hits: list[list[MatchHit]] = [[] for _ in items]
    for signal_type, positions in by_type.items():
        values = [asked[p][1] for p in positions]
        for position, found in zip(
            positions, await matching.match_many(signal_type, values), strict=True
        ):
            hits[position] = found
    others = {
        position: other
        for position, (item, (signal_type, _)) in enumerate(zip(items, asked, strict=True))
        if (other := _threatexchange_value(item, signal_type)) is not None
    }
    if others:
        also = await matching.match_many("pdq", list(others.values()))
        for position, found in zip(others, also, strict=True):
            hits[position] = nearest_of_both(hits[position], found)
    # A value hit by several queries is shown once: its JSON is built once.
    shown_of: dict[tuple[str, bytes | str], dict[str, Any]] = {}
    results = []
    for item, found in zip(items, hits, strict=True):
        matches = []
        for hit in found:
            if on_view:
                on_view(hit.view)
            key = (hit.view.signal_type, hit.view.value)
            if key not in shown_of:
                shown_of[key] = _shown(hit.view, matching, policy)
            shown = dict(shown_of[key])
            if hit.distance is not None:
                shown["distance"] = hit.distance
            if hit.pdq_convention is not None:
                shown["pdq_convention"] = hit.pdq_convention
            if hit.query_percent is not None:
                shown["query_percent"] = hit.query_percent
                shown["target_percent"] = hit.target_percent
            matches.append(shown)
        matches.sort(key=lambda m: m.get("distance", 0))
        results.append({"query": item, "found": bool(matches), "matches": matches})
    return results


def match_app(server: MatchServing, token: str) -> web.Application:
    """A read-only match server's app: lookups, matches and its status, behind `token`."""

    @web.middleware
    async def bearer(request: web.Request, handler: Handler) -> web.StreamResponse:
        check_bearer(request.headers.get("Authorization"), token)
        return await handler(request)

    async def status(request: web.Request) -> web.Response:
        return web.json_response(server.status())

    app = web.Application(middlewares=[errors_middleware, bearer])
    app.add_routes([*match_routes(server), web.get("/v1/status", status)])
    return app
