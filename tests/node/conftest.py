"""Store fixtures: every store test runs against a real SQLite file and a real PostgreSQL schema.

PostgreSQL is reached at $HASHMESH_TEST_PG (default: the local test server); each test gets its
own schema, dropped afterwards. When no server answers, the postgres cases are skipped.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg
import pytest

from node.config import NodeConfig
from node.store.base import Store
from node.store.postgres import PostgresStore
from node.store.sqlite.store import SqliteStore

PG_DSN = os.environ.get("HASHMESH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")

StoreFactory = Callable[[], Store]

_pg_unreachable: list[str] = []  # why the server could not be reached, once known


async def _require_postgres() -> None:
    if _pg_unreachable:
        pytest.skip(_pg_unreachable[0])
    try:
        conn = await asyncpg.connect(PG_DSN, timeout=3)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        _pg_unreachable.append(f"PostgreSQL at {PG_DSN} is unreachable ({e}); set HASHMESH_TEST_PG")
        pytest.skip(_pg_unreachable[0])
    await conn.close()


async def _drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(PG_DSN, timeout=3)
    try:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store_factory(backend: str, tmp_path: Path) -> AsyncIterator[StoreFactory]:
    """Makes unopened stores that all share one location (file or schema); closes them after."""
    made: list[Store] = []
    schema = f"t_{secrets.token_hex(6)}"
    if backend == "postgres":
        await _require_postgres()

    def make() -> Store:
        store: Store
        if backend == "sqlite":
            store = SqliteStore(tmp_path / "store.db", busy_timeout_s=2.0)
        else:
            store = PostgresStore(PG_DSN, schema=schema)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.close()
    if backend == "postgres":
        await _drop_schema(schema)


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    """An open, empty store of each kind."""
    opened = store_factory()
    await opened.open()
    return opened


StoreFor = Callable[[NodeConfig], Store]


@pytest.fixture
async def store_for(backend: str, tmp_path: Path) -> AsyncIterator[StoreFor]:
    """Makes each node's store on the parameter's backend: one SQLite file or one PostgreSQL
    schema per member, the same one again for a restarted node; schemas dropped after."""
    schemas: dict[str, str] = {}
    if backend == "postgres":
        await _require_postgres()

    def make(config: NodeConfig) -> Store:
        if backend == "sqlite":
            return SqliteStore(config.directory / "data.db", busy_timeout_s=2.0)
        schema = schemas.setdefault(config.member_id, f"t_{secrets.token_hex(6)}")
        return PostgresStore(PG_DSN, schema=schema)

    yield make
    for schema in schemas.values():
        await _drop_schema(schema)
