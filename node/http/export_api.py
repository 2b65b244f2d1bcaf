"""`GET /v1/export` on the operator API: every hash the node holds, with its provenance, as a
stream of JSON lines (one hash view per line, the shape `/v1/lookup` returns), then a closing
line `{"end": true, "count": N, "exported_ms": T}` so a reader can tell a complete export from
a cut one.

Query: `types=md5,pdq` (default: all signal types), `include_withdrawn=1` (default: only
hashes some member still stands by).

Memory stays flat: values are read from the store's per-type index in pages, each page looked
up at once. A hash added by several members appears once, at the submission with the smallest
(log, index) among those the node held when the export began; adds arriving during the export
are left to the next one, so the output is one snapshot of which hashes exist.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from node.core.service import NodeService
from node.errors import RequestError
from node.formats.json_views import view_json
from protocol.errors import RosterError
from protocol.signal_names import SIGNAL_TYPES
from protocol.view import HashView

#: Hashes looked up per store round trip.
EXPORT_PAGE = 500


def export_routes(service: NodeService) -> list[web.RouteDef]:
    """The export route, to add to the operator app (behind its bearer token)."""

    def member_of(origin: str) -> str | None:
        try:
            return service.rosters.roster.member_by_origin(origin).member_id
        except RosterError:
            return None

    async def export(request: web.Request) -> web.StreamResponse:
        types = _types(request.query.get("types", ""))
        include_withdrawn = request.query.get("include_withdrawn", "") in ("1", "true", "yes")
        started_ms = service.clock()
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        count = 0
        for signal_type in types:
            page: list[tuple[str, int, bytes]] = []
            async for row in service.store.iter_values(signal_type):
                page.append(row)
                if len(page) >= EXPORT_PAGE:
                    lines = await page_lines(signal_type, page, started_ms, include_withdrawn)
                    await _write(response, lines)
                    count += len(lines)
                    page = []
            lines = await page_lines(signal_type, page, started_ms, include_withdrawn)
            await _write(response, lines)
            count += len(lines)
        end = {"end": True, "count": count, "exported_ms": started_ms}
        await response.write(json.dumps(end).encode() + b"\n")
        await response.write_eof()
        return response

    async def page_lines(
        signal_type: str,
        page: Sequence[tuple[str, int, bytes]],
        started_ms: int,
        include_withdrawn: bool,
    ) -> list[bytes]:
        """The JSON lines of the hashes in one page of the store's index that this page owns."""
        if not page:
            return []
        values = list(dict.fromkeys(_value(signal_type, key) for _, _, key in page))
        # Without near-duplicates: a search and reads per PDQ hash would slow a whole export.
        views = {v.value: v for v in await service.lookup(signal_type, values, near=False)}
        lines = []
        for log, index, key in page:
            view = views[_value(signal_type, key)]
            if not _owns(view, (log, index), started_ms):
                continue
            if not view.active and not include_withdrawn:
                continue
            body: dict[str, Any] = view_json(view, member_of)
            del body["found"]
            lines.append(json.dumps(body, ensure_ascii=False).encode() + b"\n")
        return lines

    return [web.get("/v1/export", export)]


async def _write(response: web.StreamResponse, lines: list[bytes]) -> None:
    if lines:
        await response.write(b"".join(lines))


def _types(raw: str) -> tuple[str, ...]:
    if not raw:
        return SIGNAL_TYPES
    asked = tuple(dict.fromkeys(t.strip() for t in raw.split(",") if t.strip()))
    unknown = [t for t in asked if t not in SIGNAL_TYPES]
    if unknown or not asked:
        raise RequestError(f"types is a comma-separated list of {', '.join(SIGNAL_TYPES)}")
    return asked


def _value(signal_type: str, key: bytes) -> bytes | str:
    """The value an index key stands for (URLs are indexed as their UTF-8)."""
    return key.decode() if signal_type == "url" else key


def _owns(view: HashView, ref: tuple[str, int], started_ms: int) -> bool:
    """Whether this (log, index) is where the hash is exported: the first of its submissions,
    in (log, index) order, that the node held when the export began. Independent of the order
    the store lists values in, so each hash is written exactly once."""
    held = [(s.ref.log, s.ref.index) for s in view.submissions if s.received_ms <= started_ms]
    return bool(held) and min(held) == ref
