"""What the replicator knows of one peer (PeerState), and how soon a failed push is tried
again (retry_delay): a reset connection costs a retry at once, and a second one at once too (on
a lossy link the next try most likely passes, and a takedown should reach every member within
a second: a backoff of even a quarter second after a second reset in a row, 1 % of 1 % of
pushes, was what kept a burst's p99 above it); a peer that stays down is then tried less and
less often, and after PUSH_TRIES failures in a row its pushes are left to the scheduled pull.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field

#: Retries of a failed push made at once...
RETRIES_AT_ONCE = 2
#: ... then seconds before the next; each failure in a row doubles it...
RETRY_FIRST_S = 0.25
#: ... up to this.
RETRY_MAX_S = 8.0
#: Failures in a row after which a peer's pending pushes are dropped (the scheduled pull, ours
#: or the peer's, carries them); a later push to it is tried once more, and so on.
PUSH_TRIES = 9


@dataclass
class PeerState:
    """What we know of one peer: reachability, last sync, last error, pending pushes."""

    member_id: str
    reachable: bool | None = None
    #: The peer answers but refuses to authenticate us (it holds a roster without us).
    refusing: bool = False
    last_ok_ms: int | None = None
    last_error: str | None = None
    #: Failed requests in a row (any success resets it).
    failures: int = 0
    #: origin -> the smallest start not yet pushed to this peer
    dirty: dict[str, int] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: origin -> how many entries of that log the peer holds, as it last told us
    holds: dict[str, int] = field(default_factory=dict)
    #: origin -> verified evidence not yet offered to this peer (one a held log: bounded)
    evidence: dict[str, bytes] = field(default_factory=dict)
    #: Pushes tried again after a failure (a count, for the metrics and the tests).
    retries: int = 0
    #: origin -> digest of the peer's checkpoint of that log we last handled in full (offered,
    #: and pulled if it was ahead), under `vector_roster`: the next round asks the peer to
    #: leave those out of its vector (GET /v1/checkpoints?known=). One a roster member's log.
    vector_seen: dict[str, bytes] = field(default_factory=dict)
    vector_roster: int = 0

    def put_back(self, origin: str, start: int) -> None:
        """A push of `origin` from `start` failed: it is pending again (merged with newer)."""
        self.dirty[origin] = min(self.dirty.get(origin, start), start)

    def note_holds(self, origin: str, size: int) -> None:
        self.holds[origin] = max(self.holds.get(origin, 0), size)


def retry_delay(failures: int, rng: random.Random) -> float | None:
    """Seconds to wait before trying a peer's pushes again after `failures` failures in a row
    (0 for the first RETRIES_AT_ONCE), or None to give them up to the scheduled pull. Jittered
    (x0.5-1) so that the pushers of many peers, failed by one outage, do not retry in step."""
    if failures >= PUSH_TRIES:
        return None
    if failures <= RETRIES_AT_ONCE:
        return 0.0
    delay: float = min(RETRY_MAX_S, RETRY_FIRST_S * 2.0 ** (failures - RETRIES_AT_ONCE - 1))
    return delay * rng.uniform(0.5, 1.0)
