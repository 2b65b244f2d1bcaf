#!/usr/bin/env python3
"""How much disk a node's SQLite store takes for N entries, write-ahead log included.

A one-member consortium in a temporary directory; its NodeService (the node's own code, on
the default SqliteStore with its writer process) takes submissions of `--batch` hashes each,
half PDQ and half MD5 with one label, signing a checkpoint after each, as a busy member's node
does. At each size of `--sizes` it reports the database file, the WAL and its shared-memory
file as they are, the largest the WAL was so far (it grows until SQLite checkpoints it into
the database), and the database's bytes an entry. A node holds every member's log, so N is the
consortium's total. Entries replicated from peers take the same room.

    .venv/bin/python scripts/disk_usage.py [--sizes 10000,100000,300000] [--batch 500] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.app.consortium import build_consortium
from node.config import read_roster
from node.core.service import NodeService
from node.credentials.key_files import load_key
from node.store.sqlite.store import SqliteStore
from protocol.entries import Add


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def size_of(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def adds(start: int, count: int, label: str) -> list[Add]:
    out = []
    for i in range(start, start + count):
        seed = i.to_bytes(8, "big")
        if i % 2:
            out.append(Add(now_ms(), "pdq", os.urandom(24) + seed, (label,)))
        else:
            out.append(Add(now_ms(), "md5", os.urandom(8) + seed, (label,)))
    return out


async def measure(root: Path, sizes: list[int], batch: int) -> list[dict[str, Any]]:
    [config] = build_consortium(root, 1, now_ms()).configs
    _, key = load_key(config.checkpoint_key_path)
    db = root / "hashmesh.db"
    store = SqliteStore(db)
    await store.open()
    rows = []
    try:
        service = NodeService(config, store, key, now_ms)
        await service.start(read_roster(config))
        label = service.rosters.roster.taxonomy[0]
        done, peak_wal = 0, 0
        for target in sizes:
            while done < target:
                count = min(batch, target - done)
                await service.submit(adds(done, count, label))
                await service.sign_pending()
                done += count
                peak_wal = max(peak_wal, size_of(Path(f"{db}-wal")))
            files = {
                "db": size_of(db),
                "wal": size_of(Path(f"{db}-wal")),
                "shm": size_of(Path(f"{db}-shm")),
            }
            total = sum(files.values())  # what the store takes on disk now
            rows.append({"entries": done, **files, "peak_wal": peak_wal, "total": total})
    finally:
        await store.close()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,300000")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    with tempfile.TemporaryDirectory(prefix="hashmesh-disk-") as tmp:
        rows = asyncio.run(measure(Path(tmp), sizes, args.batch))
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    mib = 1 << 20
    print("| entries | database | database bytes an entry | WAL now | WAL at most |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['entries']:,} | {r['db'] / mib:.1f} MiB | {r['db'] / r['entries']:.0f}"
            f" | {r['wal'] / mib:.1f} MiB | {r['peak_wal'] / mib:.1f} MiB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
