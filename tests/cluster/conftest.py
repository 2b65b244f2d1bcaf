"""Cluster tests that matter for storage run on both stores: each node on its own SQLite file,
or each node on its own schema of the local PostgreSQL server ($HASHMESH_TEST_PG), dropped after
the test. Without a reachable server the postgres cases are skipped, saying why."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from node.app.consortium import Consortium
from node.config import NodeConfig
from tests.cluster.support import consortium

PG_DSN = os.environ.get("HASHMESH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
MakeConsortium = Callable[..., Consortium]


async def _pg(statement: str | None = None) -> None:
    conn = await asyncpg.connect(PG_DSN, timeout=3)
    try:
        if statement:
            await conn.execute(statement)
    finally:
        await conn.close()


def postgres_unreachable() -> str | None:
    try:
        asyncio.run(_pg())
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        return f"PostgreSQL at {PG_DSN} is unreachable ({e}); set HASHMESH_TEST_PG"
    return None


@pytest.fixture(params=["sqlite", "postgres"])
def make_consortium(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeConsortium]:
    """Builds a consortium whose nodes use the parameter's store."""
    schemas: list[str] = []
    if request.param == "postgres" and (why := postgres_unreachable()):
        pytest.skip(why)

    def make(n: int, **settings: Any) -> Consortium:
        setup = consortium(tmp_path, n, **settings)
        if request.param == "sqlite":
            return setup
        configs = []
        for config in setup.configs:
            schema = f"t_{secrets.token_hex(5)}"
            schemas.append(schema)
            url = f"{PG_DSN}?schema={schema}"
            configs.append(_with_store(config, url))
        return replace(setup, configs=tuple(configs))

    yield make
    for schema in schemas:
        asyncio.run(_pg(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


def _with_store(config: NodeConfig, url: str) -> NodeConfig:
    changed = replace(config, store=url)
    changed.save()
    return changed
