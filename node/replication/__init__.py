"""Replication with peers: the replicator (`replicator`: push at once, relay what we learn,
pull on a schedule), the peer client (`peer_client`: signed requests, bounded answers), and
the anti-entropy schedule (`scheduler`, apscheduler).

May import: `node.core` and everything below it.
"""
