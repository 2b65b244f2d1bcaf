"""PDQ hash banks and queries for scripts/bench_match.py, in three shapes.

- `uniform`: every bit random and independent, the friendly case for chunk tables.
- `clustered`: real banks hold many variants of one item (re-encodes, crops, overlays) close
  together. Items have heavy-tailed numbers of variants (Zipf, exponent 1.6, up to 2,000; about
  one item per 4 hashes), each variant a uniform 0..20 bits from its item's hash.
- `skewed`: PDQ bits are correlated and unevenly set, so some chunk values are far more common
  than others. Each bit is set with its own probability in 0.2..0.8, and the 16 bits of each
  row of the hash's 16x16 grid (16 consecutive bits) lean the same way.

Queries are near-duplicates of stored hashes, the same number planted at each distance
0..radius; the row each came from is kept to measure recall.
"""

from __future__ import annotations

import numpy as np

SHAPES = ("uniform", "clustered", "skewed")
_BLOCK = 1 << 16  # rows made at once, to bound temporary memory


def make_hashes(shape: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """An (n, 32) uint8 array of hashes of the given shape."""
    if shape == "uniform":
        return rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    if shape == "clustered":
        sizes = np.minimum(rng.zipf(1.6, size=n), 2000)
        items = int(np.searchsorted(np.cumsum(sizes), n)) + 1
        centres = rng.integers(0, 256, size=(items, 32), dtype=np.uint8)
        owner = np.repeat(np.arange(items), sizes[:items])[:n]
        rng.shuffle(owner)
        out = centres[owner]
        for start in range(0, n, _BLOCK):
            block = out[start : start + _BLOCK]
            flips = rng.integers(0, 21, size=len(block))
            # Each bit flipped with probability flips/256: about `flips` bits a variant.
            masks = rng.random((len(block), 256)) < (flips[:, None] / 256)
            block ^= np.packbits(masks, axis=1)
        return out
    if shape == "skewed":
        # One lean per row of the grid, with some spread per bit inside it.
        lean = np.repeat(rng.uniform(0.25, 0.75, size=16), 16)
        p = np.clip(lean + rng.uniform(-0.05, 0.05, size=256), 0.2, 0.8)
        out = np.empty((n, 32), dtype=np.uint8)
        for start in range(0, n, _BLOCK):
            rows = min(_BLOCK, n - start)
            out[start : start + rows] = np.packbits(rng.random((rows, 256)) < p, axis=1)
        return out
    raise ValueError(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")


def plant_queries(
    hashes: np.ndarray, radius: int, per_distance: int, rng: np.random.Generator
) -> tuple[list[bytes], list[int]]:
    """Queries planted at each distance 0..radius from stored hashes, and their rows."""
    queries: list[bytes] = []
    origins: list[int] = []
    n = len(hashes)
    for distance in range(radius + 1):
        for row in rng.choice(n, size=per_distance, replace=False):
            q = hashes[row].copy()
            for bit in rng.choice(256, size=distance, replace=False):
                q[bit // 8] ^= np.uint8(1 << (bit % 8))
            queries.append(q.tobytes())
            origins.append(int(row))
    return queries, origins


def far_queries(count: int, rng: np.random.Generator) -> list[bytes]:
    """Random hashes: with overwhelming odds none is within 31 bits of a stored one."""
    return [bytes(q) for q in rng.integers(0, 256, size=(count, 32), dtype=np.uint8)]
