"""hashmesh node: storage, peer and operator APIs, replication, matching and the CLI (all I/O)."""
