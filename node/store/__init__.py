"""Storage for a node: the interface every store implements and its rows, the rules both
stores share (schema), the cache of stored entries' decodings, and the two stores: SQLite
(`store.sqlite`, the default) and PostgreSQL (`postgres`, its write transactions in
`postgres_writes`); `open_store` makes the one a location names. PostgreSQL's module (and
asyncpg, about 3 MiB resident) is imported when first named: a node on SQLite, and its
writer process, never load it.

May import: `node.errors`, `node.config`, `protocol`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from node.errors import StoreError
from node.store.base import Store

if TYPE_CHECKING:
    from node.store.postgres import PostgresStore
    from node.store.sqlite.store import SqliteStore

__all__ = ["PostgresStore", "SqliteStore", "Store", "open_store"]


def open_store(url_or_path: str | os.PathLike[str]) -> Store:
    """The store a location names (not yet opened: call `await store.open()`).

    A file path or `sqlite:///path` is a SQLiteStore; `postgresql://...` (or `postgres://`) is
    a PostgresStore, whose schema may be chosen with a `schema=` query parameter.
    """
    location = os.fspath(url_or_path)
    scheme = urlsplit(location).scheme if "://" in location else ""
    if scheme in ("postgresql", "postgres"):
        parts = urlsplit(location)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schemas = [value for key, value in query if key == "schema"]
        dsn = urlunsplit(parts._replace(query=urlencode([q for q in query if q[0] != "schema"])))
        from node.store.postgres import PostgresStore  # noqa: PLC0415  # why: the docstring

        return PostgresStore(dsn, schema=schemas[-1]) if schemas else PostgresStore(dsn)
    if scheme not in ("", "sqlite"):
        raise StoreError(f"no store is known for {scheme}:// locations")
    path = location.removeprefix("sqlite://") if scheme == "sqlite" else location
    from node.store.sqlite.store import SqliteStore  # noqa: PLC0415  # why: __getattr__

    return SqliteStore(path)


def __getattr__(name: str) -> object:
    """`PostgresStore`, imported when first named (see the module docstring), and
    `SqliteStore`, so that the SQLite writer process, which imports modules of this package,
    does not load the store's event-loop side (asyncio: about 5 MiB resident)."""
    if name == "PostgresStore":
        from node.store.postgres import PostgresStore  # noqa: PLC0415

        return PostgresStore
    if name == "SqliteStore":
        from node.store.sqlite.store import SqliteStore  # noqa: PLC0415

        return SqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
