"""The review queue: hashes matched on this platform that only one member stands behind.

The operator API's lookups and matches (node/http/match_api.py) offer every view they found;
the queue keeps each active hash that exactly one other member stands behind (a member does
not confirm its own hashes), with when this platform first matched it. The dashboard reads
it oldest first, showing only hashes that still have a single backer, so that a reviewer can
confirm or dispute them (docs/agreement.md). The queue is in memory and bounded: a restart
empties it, and once full it takes no new hash until reviewed ones leave it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from protocol.view import HashView

MAX_QUEUED = 1000


@dataclass(frozen=True, slots=True)
class Queued:
    """A hash waiting for review, and when this platform first matched it."""

    signal_type: str
    value: bytes | str
    first_matched_ms: int


class ReviewQueue:
    """Hashes matched here that one other member alone stands behind; owned by NodeService."""

    def __init__(self, own_origin: str, clock: Callable[[], int], limit: int = MAX_QUEUED):
        self._own = own_origin
        self._clock = clock
        self._limit = limit
        self._items: dict[tuple[str, bytes | str], Queued] = {}

    def offer(self, views: Iterable[HashView]) -> None:
        """Remember every matched view that needs review, the first time it is matched."""
        for view in views:
            if not needs_review(view, self._own):
                continue
            key = (view.signal_type, view.value)
            if key not in self._items and len(self._items) < self._limit:
                self._items[key] = Queued(view.signal_type, view.value, self._clock())

    def oldest_first(self) -> list[Queued]:
        return sorted(self._items.values(), key=lambda q: q.first_matched_ms)

    def settle(self, views: Iterable[HashView]) -> None:
        """Forget the hashes whose current view no longer needs review."""
        for view in views:
            if not needs_review(view, self._own):
                self._items.pop((view.signal_type, view.value), None)

    def __len__(self) -> int:
        return len(self._items)


def needs_review(view: HashView, own_origin: str) -> bool:
    """Active, and exactly one member, not us, stands behind it."""
    backers = view.backers()
    return view.active and len(backers) == 1 and own_origin not in backers
