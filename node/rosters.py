"""The node's trusted roster: a pinned starting version and every valid successor since.

The only place the node's roster changes. A newer roster is accepted only as version N+1,
signed by a threshold of version N's admins and of its own (protocol.roster.verify_update).
"""

from __future__ import annotations

from collections.abc import Callable

from node.store.base import Store
from protocol.errors import RollbackError
from protocol.roster import Roster, SignedRoster, verify_genesis, verify_update


class RosterKeeper:
    """Owns the chain of signed rosters this node trusts."""

    def __init__(self, store: Store, clock: Callable[[], int]) -> None:
        self._store = store
        self._clock = clock
        self._chain: list[bytes] = []
        self._roster: Roster | None = None
        #: Called after a newer roster was accepted.
        self.listeners: list[Callable[[], None]] = []

    @property
    def roster(self) -> Roster:
        if self._roster is None:
            raise RuntimeError("roster not loaded")
        return self._roster

    @property
    def chain(self) -> list[bytes]:
        return list(self._chain)

    async def load(self, pinned: bytes) -> None:
        """Trust `pinned` (the roster the node was set up with), then every stored successor."""
        signed = SignedRoster.decode(pinned)
        roster = verify_genesis(signed)
        chain = [pinned]
        for raw in await self._store.rosters():
            candidate = SignedRoster.decode(raw)
            if candidate.roster.version <= roster.version:
                continue
            # Stored rosters were verified when they arrived; re-check the chain, not expiry.
            roster = verify_update(roster, candidate)
            chain.append(raw)
        self._chain = chain
        self._roster = roster
        await self._store.save_roster(signed.roster.version, pinned)

    def after(self, version: int) -> list[bytes]:
        """The signed rosters newer than `version`, oldest first."""
        return [raw for raw in self._chain if SignedRoster.decode(raw).roster.version > version]

    async def offer(self, raw: bytes) -> bool:
        """Accept `raw` if it is the next valid version; False if we already have it.

        Raises ProtocolError (RollbackError, RosterError, ExpiredError, SignatureError).
        """
        candidate = SignedRoster.decode(raw)
        version = candidate.roster.version
        if version <= self.roster.version:
            if raw in self._chain:
                return False
            raise RollbackError(f"roster version {version} is not newer than {self.roster.version}")
        roster = verify_update(self.roster, candidate, self._clock())
        await self._store.save_roster(version, raw)
        self._chain.append(raw)
        self._roster = roster
        for listener in self.listeners:
            listener()
        return True


__all__ = ["RosterKeeper"]
