"""Making equivocation evidence self-contained (protocol/evidence.py) from what a node holds.

Two checkpoints of one size prove themselves. For two sizes the evidence needs the larger
tree's root at the smaller size and its consistency proof: the node computes them from a tree
whose every entry it holds and whose checkpoint it verified, either a stored checkpoint's or
that of a page it just verified against its checkpoint (entries stored before the page, the
page's own entries after). Whatever is made is verified with the roster before it is returned;
ProtocolError if nothing that verifies can be made from what is held.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from node.store.base import Store
from protocol import merkle
from protocol.checkpoint import parse_signed_checkpoint
from protocol.errors import EquivocationError, ProofError, ProtocolError
from protocol.evidence import Equivocation, evidence_of
from protocol.merkle import CompactRange, NodeId
from protocol.roster import Roster


@dataclass(frozen=True, slots=True)
class VerifiedPage:
    """Entries [start, start + len) just verified against a checkpoint of exactly that end."""

    start: int
    entries: Sequence[bytes]

    @property
    def end(self) -> int:
        return self.start + len(self.entries)


async def make_evidence(
    store: Store,
    roster: Roster,
    e: EquivocationError,
    held_size: int,
    page: VerifiedPage | None = None,
) -> Equivocation:
    """Verified evidence of `e`; `held_size` is how many entries of the log the store holds."""
    first, second = parse_signed_checkpoint(e.first), parse_signed_checkpoint(e.second)
    if first.checkpoint.size == second.checkpoint.size:
        return evidence_of(roster, e.first, e.second)
    trees = [(n, raw) for n, raw in await store.checkpoints(e.origin) if n <= held_size]
    if page is not None and page.start == held_size:
        trees += [(page.end, s.raw) for s in (first, second) if s.checkpoint.size == page.end]
    why = "no checkpoint whose every entry we hold goes beyond the contradicted one"
    # The newer of the two is usually the one that contradicts what we verified.
    for contradicted in (second, first):
        size = contradicted.checkpoint.size
        for n, raw in sorted(t for t in trees if size < t[0]):
            if not size:
                break
            try:
                ids = merkle.tree_hash_ids(size) + merkle.consistency_proof_ids(size, n)
                if n <= held_size:
                    nodes = await store.nodes(e.origin, ids)
                else:
                    assert page is not None  # only the page's tree reaches beyond the store
                    nodes = await _page_tree_nodes(store, e.origin, ids, page)
                prefix_root = merkle.tree_hash(size, nodes)
                proof = merkle.consistency_proof(size, n, nodes)
                return evidence_of(roster, contradicted.raw, raw, prefix_root, proof)
            except ProtocolError as err:
                why = str(err)
    raise ProofError(why)


async def _page_tree_nodes(
    store: Store, origin: str, ids: Sequence[NodeId], page: VerifiedPage
) -> dict[NodeId, bytes]:
    """The nodes `ids` of the tree of size page.end: a node left of the page is read from the
    store, one inside it hashed from its entries, one across its start made of the two."""
    size = page.end
    leaves = [merkle.leaf_hash(raw) for raw in page.entries]

    def parts(lo: int, hi: int) -> list[tuple[int, int]]:
        """[lo, hi) as stored perfect subtrees left of the page and ranges inside it."""
        if hi <= page.start or lo >= page.start:
            return [(lo, hi)]
        split = 1 << ((hi - lo - 1).bit_length() - 1)  # RFC 9162: largest power of 2 < width
        return parts(lo, lo + split) + parts(lo + split, hi)

    spans = {node: _span(node, size) for node in ids}
    left = {_perfect(*p) for span in spans.values() for p in parts(*span) if p[1] <= page.start}
    stored = await store.nodes(origin, sorted(left)) if left else {}

    def hashed(lo: int, hi: int) -> bytes:
        if hi <= page.start:
            node = _perfect(lo, hi)
            if node not in stored:
                raise ProofError(f"the store lacks node {node} of {origin}")
            return stored[node]
        if lo >= page.start:
            tree = CompactRange()
            for leaf in leaves[lo - page.start : hi - page.start]:
                tree.append(leaf)
            return tree.root()
        split = 1 << ((hi - lo - 1).bit_length() - 1)
        return merkle.node_hash(hashed(lo, lo + split), hashed(lo + split, hi))

    return {node: hashed(*span) for node, span in spans.items()}


def _span(node: NodeId, size: int) -> tuple[int, int]:
    level, index = node
    return index << level, min((index + 1) << level, size)


def _perfect(lo: int, hi: int) -> NodeId:
    """The id of the perfect subtree [lo, hi) (a power-of-two width, aligned)."""
    level = (hi - lo).bit_length() - 1
    return level, lo >> level
