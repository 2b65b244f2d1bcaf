"""The peer client (aiohttp): signed requests to other members' nodes, bounded responses;
push bodies sent deflated, checkpoint vectors asked for deflated (docs/protocol.md).

Every failure (unreachable, timeout, refused, malformed answer) becomes a PeerError naming the
peer, so one bad or absent peer costs only itself.
"""

from __future__ import annotations

import secrets
import zlib
from collections.abc import Callable, Iterable
from typing import TypeVar

import aiohttp
from yarl import URL

from node.core import wire
from node.credentials.request_auth import sign_request
from node.errors import PeerError, PeerRefusedError
from protocol.errors import ProtocolError
from protocol.signing import SigningKey

T = TypeVar("T")

#: Deflated push bodies kept, so that one push to every peer is deflated once.
DEFLATES_KEPT = 8


class PeerClient:
    """Talks to peers as `member_id`, signing every request with the node key."""

    def __init__(
        self,
        member_id: str,
        node_key: SigningKey,
        clock: Callable[[], int],
        timeout_s: float = 10.0,
        max_body: int = 16 * 1024 * 1024,
        page_size: int = 1000,
        keepalive_s: float = 60.0,
    ) -> None:
        self._member = member_id
        self._key = node_key
        self._clock = clock
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_body = max_body
        self._page_size = page_size
        self._session: aiohttp.ClientSession | None = None
        # Closed 5 s before the peer would close it (its peer_keepalive_s, as ours by
        # default), so that a request never goes out on a connection being closed.
        self._keepalive_s = max(1.0, keepalive_s - 5.0)
        #: Push bodies deflated lately (one push goes to every peer), oldest first.
        self._deflates: dict[bytes, bytes] = {}

    async def __aenter__(self) -> PeerClient:
        # Only the headers a peer reads: aiohttp's User-Agent, Accept and Accept-Encoding
        # would add some 90 bytes to every push, a third of a typical entry.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(keepalive_timeout=self._keepalive_s),
            timeout=self._timeout,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(
        self,
        peer: str,
        base_url: str,
        method: str,
        path: str,
        query: dict[str, str | int],
        body: bytes = b"",
        deflate: bool = False,
    ) -> bytes:
        if self._session is None:
            raise RuntimeError("PeerClient used outside its context")
        # Sign exactly the bytes that go on the wire: yarl normalises escapes (%2F becomes /),
        # so build the URL first and sign its encoded path and query.
        url = URL(base_url.rstrip("/") + path).with_query({k: str(v) for k, v in query.items()})
        path_qs = url.raw_path_qs
        headers = sign_request(
            self._key,
            self._member,
            peer,
            method,
            path_qs,
            body,
            self._clock(),
            secrets.token_bytes(16),
        )
        sent = body
        if body:
            headers["Content-Type"] = "application/msgpack"
            # Entries are mostly hash bytes, but labels, names and the checkpoint's text take
            # about a quarter off a push.
            if deflate and len(body) >= wire.DEFLATE_MIN_BYTES:
                sent = self._deflated(body)
                headers["Content-Encoding"] = "deflate"
        elif method == "GET":
            # Checkpoint vectors come deflated (about 40 % fewer bytes); aiohttp inflates.
            headers["Accept-Encoding"] = "deflate"
        try:
            async with self._session.request(
                method, url, data=sent or None, headers=headers
            ) as resp:
                data = await self._read_body(peer, resp)
                if resp.status != 200:
                    detail = data[:300].decode(errors="replace")
                    if resp.status == 401:
                        raise PeerRefusedError(
                            f"{peer}: refuses us: {method} {path} answered 401: {detail}"
                        )
                    raise PeerError(f"{peer}: {method} {path} answered {resp.status}: {detail}")
                return data
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            raise PeerError(f"{peer}: {method} {path} failed: {e or type(e).__name__}") from e

    def _deflated(self, body: bytes) -> bytes:
        """`body` deflated, made once for the pushes of one body to every peer."""
        done = self._deflates.get(body)
        if done is None:
            done = zlib.compress(body, 1)  # level 1: as small within 3 %, at less cost
            self._deflates[body] = done
            while len(self._deflates) > DEFLATES_KEPT:
                del self._deflates[next(iter(self._deflates))]
        return done

    async def _read_body(self, peer: str, resp: aiohttp.ClientResponse) -> bytes:
        """The whole body, refusing more than max_body bytes. (content.read(n) returns only what
        has arrived so far, which cut large pages short.)"""
        chunks: list[bytes] = []
        total = 0
        async for chunk in resp.content.iter_chunked(1 << 16):
            total += len(chunk)
            if total > self._max_body:
                raise PeerError(f"{peer}: response larger than {self._max_body} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    async def checkpoints(
        self, peer: str, url: str, known: Iterable[bytes] = ()
    ) -> wire.CheckpointVector:
        """The peer's checkpoint vector, less those whose digest is in `known`."""
        query: dict[str, str | int] = {}
        if text := wire.encode_known(known):
            query["known"] = text
        raw = await self._request(peer, url, "GET", "/v1/checkpoints", query)
        return _decoded(peer, lambda: wire.decode_vector(raw, self._max_body))

    async def entries(self, peer: str, url: str, origin: str, start: int) -> wire.EntriesPage:
        query: dict[str, str | int] = {"log": origin, "start": start, "limit": self._page_size}
        raw = await self._request(peer, url, "GET", "/v1/entries", query)
        return _decoded(peer, lambda: wire.decode_page(raw, self._max_body, self._page_size))

    async def rosters(self, peer: str, url: str, after: int) -> list[bytes]:
        raw = await self._request(peer, url, "GET", "/v1/roster", {"after": after})
        return _decoded(peer, lambda: wire.decode_rosters(raw, self._max_body))

    async def offer_roster(self, peer: str, url: str, roster: bytes) -> wire.PushResult:
        raw = await self._request(peer, url, "POST", "/v1/roster", {}, roster)
        return _decoded(peer, lambda: wire.decode_push_result(raw))

    async def evidence(self, peer: str, url: str) -> list[bytes]:
        """The equivocation evidence the peer holds (not verified here: the caller does)."""
        raw = await self._request(peer, url, "GET", "/v1/evidence", {})
        return _decoded(peer, lambda: wire.decode_evidence_list(raw, self._max_body))

    async def offer_evidence(self, peer: str, url: str, evidence: bytes) -> str:
        raw = await self._request(peer, url, "POST", "/v1/evidence", {}, evidence)
        return _decoded(peer, lambda: wire.decode_evidence_result(raw))

    async def push(self, peer: str, url: str, push: wire.Push) -> wire.PushResult:
        body = wire.encode_push(push)
        raw = await self._request(peer, url, "POST", "/v1/push", {}, body, deflate=True)
        return _decoded(peer, lambda: wire.decode_push_result(raw))


def _decoded(peer: str, decode: Callable[[], T]) -> T:
    try:
        return decode()
    except ProtocolError as e:
        raise PeerError(f"{peer}: malformed answer: {e}") from e
