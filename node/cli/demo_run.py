"""`hashmesh demo`'s body: build a local consortium (node.app.consortium), run its node
processes, submit one takedown on the first node and time its arrival at every other node.
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli.common import EXIT_NODE, EXIT_OK, print_json

if TYPE_CHECKING:
    from node.cli.operator_client import OperatorClient


def _wait_for(client: OperatorClient, item: dict[str, str], start: float, timeout: float) -> float:
    while time.monotonic() - start < timeout:
        result = client.call("POST", "/v1/lookup", {"hashes": [item]})
        if result["results"][0]["found"]:
            return (time.monotonic() - start) * 1000
        time.sleep(0.005)
    return -1.0


def cmd_demo(args: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from node.app.consortium import build_consortium
    from node.app.procs import NodeGroup
    from node.cli.operator_client import OperatorClient

    args.nodes = max(args.nodes, 2)
    root = Path(tempfile.mkdtemp(prefix="hashmesh-demo-"))
    say = (lambda *_: None) if args.json else print
    try:
        consortium = build_consortium(
            root,
            args.nodes,
            time.time_ns() // 1_000_000,
            push=not args.no_push,
            sync_interval_s=args.sync_interval,
            sync_jitter_s=min(1.0, args.sync_interval / 5),
        )
        say(f"consortium of {args.nodes} members in {root}; starting nodes...")
        with NodeGroup(consortium.configs) as group:
            clients = [OperatorClient.for_node(c) for c in consortium.configs]
            value = hashlib.md5(secrets.token_bytes(16), usedforsecurity=False).hexdigest()
            item = {"signal_type": "md5", "value": value}
            submission: dict[str, Any] = {**item, "labels": ["terrorist-attack"]}
            submission["incident"] = "demo-incident"
            start = time.monotonic()
            ref = clients[0].call("POST", "/v1/submit", {"items": [submission]})["entries"][0]
            acked_ms = (time.monotonic() - start) * 1000
            say(
                f"{consortium.configs[0].member_id} submitted md5:{value} (acknowledged in "
                f"{acked_ms:.1f} ms, entry #{ref['index']})"
            )
            with ThreadPoolExecutor(len(clients) - 1) as pool:
                waits = [pool.submit(_wait_for, c, item, start, args.timeout) for c in clients[1:]]
                arrivals = {
                    cfg.member_id: round(w.result(), 1)
                    for cfg, w in zip(consortium.configs[1:], waits, strict=True)
                }
            for member, ms in arrivals.items():
                say(f"  {member}: " + (f"matchable after {ms:.1f} ms" if ms >= 0 else "MISSING"))
            group.stop()
        missing = [m for m, ms in arrivals.items() if ms < 0]
        result = {
            "nodes": args.nodes,
            "push": not args.no_push,
            "origin": consortium.configs[0].member_id,
            "hash": item,
            "acknowledged_ms": round(acked_ms, 1),
            "arrivals_ms": arrivals,
            "max_ms": max(arrivals.values()),
            "missing": missing,
            "directory": str(root) if args.keep else None,
        }
        if args.json:
            print_json(result)
        elif not missing:
            say(f"every member can match it after {result['max_ms']:.1f} ms; nodes stopped")
        return EXIT_NODE if missing else EXIT_OK
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
