"""Looking hashes up in a store: the consortium's view of each hash (exact), and every hash a
query matches (near-duplicates for PDQ and vPDQ through the match index, exact otherwise).
Shared by the node and by read-only match servers.

A PDQ hash's view also names the other members' live adds of near-duplicates within the
consortium's threshold (the index's), which corroborate it (protocol/view.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from node.matching.matcher import Matcher, MatchHit
from node.store.base import Store
from node.store.rows import located
from protocol.entries import Add, Confirm, EntryRef, Reference, Retract
from protocol.signals import value_key
from protocol.view import HashView, LocatedEntry, NearAdd, fold

Standing = Callable[[EntryRef], str | None]
#: At most this many near-duplicates are named as corroborating one PDQ hash (nearest first).
MAX_NEAR_ADDS = 32

#: The two ways an image's PDQ hash is made (node/matching/hashing.py): hashmesh's, of the
#: image converted to RGB, and python-threatexchange's, of the decoded array as it is.
RGB_HASH, THREATEXCHANGE_HASH = "rgb", "threatexchange"


async def lookup_views(
    store: Store,
    signal_type: str,
    values: Sequence[bytes | str],
    standing: Standing | None = None,
    matcher: Matcher | None = None,
) -> list[HashView]:
    """The consortium's view of each hash, in the order asked; `standing` (node/matching/policy.py)
    flags the adds the roster no longer vouches for; with a `matcher`, PDQ views name the
    near-duplicates that corroborate them."""
    keys = [value_key(v) for v in values]
    found = [x for f in await store.find_adds(signal_type, keys) if (x := located(f))]
    refs = [(x.ref.log, x.ref.index) for x in found]
    references = [x for f in await store.find_references(refs) if (x := located(f))]
    # A confirmation's confirmer may have retracted it: those retractions are found too.
    confirm_refs = [(x.ref.log, x.ref.index) for x in references if isinstance(x.entry, Confirm)]
    if confirm_refs:
        references += [x for f in await store.find_references(confirm_refs) if (x := located(f))]
    near: dict[bytes | str, list[NearAdd]] = {}
    if matcher is not None and signal_type == "pdq":
        pdq_values = [v for v in values if isinstance(v, bytes)]
        near = await _near_adds(store, matcher, pdq_values, standing)
    # Grouped once, so a batch of n hashes costs O(n), not O(n^2).
    adds_by_value: dict[bytes | str, list[LocatedEntry]] = {}
    for x in found:
        if isinstance(x.entry, Add):
            adds_by_value.setdefault(x.entry.value, []).append(x)
    related_by_target: dict[EntryRef, list[LocatedEntry]] = {}
    for x in references:
        if isinstance(x.entry, Reference):
            related_by_target.setdefault(x.entry.target, []).append(x)
    views = []
    for value in values:
        adds = adds_by_value.get(value, [])
        related = [r for a in adds for r in related_by_target.get(a.ref, [])]
        related += [
            r
            for c in related
            if isinstance(c.entry, Confirm)
            for r in related_by_target.get(c.ref, [])
        ]
        views.append(fold(signal_type, value, adds, related, standing, near.get(value, ())))
    return views


async def _near_adds(
    store: Store, matcher: Matcher, values: Sequence[bytes], standing: Standing | None
) -> dict[bytes | str, list[NearAdd]]:
    """The live adds within the index's threshold of each PDQ value, other than the value
    itself (distance 0), nearest first. The search is remembered per value
    (node/matching/near_cache.py): a hash hit by upload after upload is searched once."""
    near_duplicates = matcher.index.near_duplicates(values, MAX_NEAR_ADDS)
    hits = dict(zip(values, near_duplicates, strict=True))
    refs = sorted({(h.log, h.index) for found in hits.values() for h, _ in found})
    if not refs:
        return {}
    # One store read, by value, for every near-duplicate's add, not one an entry (a thread
    # hop each: a batch of hits in a clustered bank names thousands).
    near_values = {v for found in hits.values() for _, v in found}
    adds: dict[tuple[str, int], Add] = {}
    for f in await store.find_adds("pdq", [value_key(v) for v in near_values]):
        x = located(f)
        if x is not None and isinstance(x.entry, Add):
            adds[(x.ref.log, x.ref.index)] = x.entry
    retracted = set()
    for f in await store.find_references(refs):
        x = located(f)
        if x is not None and isinstance(x.entry, Retract) and x.ref.log == x.entry.target.log:
            retracted.add(x.entry.target)
    near: dict[bytes | str, list[NearAdd]] = {}
    for value, found in hits.items():
        for h, _ in found:
            ref = EntryRef(h.log, h.index)
            add = adds.get((h.log, h.index))
            if add is None or ref in retracted:
                continue
            flag = standing(ref) if standing else None
            near.setdefault(value, []).append(NearAdd(ref, add.timestamp_ms, h.distance, flag))
    return near


async def match_many_hits(
    store: Store,
    matcher: Matcher,
    pdq_threshold: int,
    signal_type: str,
    values: Sequence[bytes | str],
    standing: Standing | None = None,
) -> list[list[MatchHit]]:
    """`match_hits` for each of `values`, in the order asked. PDQ queries are searched as one
    batch and every hash they hit is looked up in one store read: per query, a round trip to
    the store's thread and the re-reading of each hit's entry were most of a match's time."""
    binary = [v for v in values if isinstance(v, bytes)]
    if signal_type == "pdq" and len(binary) == len(values):
        await matcher.index.merge_pdq_in_thread(for_search=True)
        found = matcher.index.match_pdq_values(binary, pdq_threshold)
        # The index holds each hit's value, so the store is asked only for the views.
        distinct = list(dict.fromkeys(value for hits in found for value, _ in hits))
        # A batch that hits nothing (most uploads) needs no store read.
        views = await lookup_views(store, "pdq", distinct, standing, matcher) if distinct else []
        by_value = {view.value: view for view in views if view.submissions}
        return [
            [MatchHit(by_value[value], distance=d) for value, d in hits if value in by_value]
            for hits in found
        ]
    if signal_type == "vpdq" and len(binary) == len(values):
        return [await _match_vpdq(store, matcher, v, standing) for v in binary]
    views = await lookup_views(store, signal_type, values, standing)
    return [[MatchHit(view)] if view.submissions else [] for view in views]


async def match_hits(
    store: Store,
    matcher: Matcher,
    pdq_threshold: int,
    signal_type: str,
    value: bytes | str,
    standing: Standing | None = None,
) -> list[MatchHit]:
    """Every hash held that matches: near-duplicates for pdq and vpdq, exact otherwise."""
    [hits] = await match_many_hits(store, matcher, pdq_threshold, signal_type, [value], standing)
    return hits


async def _match_vpdq(
    store: Store, matcher: Matcher, value: bytes, standing: Standing | None
) -> list[MatchHit]:
    video_hits = matcher.index.match_vpdq(value)
    adds = await matcher.stored_values([(h.log, h.index) for h in video_hits])
    shares: dict[bytes | str, tuple[float, float]] = {}
    for v in video_hits:
        stored = adds.get((v.log, v.index))
        if stored is not None and stored.value not in shares:
            shares[stored.value] = (v.query_percent, v.target_percent)
    views = await lookup_views(store, "vpdq", list(shares), standing)
    return [
        MatchHit(v, query_percent=shares[v.value][0], target_percent=shares[v.value][1])
        for v in views
    ]


def nearest_of_both(
    rgb_hits: Sequence[MatchHit], threatexchange_hits: Sequence[MatchHit]
) -> list[MatchHit]:
    """The PDQ hits of an image searched with both its hashes, each stored hash once, at the
    nearer distance, saying which of the two hashes found it there (the RGB one on a tie)."""
    nearest: dict[bytes | str, MatchHit] = {}
    for convention, hits in ((RGB_HASH, rgb_hits), (THREATEXCHANGE_HASH, threatexchange_hits)):
        for hit in hits:
            known = nearest.get(hit.view.value)
            if known is None or (hit.distance or 0) < (known.distance or 0):
                nearest[hit.view.value] = dataclasses.replace(hit, pdq_convention=convention)
    return list(nearest.values())
