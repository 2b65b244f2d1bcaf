"""Test references for protocol.merkle: published vectors and a naive RFC 9162 tree.

The naive tree is RFC 9162 section 2.1's recursive MTH, PATH and PROOF, verbatim. It
deliberately shares nothing with protocol.merkle (only hashlib), so that agreement between the
two means something. Works on index ranges of one list of entries, D[start:end], and memoises
MTH per range, which keeps exhaustive comparisons over hundreds of tree sizes fast without
changing what is computed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def _largest_power_of_two_below(n: int) -> int:
    """The k with k < n <= 2k (for n > 1): "the largest power of two smaller than n"."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


class ReferenceTree:
    """MTH, PATH and PROOF over entries D[0:n] for any n up to len(entries)."""

    def __init__(self, entries: Sequence[bytes]) -> None:
        self.entries = list(entries)
        self._mth: dict[tuple[int, int], bytes] = {}

    def leaf(self, i: int) -> bytes:
        return hashlib.sha256(b"\x00" + self.entries[i]).digest()

    def mth(self, start: int, end: int) -> bytes:
        """MTH(D[start:end])."""
        key = (start, end)
        cached = self._mth.get(key)
        if cached is not None:
            return cached
        n = end - start
        if n == 0:
            result = hashlib.sha256(b"").digest()
        elif n == 1:
            result = self.leaf(start)
        else:
            k = _largest_power_of_two_below(n)
            left = self.mth(start, start + k)
            right = self.mth(start + k, end)
            result = hashlib.sha256(b"\x01" + left + right).digest()
        self._mth[key] = result
        return result

    def root(self, n: int) -> bytes:
        return self.mth(0, n)

    def path(self, m: int, n: int) -> list[bytes]:
        """PATH(m, D[0:n]) for 0 <= m < n."""
        return self._path(m, 0, n)

    def _path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _largest_power_of_two_below(n)
        if m < k:
            return [*self._path(m, start, start + k), self.mth(start + k, end)]
        return [*self._path(m - k, start + k, end), self.mth(start, start + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[0:n]) for 0 < m < n."""
        return self._subproof(m, 0, n, True)

    def _subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self.mth(start, start + k)]


class UniformReference(ReferenceTree):
    """The reference over any number of copies of one entry: MTH then depends only on a range's
    length, so the RFC recursions stay O(log n) calls even for trees of 2**64 leaves."""

    def __init__(self) -> None:
        super().__init__([b"same"])
        self._by_length: dict[int, bytes] = {}

    def leaf(self, i: int) -> bytes:
        return super().leaf(0)

    def mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n not in self._by_length:
            self._by_length[n] = super().mth(0, 1) if n == 1 else super().mth(start, end)
        return self._by_length[n]


# Published vectors: transparency-dev/merkle, testonly/constants.go and proof/verify_test.go (the
# Certificate Transparency test tree). Literal, never computed by the code under test.
CT_LEAVES = [bytes.fromhex(h) for h in ("", "00", "10", "2021", "3031", "40414243",
             "5051525354555657", "606162636465666768696a6b6c6d6e6f")]  # fmt: skip
CT_ROOTS = [bytes.fromhex(h) for h in (  # indexed by tree size
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")]  # fmt: skip
CT_NODES = [[bytes.fromhex(h) for h in level] for level in (  # [level][k]
    ("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
     "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
     "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
     "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
     "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
     "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
     "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
     "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
     "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
     "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
     "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
     "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",))]  # fmt: skip
CT_INCLUSION = {  # (index, size) -> PATH
    (0, 1): [],
    (0, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (5, 8): ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 3): ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    (1, 5): ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
}  # fmt: skip
CT_CONSISTENCY = {  # (old_size, new_size) -> PROOF
    (1, 1): [],
    (1, 8): ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
             "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"],
    (6, 8): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
    (2, 5): ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
             "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"],
    (6, 7): ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
             "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
             "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"],
}  # fmt: skip
# Node sets named in transparency-dev/merkle proof/proof_test.go, which addresses nodes as we do.
TD_INCLUSION_IDS = {
    (0, 7): {(0, 1), (1, 1), (0, 6), (1, 2)},
    (4, 7): {(0, 5), (0, 6), (2, 0)},
    (6, 7): {(1, 2), (2, 0)},
    (10, 15): {(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)},
    (24, 31): {(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)},
    (81, 95): {(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)},
}
TD_CONSISTENCY_IDS = {
    (3, 7): {(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)},
    (4, 7): {(0, 6), (1, 2)},
    (5, 7): {(0, 4), (0, 5), (0, 6), (2, 0)},
    (7, 8): {(0, 6), (0, 7), (1, 2), (2, 0)},
    (10, 15): {(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)},
    (24, 31): {(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)},
    (81, 95): {(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)},
}
