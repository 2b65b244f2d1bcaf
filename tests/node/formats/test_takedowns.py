"""Takedowns recognised from entries: one removed file's hashes from one submit request are one
takedown; the next file of the same request, another request, or another incident starts a new
one; a takedown counts as retracted only once every one of its entries is."""

from __future__ import annotations

from node.formats.takedowns import group_takedowns
from protocol.entries import Add

PDQ = "f8f8f0cee0f4a84f06370a32038f67f0b36e2ed596623e1d33e6339c4e9c9b22"


def _add(signal_type: str, n: int, ts: int = 1000, incident: str | None = None) -> Add:
    value: bytes | str = (
        bytes.fromhex(PDQ)
        if signal_type == "pdq"
        else bytes([n]) * (16 if signal_type == "md5" else 32)
    )
    return Add(ts, signal_type, value, ("terrorist-attack",), incident)


def _file(n: int, ts: int = 1000, incident: str | None = None) -> list[Add]:
    return [
        _add("md5", n, ts, incident),
        _add("sha256", n, ts, incident),
        _add("pdq", n, ts, incident),
    ]


def test_21_files_submitted_in_one_request_are_21_takedowns_not_63_entries() -> None:
    adds = [a for n in range(21) for a in _file(n)]
    takedowns = group_takedowns(("log", i, a) for i, a in enumerate(adds))
    assert len(takedowns) == 21
    assert [t.hashes for t in takedowns] == [3] * 21
    assert takedowns[1].first_index == 3 and takedowns[1].signal_types == ("md5", "sha256", "pdq")


def test_another_request_incident_or_log_starts_a_new_takedown() -> None:
    adds = [
        ("a", 0, _add("md5", 1, ts=1000)),
        ("a", 1, _add("sha256", 1, ts=1001)),  # another request
        ("a", 2, _add("md5", 2, ts=1001, incident="x")),  # another incident
        ("b", 0, _add("sha256", 3, ts=1001, incident="x")),  # another log
        ("a", 3, _add("sha256", 2, ts=1001, incident="x")),  # continues a #2
    ]
    takedowns = group_takedowns(adds)
    assert [(t.origin, t.first_index, t.hashes) for t in takedowns] == [
        ("a", 0, 1),
        ("a", 1, 1),
        ("a", 2, 2),
        ("b", 0, 1),
    ]


def test_a_hash_list_of_one_type_is_one_takedown_a_row() -> None:
    takedowns = group_takedowns(("log", n, _add("md5", n)) for n in range(5))
    assert len(takedowns) == 5


def test_a_takedown_is_retracted_only_once_every_entry_of_it_is() -> None:
    (takedown,) = group_takedowns(("log", i, a) for i, a in enumerate(_file(0)))
    assert not takedown.retracted_by({("log", 0), ("log", 1)})
    assert takedown.retracted_by({("log", 0), ("log", 1), ("log", 2)})
    assert not takedown.retracted_by({("other", 0), ("other", 1), ("other", 2)})
