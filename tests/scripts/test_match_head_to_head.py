"""The head-to-head rounds of bench_match: both matchers search the same queries in turn and
the ratio is read from rounds in the same minutes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from match_head_to_head import head_to_head  # a script, importable from scripts/
from pdq_data import make_hashes, plant_queries


def test_both_matchers_search_in_alternating_rounds_and_the_median_ratio_is_reported() -> None:
    pytest.importorskip("faiss")
    pytest.importorskip("threatexchange")
    rng = np.random.default_rng(1)
    hashes = make_hashes("uniform", 2000, rng)
    queries, _ = plant_queries(hashes, 31, 1, rng)
    result = head_to_head(hashes, queries, 31, rounds=3)
    assert result is not None
    assert len(result["rounds"]) == 3 and len(result["ratios"]) == 3
    assert all(r["ours_per_s"] > 0 and r["theirs_per_s"] > 0 for r in result["rounds"])
    assert result["ratio_median"] == sorted(result["ratios"])[1]
