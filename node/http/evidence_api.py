"""The peer API's evidence routes: equivocation evidence travels, so a fork shown to one node
is held by every honest node.

GET /v1/evidence   every evidence this node holds, [1, [evidence, ...]]
POST /v1/evidence  one evidence (protocol/evidence.py's encoding); verified with the roster
                   alone before anything is kept, then that origin's log is held here too.
                   Answers [1, "held"] or [1, "known"]; evidence that proves nothing is a 400.

Any member may offer evidence, auditors included: it is checked, not trusted.
"""

from __future__ import annotations

from aiohttp import web

from node.core import wire
from node.core.service import NodeService

MSGPACK = "application/msgpack"


def evidence_routes(service: NodeService) -> list[web.RouteDef]:
    """The evidence routes, to add to the peer app (behind its request authentication)."""

    async def listed(request: web.Request) -> web.Response:
        body = wire.encode_evidence_list(service.peers.evidence())
        return web.Response(body=body, content_type=MSGPACK)

    async def offered(request: web.Request) -> web.Response:
        held = await service.peers.offer_evidence(await request.read())
        body = wire.encode_evidence_result("held" if held else "known")
        return web.Response(body=body, content_type=MSGPACK)

    return [web.get("/v1/evidence", listed), web.post("/v1/evidence", offered)]
