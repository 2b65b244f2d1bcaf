"""The peers of one node (PeerSet): every other member of the roster with an endpoint, and
the one PeerState of each, which both the pushes (replicator.py) and the pulls (pulls.py)
read and record their answers in. A member the roster removes loses its state; added back,
it starts afresh."""

from __future__ import annotations

import logging

from node.core.service import NodeService
from node.errors import PeerError, PeerRefusedError
from node.replication.peer_state import PeerState

log = logging.getLogger(__name__)


class PeerSet:
    """The owner of every peer's PeerState."""

    def __init__(self, service: NodeService) -> None:
        self._service = service
        #: member id -> what we know of that peer (only the roster's peers, after `refresh`)
        self.states: dict[str, PeerState] = {}

    def urls(self) -> dict[str, str]:
        """member id -> endpoint URL of every other member with an endpoint."""
        out = {}
        me = self._service.config.member_id
        for member in self._service.rosters.roster.members:
            if member.member_id != me and member.endpoints:
                out[member.member_id] = member.endpoints[0]
        return out

    def refresh(self) -> None:
        """A state for each peer of the roster, and only for those."""
        current = self.urls()
        for member_id in current:
            self.states.setdefault(member_id, PeerState(member_id))
        for gone in set(self.states) - set(current):
            del self.states[gone]

    def state(self, member_id: str) -> PeerState:
        """The state of `member_id` (made if it has none yet)."""
        return self.states.setdefault(member_id, PeerState(member_id))

    def status(self) -> dict[str, dict[str, object]]:
        """member id -> what the operator is shown of that peer."""
        self.refresh()
        return {
            m: {
                "reachable": p.reachable,
                "refusing": p.refusing,
                "last_ok_ms": p.last_ok_ms,
                "last_error": p.last_error,
                "failures": p.failures,
            }
            for m, p in sorted(self.states.items())
        }

    def refusing(self) -> list[str]:
        """The peers whose last answer refused to authenticate us (401)."""
        return sorted(m for m, p in self.states.items() if p.refusing)

    def ok(self, state: PeerState) -> None:
        """The peer answered."""
        state.reachable = True
        state.refusing = False
        state.last_ok_ms = self._service.clock()
        state.failures = 0

    def failed(self, state: PeerState, e: Exception) -> None:
        """A request to the peer failed with `e`."""
        # A peer that refuses to authenticate us answers, yet we exchange nothing with it.
        state.refusing = isinstance(e, PeerRefusedError)
        state.reachable = not state.refusing and (
            not isinstance(e, PeerError) or "failed" not in str(e)
        )
        state.last_error = str(e)
        state.failures += 1
        log.warning("peer %s: %s", state.member_id, e)
