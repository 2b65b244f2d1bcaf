"""Storage for a node: an interface and its SQLite (default) implementation."""
