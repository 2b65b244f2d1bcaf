"""`hashmesh demo`: a fresh local consortium of N node processes on 127.0.0.1; one takedown
submitted on the first node, and the time until every other node can look it up.
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

from node.cli.common import EXIT_NODE, EXIT_OK, Subcommands, add_json_arg, print_json

if TYPE_CHECKING:
    from node.cli.operator_client import OperatorClient


def register(sub: Subcommands) -> None:
    p = sub.add_parser("demo", help="run a local demo consortium and time one takedown")
    p.add_argument("--nodes", type=int, default=3, help="how many member nodes (default 3)")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for arrival")
    p.add_argument("--no-push", action="store_true", help="rely on the scheduled pull only")
    p.add_argument("--sync-interval", type=float, default=5.0, help="seconds between pulls")
    p.add_argument("--keep", action="store_true", help="keep the consortium's directory")
    add_json_arg(p)
    p.set_defaults(func=cmd_demo)


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
