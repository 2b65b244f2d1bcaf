"""Says whether the PostgreSQL server the tests use ($HASHMESH_TEST_PG) is reachable.

Exit 0 if it is, 1 if not; the PostgreSQL test cases skip themselves when it is not.
"""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

DSN = os.environ.get("HASHMESH_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


async def _check() -> str:
    conn = await asyncpg.connect(DSN, timeout=3)
    try:
        return str(await conn.fetchval("SHOW server_version"))
    finally:
        await conn.close()


def main() -> int:
    try:
        version = asyncio.run(_check())
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as e:
        print(f"PostgreSQL at {DSN} is NOT reachable ({e}): the PostgreSQL tests will be SKIPPED")
        return 1
    print(f"PostgreSQL {version} at {DSN} is reachable: the PostgreSQL tests run against it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
