"""Formats: JSON views of hashes and entry references as the operator API shows them,
import and export files (csv, te-csv, jsonl), STIX 2.1 bundles, transparency reports. Pure
conversions, but for the report's reads from a store.

May import: `node.store`, `node.errors`, `protocol`.
"""
