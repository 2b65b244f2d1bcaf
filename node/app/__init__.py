"""Running things: the node runner (`runner`: opens the store, starts the service, serves both
APIs, replicates, stops cleanly), the read-only match server, logging set-up, metrics, the
collector's settings, and local consortia and node processes for the demo, tests and
benchmarks.

May import: `node.http` and everything below it.
"""
