"""The transparency report's agreement section: how often other members confirmed or disputed
each member's entries, from the entries a node holds (an in-memory store of two logs)."""

from __future__ import annotations

from dataclasses import dataclass

from node.formats.report import build_report, observe, render_html
from protocol.entries import Add, Confirm, Dispute, EntryRef, encode_entry

A, B, C = "a.example/log", "b.example/log", "c.example/log"
NAMES = {A: "alpha", B: "beta", C: "gamma"}


@dataclass(frozen=True)
class Head:
    size: int


class LogsInMemory:
    """The two reads `observe` makes of a store."""

    def __init__(self, logs: dict[str, list[bytes]]) -> None:
        self.logs = logs

    async def log_heads(self) -> dict[str, Head]:
        return {origin: Head(len(raws)) for origin, raws in self.logs.items()}

    async def arrivals(self, origin: str, start: int, end: int) -> list[tuple[bytes, int]]:
        return [(raw, 5_000) for raw in self.logs[origin][start:end]]


async def test_the_report_counts_confirmations_and_disputes_each_member_received() -> None:
    add = encode_entry(Add(1_000, "md5", bytes(16)))
    other = encode_entry(Add(1_000, "md5", bytes(15) + b"\x01"))
    logs = {
        A: [add, other],
        B: [
            encode_entry(Confirm(2_000, EntryRef(A, 0), "reviewed")),
            encode_entry(Confirm(2_100, EntryRef(A, 0), "also-removed")),  # same entry again
            encode_entry(Dispute(2_200, EntryRef(A, 1), "wrong-label")),
        ],
        C: [
            encode_entry(Confirm(2_300, EntryRef(A, 1), "reviewed")),
            encode_entry(Confirm(2_400, EntryRef(C, 0), "reviewed")),  # itself: not feedback
            encode_entry(Confirm(9_000, EntryRef(A, 0), "reviewed")),  # after the period
        ],
    }
    seen = await observe(LogsInMemory(logs), "alpha", NAMES.__getitem__, 0, 5_000)  # type: ignore[arg-type]
    report = build_report([seen], 0, 5_000)
    assert report["agreement_by_member"] == {
        "alpha": {
            "adds": 2,
            "confirmations_received": 3,
            "entries_confirmed": 2,
            "disputes_received": 1,
            "entries_disputed": 1,
        },
    }
    page = render_html(report)
    assert "Agreement by member" in page and "<td>alpha</td><td>2</td><td>3</td>" in page
