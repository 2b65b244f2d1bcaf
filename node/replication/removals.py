"""Telling removed members (RemovalTeller): a member a new roster removed is sent that roster,
so that its node, which still trusts us, learns it is no longer a member and says so, instead
of acknowledging submissions no peer will take."""

from __future__ import annotations

import asyncio
import logging

from node.core.service import NodeService
from node.errors import NodeError
from node.replication.peer_client import PeerClient
from protocol.roster import Roster

log = logging.getLogger(__name__)

#: Sync rounds over which a member a new roster removed is tried, to be sent that roster.
TELL_REMOVED_TRIES = 30


class RemovalTeller:
    """The members to tell of their removal, and the task (`run`) that tells them."""

    def __init__(self, service: NodeService, client: PeerClient) -> None:
        self._service = service
        self._client = client
        #: member id -> (endpoint, tries left) of members a new roster removed, to be sent it.
        self._removed: dict[str, tuple[str, int]] = {}
        self._wake = asyncio.Event()

    def roster_changed(self, previous: Roster) -> None:
        """Note the members `previous` named that the new roster does not: they are told."""
        current = {m.member_id for m in self._service.rosters.roster.members}
        me = self._service.config.member_id
        for member in previous.members:
            gone = member.member_id not in current and member.member_id != me
            if gone and member.endpoints:
                self._removed[member.member_id] = (member.endpoints[0], TELL_REMOVED_TRIES)
        self.try_again()

    def try_again(self) -> None:
        """Tell those not told yet (each sync round calls this)."""
        if self._removed:
            self._wake.set()

    async def run(self) -> None:
        """Send each removed member the rosters after its own, until cancelled; one it could
        not reach is tried again at later sync rounds, TELL_REMOVED_TRIES times in all."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            for member_id in list(self._removed):
                # Taken out before the awaits: a newer roster met meanwhile puts it back, fresh.
                url, tries = self._removed.pop(member_id)
                try:
                    theirs = (await self._client.checkpoints(member_id, url)).roster_version
                    for raw in self._service.rosters.after(theirs):
                        await self._client.offer_roster(member_id, url, raw)
                except NodeError as e:
                    log.warning("could not tell removed member %s: %s", member_id, e)
                    if tries > 1:
                        self._removed.setdefault(member_id, (url, tries - 1))
