"""hashmesh node: everything that does I/O around the pure `protocol` package.

Sub-packages by responsibility, lowest first; a package imports only from packages below it
(checked by import-linter in CI; see `[tool.importlinter]` in pyproject.toml and
docs/architecture.md):

- `errors`, `config`: the node's error hierarchy and its configuration file (leaves);
- `credentials`: key and token files, peer request authentication;
- `store`: the storage interface, its rows and decoded-entries cache, SQLite and PostgreSQL;
- `matching` and `formats`: hashing, the similarity indexes, lookups and the match policy;
  JSON views, import/export files, STIX, transparency reports;
- `core`: the domain service, our log and peers' logs (replicas and the catch-up pipeline),
  rosters, log keys, witnessing, the peer API's bodies, status;
- `replication` and `events`: push, relay and scheduled pulls with the peer client; the
  event feed, outbox and webhooks;
- `http`: the peer and operator APIs and the dashboard (thin handlers over `core`);
- `app`: running a node or a match server, logging, metrics, local consortia;
- `cli`: the `hashmesh` command.
"""
