"""The transparency report counts takedowns (removed files), not hash entries, with retracted
ones apart; leaves a late joiner's catch-up of history out of its arrival times; and names the
members the rosters removed or whose key they declared compromised in the period."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from node.formats.report import Observed, build_report, observe, render_html, roster_changes
from node.store.base import Store
from protocol.entries import Add, EntryRef, Retract, encode_entry
from protocol.roster import SignedRoster
from tests.cluster.support import consortium

MINUTE = 60_000
PDQ = bytes.fromhex("f8f8f0cee0f4a84f06370a32038f67f0b36e2ed596623e1d33e6339c4e9c9b22")


class LogsStore:
    """The two reads the report makes, over entries given as (raw, received_ms) per origin."""

    def __init__(self, logs: dict[str, list[tuple[bytes, int]]]) -> None:
        self.logs = logs

    async def log_heads(self) -> dict[str, Any]:
        return {o: SimpleNamespace(size=len(rows)) for o, rows in self.logs.items()}

    async def arrivals(self, origin: str, start: int, end: int) -> list[tuple[bytes, int]]:
        return self.logs[origin][start:end]


def _file(n: int, ts: int, incident: str | None = None) -> list[Add]:
    """The three hashes `submit --file` adds for one image."""
    labels = ("terrorist-attack",)
    return [
        Add(ts, "md5", bytes([n]) * 16, labels, incident),
        Add(ts, "sha256", bytes([n]) * 32, labels, incident),
        Add(ts, "pdq", PDQ, labels, incident),
    ]


def _rows(entries: list[Any], received: int) -> list[tuple[bytes, int]]:
    return [(encode_entry(e), received) for e in entries]


async def _observed(
    logs: dict[str, list[tuple[bytes, int]]], observer: str, joined_ms: int = 0
) -> Any:
    store: Store = LogsStore(logs)  # type: ignore[assignment]
    return await observe(store, observer, lambda o: o.split(".")[0], 0, 10**13, joined_ms)


async def test_21_files_count_as_21_takedowns_and_a_retracted_one_apart() -> None:
    t = 1_000_000
    adds = [a for n in range(21) for a in _file(n, t, "chc")]
    retractions = [Retract(t + 1, EntryRef("a.log", i)) for i in (0, 1, 2, 3)]  # file 0, part of 1
    logs = {"a.log": _rows(adds + retractions, t + 5)}
    report = build_report([await _observed(logs, "b")], 0, 10**13)
    assert report["takedowns_by_member"] == {
        "a": {"takedowns": 20, "retracted": 1, "hash_entries": 63}
    }
    assert report["takedowns_by_incident"] == {"chc": 20}
    assert report["takedowns_by_label"] == {"terrorist-attack": 20}
    assert report["entries_by_member"]["a"] == {"add": 63, "retract": 4, "dispute": 0}
    assert report["arrival_ms"]["b"]["count"] == 21
    page = render_html(report)
    assert "<td>a</td><td>20</td><td>1</td><td>63</td>" in page


async def test_a_late_joiners_catch_up_of_history_is_left_out_of_its_arrival_times() -> None:
    joined = 60 * MINUTE
    history = [a for n in range(10) for a in _file(n, joined - 7 * MINUTE + n)]
    fresh = [a for n in range(10, 13) for a in _file(n, joined + n * MINUTE)]
    rows = _rows(history, joined) + [
        (encode_entry(a), a.timestamp_ms + 250) for a in fresh
    ]  # each fresh takedown arrives 250 ms after it was made
    report = build_report([await _observed({"a.log": rows}, "late", joined)], 0, 10**13)
    arrival = report["arrival_ms"]["late"]
    assert arrival["count"] == 3 and arrival["p50"] == 250.0
    assert arrival["caught_up_excluded"] == 10
    assert "fetched as history" in render_html(report)
    founder = build_report([await _observed({"a.log": rows}, "founder")], 0, 10**13)
    assert founder["arrival_ms"]["founder"]["count"] == 13  # a founder joined before any


def test_the_report_names_members_removed_or_whose_key_was_compromised_in_the_period(
    tmp_path: Path,
) -> None:
    setup = consortium(tmp_path, 3)
    v1 = SignedRoster.decode(setup.configs[0].roster_path.read_bytes()).roster
    a, b, c = v1.members
    v2 = replace(v1, version=2, issued_ms=v1.issued_ms + 10, members=(a, c))
    broken = replace(c.checkpoint_keys[0], last_size=7, compromised=True)
    v3 = replace(v2, version=3, issued_ms=v1.issued_ms + 20,
                 members=(a, replace(c, checkpoint_keys=(broken,))))  # fmt: skip
    changes = roster_changes([v3, v1, v2, v2], v1.issued_ms + 1, v1.issued_ms + 100)
    assert changes == [
        {"member": b.member_id, "change": "removed", "roster_version": 2,
         "issued_ms": v2.issued_ms},
        {"member": c.member_id, "change": "key-compromised", "roster_version": 3,
         "issued_ms": v3.issued_ms, "last_trusted_size": 7},
    ]  # fmt: skip
    assert roster_changes([v1, v2, v3], v1.issued_ms + 15, v1.issued_ms + 100)[0]["member"] == (
        c.member_id
    )
    seen = Observed("x")
    seen.roster_changes = changes
    page = render_html(build_report([seen], v1.issued_ms, v1.issued_ms + 100))
    assert "Members removed or with a compromised key (2)" in page
    assert f"<td>{b.member_id}</td><td>removed</td>" in page
