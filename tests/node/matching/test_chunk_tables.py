"""Chunking a single query by table gives exactly the numpy chunking of the index."""

from __future__ import annotations

import numpy as np

from node.matching.chunk_tables import chunk_values, chunk_values_one


def test_one_hash_chunked_by_table_equals_the_numpy_chunking() -> None:
    rng = np.random.default_rng(7)
    words = rng.integers(0, 2**64, size=(500, 4), dtype=np.uint64)
    words[0] = 0
    words[1] = np.iinfo(np.uint64).max
    expected = chunk_values(words)
    for i in range(len(words)):
        assert (chunk_values_one(words[i : i + 1]) == expected[i : i + 1]).all(), i
