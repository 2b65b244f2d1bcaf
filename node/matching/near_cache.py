"""Remembered near-duplicate searches: the corroboration of PDQ hashes that are hit again and
again.

A PDQ hash a match finds is shown with the other members' adds of near-duplicates of it
(node/matching/lookups.py, `_near_adds`), which takes a second index search for every
distinct hash hit. In a crisis the same few hashes are hit by upload after upload, so the
answer for a hash is remembered, with the number of rows the index held when it was made.
Rows are numbered in insertion order and never change (node/matching/pdq_index.py), so a
remembered answer is brought up to date by scanning only the rows added since: the answer
stays exact. When more than `rescan_max` rows were added since, or the index was loaded anew
(`epoch` changed), the hash is searched again. A match query that is itself a held hash (an
exact re-upload: a hit at distance 0) has made that hash's search already, so its answer is
remembered too (`remember`). At most `capacity` hashes are remembered, the
least recently asked dropped first; nothing a peer sends is a key here, only hashes the
node's own index holds.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from node.matching.pdq_index import PdqIndex

#: Hashes whose near-duplicates are remembered (each a few hundred bytes).
DEFAULT_CAPACITY = 20_000
#: Rows added since an answer beyond which searching again is cheaper than scanning them.
DEFAULT_RESCAN_MAX = 65_536

Found = list[tuple[int, int]]  # (row, distance), nearest first (then by row)


class NearCache:
    """Remembered `PdqIndex.search_many` answers at one radius, kept exact (see above)."""

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, rescan_max: int = DEFAULT_RESCAN_MAX
    ) -> None:
        self._capacity = capacity
        self._rescan_max = rescan_max
        self._epoch = -1
        self._radius = -1
        # hash -> (rows the index held when the answer was made, the answer)
        self._held: OrderedDict[bytes, tuple[int, Found]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._held)

    def remember(
        self,
        index: PdqIndex,
        epoch: int,
        values: Sequence[bytes],
        answers: Sequence[Found],
        radius: int,
    ) -> None:
        """Keep `search_many` answers at `radius` that `index` gave just now for `values`
        that it holds (a query hit at distance 0 is such a hash: an exact re-upload's search
        is its corroboration search too)."""
        self._use(epoch, radius)
        size = len(index)
        for value, found in zip(values, answers, strict=True):
            if found and found[0][1] == 0:
                self._keep(value, size, found)
        self._bound()

    def search(
        self, index: PdqIndex, epoch: int, values: Sequence[bytes], radius: int
    ) -> list[Found]:
        """For each value, every row of `index` within `radius`, as `search_many` answers;
        `epoch` names the index (a new one forgets every answer)."""
        self._use(epoch, radius)
        size = len(index)
        answers: dict[bytes, Found] = {}
        stale: dict[bytes, tuple[int, Found]] = {}
        unknown: list[bytes] = []
        for value in dict.fromkeys(values):
            held = self._held.get(value)
            if held is None or size - held[0] > self._rescan_max:
                unknown.append(value)
            elif held[0] == size:
                answers[value] = held[1]
            else:
                stale[value] = held
        if unknown:
            answers.update(zip(unknown, index.search_many(unknown, radius), strict=True))
        if stale:
            since = min(rows for rows, _ in stale.values())
            recent = index.search_from(list(stale), radius, since)
            for (value, (rows, found)), new in zip(stale.items(), recent, strict=True):
                added = [hit for hit in new if hit[0] >= rows]
                merged = sorted(found + added, key=lambda hit: (hit[1], hit[0]))
                answers[value] = merged if added else found
        for value, found in answers.items():
            self._keep(value, size, found)
        self._bound()
        return [answers[value] for value in values]

    def _use(self, epoch: int, radius: int) -> None:
        if epoch != self._epoch or radius != self._radius:
            self._held.clear()
            self._epoch, self._radius = epoch, radius

    def _keep(self, value: bytes, size: int, found: Found) -> None:
        self._held[value] = (size, found)
        self._held.move_to_end(value)

    def _bound(self) -> None:
        while len(self._held) > self._capacity:
            self._held.popitem(last=False)
