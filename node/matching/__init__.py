"""Hashing and matching: a file to the signal values the consortium shares (`hashing`), the
exact PDQ index (`pdq_index`) and vPDQ video matching (`vpdq`), the node's in-memory indexes
(`indexes`) kept current as entries are stored (`matcher`), exact and near-duplicate lookups
(`lookups`), and what a hit means for this platform (`policy`).

May import: `node.store`, `node.errors`, `node.config`, `protocol`.
"""
