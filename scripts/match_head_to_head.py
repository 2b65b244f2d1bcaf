"""Our PdqIndex and ThreatExchange's PDQIndex searching the same queries in alternating
rounds, both indexes built once and held together, so that both see the same minutes of a
shared machine (bench_match.py's per-matcher rates are measured minutes apart).

`head_to_head` returns each round's single queries a second of both, the ratio of each
round, and their median; None when threatexchange is not installed.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from node.matching.pdq_index import PdqIndex

ROUNDS = 3


def _rate(search: Callable[[bytes], object], queries: list[bytes]) -> float:
    started = time.perf_counter()
    for q in queries:
        search(q)
    return len(queries) / (time.perf_counter() - started)


def hex_entries(hashes: np.ndarray) -> list[tuple[str, int]]:
    """ThreatExchange's PDQIndex entries for `hashes`: (hex string, row), its API's form."""
    text = hashes.tobytes().hex()
    return [(text[i : i + 64], i // 64) for i in range(0, len(text), 64)]


def head_to_head(
    hashes: np.ndarray, queries: list[bytes], radius: int, rounds: int = ROUNDS
) -> dict[str, Any] | None:
    try:
        import faiss  # noqa: PLC0415
        from threatexchange.signal_type.pdq.pdq_index import PDQIndex  # noqa: PLC0415
    except ImportError:
        return None
    faiss.omp_set_num_threads(1)
    theirs = PDQIndex(entries=hex_entries(hashes))
    ours = PdqIndex.build(hashes)
    per_round = []
    for _ in range(rounds):
        a = _rate(lambda q: ours.search(q, radius), queries)
        b = _rate(lambda q: theirs.query(q.hex()), queries)
        per_round.append({"ours_per_s": round(a, 1), "theirs_per_s": round(b, 1)})
    ratios = [r["ours_per_s"] / r["theirs_per_s"] for r in per_round]
    return {
        "rounds": per_round,
        "ratios": [round(r, 2) for r in ratios],
        "ratio_median": round(statistics.median(ratios), 2),
    }
