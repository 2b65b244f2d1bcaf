"""Replication with peers: the replicator (`replicator`: push at once, relay what we learn),
its pulls (`pulls`: sync rounds on a schedule, catching up one log) and its peers
(`peer_set`), the peer client (`peer_client`: signed requests, bounded answers), and the
anti-entropy schedule (`scheduler`, apscheduler).

May import: `node.core` and everything below it.
"""
