"""The node's HTTP surface (aiohttp): the peer API (msgpack, signed requests) and the operator
API (JSON, bearer token) in `server`, with their match, hash, export and public audit routes,
and the operator dashboard (`dashboard`). Handlers are thin: they parse, call the core
service, and shape the answer.

May import: `node.replication`, `node.events` and everything below them.
"""
