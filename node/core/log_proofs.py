"""Serving logs with their proofs: pages of entries with a consistency proof to the checkpoint
we serve, consistency proofs, and inclusion proofs against a checkpoint the roster trusts (after
a key is declared compromised, not necessarily the newest). Read-only: for the peer API, the
operator API and the public audit routes.
"""

from __future__ import annotations

from collections.abc import Callable

from node.core.rosters import RosterKeeper
from node.core.wire import EntriesPage
from node.errors import RequestError
from node.store.base import Store
from protocol import merkle
from protocol.checkpoint import SignedCheckpoint, parse_signed_checkpoint
from protocol.errors import ProtocolError, RosterError
from protocol.trust import open_trusted


class LogProofs:
    """Pages and proofs of every log we serve (ours and peers'), from the store."""

    def __init__(
        self,
        store: Store,
        rosters: RosterKeeper,
        signed_checkpoint: Callable[[str], SignedCheckpoint | None],
        page_size: int,
    ) -> None:
        self._store = store
        self._rosters = rosters
        #: The checkpoint we serve of a log (NodeService.signed_checkpoint).
        self._signed_checkpoint = signed_checkpoint
        self._page_size = page_size

    async def entries_page(self, origin: str, start: int, limit: int) -> EntriesPage:
        """Entries from `start` with a consistency proof from the page's end to our checkpoint."""
        signed = self._signed_checkpoint(origin)
        if signed is None:
            raise RequestError(f"no checkpoint of {origin!r} here")
        size = signed.checkpoint.size
        if not 0 <= start < size:
            raise RequestError(f"start {start} outside the checkpoint's {size} entries")
        end = min(size, start + max(1, min(limit, self._page_size)))
        entries = await self._store.entries(origin, start, end)
        proof = await self.consistency(origin, end, size) if end < size else []
        return EntriesPage(signed.raw, start, tuple(entries), tuple(proof))

    async def consistency(self, origin: str, old: int, new: int) -> list[bytes]:
        signed = self._signed_checkpoint(origin)
        if signed is None or not 0 < old <= new <= signed.checkpoint.size:
            raise RequestError("no such sizes in this log")
        ids = merkle.consistency_proof_ids(old, new)
        return merkle.consistency_proof(old, new, await self._store.nodes(origin, ids))

    async def inclusion(
        self, origin: str, index: int, size: int | None = None
    ) -> tuple[SignedCheckpoint, list[bytes]]:
        """A proof of entry `index` against the newest checkpoint the roster trusts (or the
        stored one of `size`): after a key is declared compromised at S, the newest checkpoint
        may vouch for nothing, and entries below S are proven with one of size <= S."""
        signed = await self.proof_checkpoint(origin, index, size)
        n = signed.checkpoint.size
        ids = merkle.inclusion_proof_ids(index, n)
        return signed, merkle.inclusion_proof(index, n, await self._store.nodes(origin, ids))

    async def proof_checkpoint(
        self, origin: str, index: int, size: int | None = None
    ) -> SignedCheckpoint:
        served = self._signed_checkpoint(origin)
        if served is None or not 0 <= index < served.checkpoint.size:
            raise RequestError(f"entry {index} of {origin} is not under a checkpoint here")
        top = served.checkpoint.size
        if size in (None, top) and self.trusted(origin, served.raw):
            return served  # with the cosignatures collected since it was stored
        # Else the newest stored checkpoint in the range of some key of the log's member,
        # newest key first: a few rows a key, however long the history.
        try:
            keys = self._rosters.roster.member_by_origin(origin).checkpoint_keys
            ranges = [(k.first_size, top if k.last_size is None else k.last_size) for k in keys]
        except RosterError:
            ranges = [(0, top)]  # a removed member's log: any stored checkpoint
        for first, last in reversed(ranges):
            low, high = max(first, index + 1), min(last, top)
            if size is not None:
                low, high = max(low, size), min(high, size)
            if low > high:
                continue
            for _, raw in await self._store.checkpoint_range(origin, low, high, 4, True):
                if self.trusted(origin, raw):
                    return parse_signed_checkpoint(raw)
        raise RequestError(
            f"no checkpoint held of {origin} that the roster trusts covers entry {index}"
            + ("" if size is None else f" at size {size}")
        )

    def trusted(self, origin: str, raw: bytes) -> bool:
        """Whether the roster in force trusts this checkpoint of `origin` (protocol/trust.py)."""
        roster = self._rosters.roster
        if origin not in roster.origins():
            return True  # a removed member's log: judged by the last roster that listed it
        try:
            open_trusted(raw, roster, origin)
        except ProtocolError:
            return False
        return True
