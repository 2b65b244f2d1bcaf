"""A read-only match server: one more process answering lookups and matches from a node's
PostgreSQL store, so matching scales past one process and one machine.

The node stays the only writer. Each match server keeps its own PDQ and vPDQ indexes, built
from the store at start and extended by polling the store's log heads; the roster (for member
names and the match policy) is re-read with them. It serves the operator API's /v1/lookup and
/v1/match with the node's bearer token, and /v1/status.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Sequence
from typing import Any

from node.config import NodeConfig, read_roster
from node.credentials.secret_files import read_secret
from node.errors import ConfigError, NodeError
from node.http.match_api import match_app
from node.http.serving import serving
from node.matching.indexes import DEFAULT_PDQ_THRESHOLD
from node.matching.lookups import lookup_views, match_hits, match_many_hits
from node.matching.matcher import Matcher, MatchHit
from node.matching.policy import MatchPolicy, entry_standing, policy_from
from node.store.base import Store
from node.store.decoded import decoded_or_none
from protocol.errors import ProtocolError, RosterError
from protocol.roster import Roster, SignedRoster, verify_link, verify_self_signed
from protocol.view import HashView

log = logging.getLogger(__name__)
READY = "hashmesh match server ready"


class MatchReplica:
    """Lookups and matches over a store another process writes."""

    def __init__(self, config: NodeConfig, store: Store, pinned: bytes) -> None:
        self.config = config
        self.store = store
        self._pinned = pinned
        self.roster: Roster = verify_self_signed(SignedRoster.decode(pinned))
        self.matcher = Matcher(store, DEFAULT_PDQ_THRESHOLD)
        self._indexed: dict[str, int] = {}

    async def start(self) -> None:
        await self._read_rosters()
        self._indexed = {o: h.size for o, h in (await self.store.log_heads()).items()}
        await self.matcher.load()

    @property
    def indexed(self) -> dict[str, int]:
        """How many entries of each log the indexes cover."""
        return dict(sorted(self._indexed.items()))

    async def refresh(self) -> int:
        """Index what the node stored since the last refresh; returns how many entries."""
        await self._read_rosters()
        added = 0
        for origin, head in (await self.store.log_heads()).items():
            done = self._indexed.get(origin, 0)
            if head.size > done:
                raws = await self.store.entries(origin, done, head.size)
                await self.matcher.add_entries(origin, done, list(map(decoded_or_none, raws)))
                self._indexed[origin] = head.size
                added += head.size - done
        return added

    async def _read_rosters(self) -> None:
        for raw in await self.store.rosters():
            candidate = SignedRoster.decode(raw)
            if candidate.roster.version == self.roster.version + 1:
                # The node verified it, fresh, when it arrived; only the link is re-checked.
                self.roster = verify_link(self.roster, candidate)
        self.matcher.index.pdq_threshold = self.roster.pdq_threshold

    async def lookup(self, signal_type: str, values: Sequence[bytes | str]) -> list[HashView]:
        standing = entry_standing(self.roster)
        return await lookup_views(self.store, signal_type, values, standing, self.matcher)

    async def match(self, signal_type: str, value: bytes | str) -> list[MatchHit]:
        threshold = self.roster.pdq_threshold
        standing = entry_standing(self.roster)
        return await match_hits(self.store, self.matcher, threshold, signal_type, value, standing)

    async def match_many(
        self, signal_type: str, values: Sequence[bytes | str]
    ) -> list[list[MatchHit]]:
        threshold = self.roster.pdq_threshold
        standing = entry_standing(self.roster)
        return await match_many_hits(
            self.store, self.matcher, threshold, signal_type, values, standing
        )

    def match_policy(self) -> MatchPolicy:
        config = self.config
        return policy_from(
            config.act_below_disputes, config.trusted_members, self.roster, config.act_agreement
        )

    def member_of(self, origin: str) -> str | None:
        try:
            return self.roster.member_by_origin(origin).member_id
        except RosterError:
            return None

    def status(self) -> dict[str, Any]:
        """The answer to GET /v1/status."""
        return {
            "role": "match-server",
            "member_id": self.config.member_id,
            "roster_version": self.roster.version,
            "indexed": {
                "pdq": self.matcher.index.size("pdq"),
                "vpdq": self.matcher.index.size("vpdq"),
            },
            "logs": self.indexed,
        }


async def serve_matches(
    config: NodeConfig, store: Store, host: str, port: int, refresh_s: float
) -> None:
    if config.store == "sqlite":
        raise ConfigError("match servers share a PostgreSQL store; this node uses SQLite")
    pinned = read_roster(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await store.open()
    try:
        replica = MatchReplica(config, store, pinned)
        await replica.start()
        async with serving(match_app(replica, read_secret(config.token_path)), host, port):
            print(f"{READY} member={config.member_id} operator=http://{host}:{port}", flush=True)
            while not stop.is_set():
                try:
                    await replica.refresh()
                except (NodeError, ProtocolError) as e:
                    log.warning("refresh failed: %s", e)  # the store may be restarting: try again
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(refresh_s):
                        await stop.wait()
    finally:
        await store.close()
