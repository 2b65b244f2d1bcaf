"""Takedowns: what an analyst counts, rather than hash entries.

A member that removes a file submits that file's hashes (md5 and sha256, with a PDQ for an
image, or a vPDQ and video_md5 for a video) in one submit request, and each hash becomes one
entry of its log. Entries do not name the file, and their bytes stay as they are, so a takedown
is recognised from the entries alone, the same way on every node and in an auditor's tools:

  a takedown is a run of consecutive adds in one log with the same timestamp (one submit
  request stamps all its entries alike), labels, incident and reference, in which no signal
  type repeats (a file has at most one hash of each type).

So `submit --file a.jpg b.jpg` is two takedowns of three entries each, and a hash list
imported one hash a row of the same type is one takedown a row. A takedown is *retracted*
once its origin has retracted every one of its entries.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from protocol.entries import Add


@dataclass(frozen=True, slots=True)
class Takedown:
    """One removed file (or hash list row) as its origin's entries show it."""

    origin: str
    first_index: int
    last_index: int
    timestamp_ms: int
    signal_types: tuple[str, ...]
    labels: tuple[str, ...]
    incident: str | None

    @property
    def hashes(self) -> int:
        return self.last_index - self.first_index + 1

    def indexes(self) -> range:
        return range(self.first_index, self.last_index + 1)

    def retracted_by(self, retracted: Collection[tuple[str, int]]) -> bool:
        """Whether every entry of the takedown is among the (origin, index) retracted."""
        return all((self.origin, i) in retracted for i in self.indexes())


def _continues(run: Takedown, index: int, add: Add) -> bool:
    return (
        index == run.last_index + 1
        and add.timestamp_ms == run.timestamp_ms
        and add.labels == run.labels
        and add.incident == run.incident
        and add.signal_type not in run.signal_types
    )


class TakedownGrouper:
    """Adds fed in log order (per origin, by index) come out grouped into takedowns. Only the
    reference of the run's first add is kept; adds with another reference start a new run."""

    def __init__(self) -> None:
        self._open: dict[str, tuple[Takedown, bytes | None]] = {}
        self._done: list[Takedown] = []

    def add(self, origin: str, index: int, add: Add) -> None:
        current = self._open.get(origin)
        if current is not None:
            run, reference = current
            if reference == add.reference and _continues(run, index, add):
                grown = Takedown(
                    origin,
                    run.first_index,
                    index,
                    run.timestamp_ms,
                    (*run.signal_types, add.signal_type),
                    run.labels,
                    run.incident,
                )
                self._open[origin] = (grown, reference)
                return
            self._done.append(run)
        started = Takedown(
            origin, index, index, add.timestamp_ms, (add.signal_type,), add.labels, add.incident
        )
        self._open[origin] = (started, add.reference)

    def takedowns(self) -> list[Takedown]:
        """Every takedown fed so far, each origin's in log order."""
        return [*self._done, *(run for run, _ in self._open.values())]


def group_takedowns(adds: Iterable[tuple[str, int, Add]]) -> list[Takedown]:
    """The takedowns of adds given in log order as (origin, index, add)."""
    grouper = TakedownGrouper()
    for origin, index, add in adds:
        grouper.add(origin, index, add)
    return grouper.takedowns()
