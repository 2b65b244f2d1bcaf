"""The node's trusted roster: a pinned starting version and every valid successor since.

The only place the node's roster changes. A newer roster is accepted only as version N+1,
signed by a threshold of version N's admins and of its own, and fresh by the node's clock
(protocol.roster.verify_update). A node set up from a later roster also keeps the versions
before it, once a peer sent them and they verified as a chain ending at the pinned one
(`adopt_earlier`), so the chain it serves starts at the consortium's first roster.

Changes happen under one lock: two peers offering the same roster at once store and append it
once (the version check and the append are on either side of the store's await).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from node.store.base import Store
from protocol.errors import ProtocolError, RollbackError, RosterError
from protocol.roster import Roster, SignedRoster, verify_link, verify_update, walk_chain

log = logging.getLogger(__name__)


class RosterKeeper:
    """Owns the chain of signed rosters this node trusts."""

    def __init__(self, store: Store, clock: Callable[[], int]) -> None:
        self._store = store
        self._clock = clock
        self._chain: list[bytes] = []
        self._rosters: list[Roster] = []
        self._versions: list[int] = []
        self._roster: Roster | None = None
        self._lock = asyncio.Lock()
        #: Called after a newer roster was accepted, with the roster it replaced.
        self.listeners: list[Callable[[Roster], None]] = []

    @property
    def roster(self) -> Roster:
        """The roster in force: the newest of the chain (it may have expired: see `expired`)."""
        if self._roster is None:
            raise RuntimeError("roster not loaded")
        return self._roster

    @property
    def chain(self) -> list[bytes]:
        return list(self._chain)

    @property
    def first_version(self) -> int:
        """The version the chain starts at: 1 once the node holds the consortium's first."""
        return self._versions[0]

    def expired(self) -> bool:
        """Whether the roster in force has expired by the node's clock."""
        return self._clock() >= self.roster.expires_ms

    async def load(self, pinned: bytes) -> None:
        """Trust `pinned` (the roster the node was set up with), the stored versions before it
        that chain to it, and every stored successor.

        Each version is taken once, whatever the store holds: a chain is one roster a version.
        """
        pinned_version = SignedRoster.decode(pinned).roster.version
        stored = _one_a_version(await self._store.rosters())
        earlier = _run_before(stored, pinned_version)
        # Stored rosters were verified when they arrived; re-check the links, not expiry: the
        # roster in force may have expired since, and the node still serves what it holds.
        try:
            rosters = walk_chain([*earlier, pinned])
        except ProtocolError as e:
            log.warning(
                "stored rosters before version %d do not chain to it: %s", pinned_version, e
            )
            earlier, rosters = [], walk_chain([pinned])
        chain = [*earlier, pinned]
        version = pinned_version + 1
        while version in stored:
            rosters.append(verify_link(rosters[-1], SignedRoster.decode(stored[version])))
            chain.append(stored[version])
            version += 1
        await self._store.save_roster(pinned_version, pinned)
        self._set(chain, rosters)

    def after(self, version: int) -> list[bytes]:
        """The signed rosters newer than `version`, oldest first."""
        return [raw for raw, v in zip(self._chain, self._versions, strict=True) if v > version]

    async def offer(self, raw: bytes) -> bool:
        """Accept `raw` if it is the next valid version; False if we already have it.

        Raises ProtocolError (RollbackError, RosterError, ExpiredError, SignatureError).
        """
        candidate = SignedRoster.decode(raw)
        version = candidate.roster.version
        async with self._lock:
            previous = self.roster
            if version <= previous.version:
                if raw in self._chain:
                    return False
                raise RollbackError(
                    f"roster version {version} is not newer than {previous.version}"
                )
            roster = verify_update(previous, candidate, self._clock())
            await self._store.save_roster(version, raw)
            self._set([*self._chain, raw], [*self._rosters, roster])
            for listener in self.listeners:
                listener(previous)
        return True

    async def adopt_earlier(self, offered: Sequence[bytes]) -> int:
        """Keep the rosters before our first that `offered` (a peer's chain) holds, if they
        verify as a chain ending at our first; returns how many were added.

        Raises ProtocolError if what the peer sent does not chain to our first roster.
        """
        async with self._lock:
            first = self.first_version
            earlier = _run_before(_one_a_version(offered), first)
            if not earlier:
                return 0
            rosters = walk_chain([*earlier, self._chain[0]])
            for raw, roster in zip(earlier, rosters, strict=False):
                await self._store.save_roster(roster.version, raw)
            self._set([*earlier, *self._chain], [*rosters[:-1], *self._rosters])
        return len(earlier)

    def _set(self, chain: list[bytes], rosters: list[Roster]) -> None:
        self._chain = chain
        self._rosters = rosters
        self._versions = [r.version for r in rosters]
        self._roster = rosters[-1]


def _one_a_version(raws: Sequence[bytes]) -> dict[int, bytes]:
    """version -> signed roster; of two different rosters claiming one version, neither."""
    out: dict[int, bytes] = {}
    clashing: set[int] = set()
    for raw in raws:
        try:
            version = SignedRoster.decode(raw).roster.version
        except ProtocolError as e:
            raise RosterError(f"a roster of the chain does not decode: {e}") from e
        if out.get(version, raw) != raw:
            clashing.add(version)
        out[version] = raw
    for version in clashing:
        log.warning("two different rosters of version %d: using neither", version)
        del out[version]
    return out


def _run_before(by_version: dict[int, bytes], version: int) -> list[bytes]:
    """The run of consecutive versions in `by_version` that ends just before `version`."""
    run: list[bytes] = []
    while version - 1 in by_version:
        version -= 1
        run.insert(0, by_version[version])
    return run


__all__ = ["RosterKeeper"]
