"""The node's HTTP surface (aiohttp): the peer API (`peer_api`: msgpack, signed requests) and
the operator API (`operator_api`: JSON, bearer token), what they share (`common`), their match,
hash, export, event, metrics and public audit routes, serving them (`serving`), and the
operator dashboard (`dashboard`). Handlers are thin: they parse, call the core service, and
shape the answer.

May import: `node.replication`, `node.events` and everything below them.
"""
