"""`status` and `sync`: the node's logs, peers, roster and alerts as its operator API reports
them, and a sync round followed until this member holds what the others have.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from node.cli.common import EXIT_NODE, EXIT_OK, client, print_json, progress, when


def cmd_status(args: argparse.Namespace) -> int:
    status = client(args).call("GET", "/v1/status")
    if args.json:
        print_json(status)
        return EXIT_OK
    roster = status["roster"]
    print(f"member {status['member_id']}  log {status['origin']}")
    if not status.get("in_roster", True):
        print(f"NOT IN ROSTER: {status['member_id']} was removed by roster v{roster['version']}")
    expiry = "EXPIRED" if roster.get("expired") else "expires"
    expires = when(roster["expires_ms"])
    print(f"roster {roster['consortium']} v{roster['version']} {expiry} {expires}")
    print("logs:")
    quorum = roster.get("witness_quorum", 0)
    for origin, log in status["logs"].items():
        extra = "  HELD (equivocation)" if log.get("held") else ""
        if log.get("removed"):
            extra += "  REMOVED (no longer in the roster)"
        behind = log.get("latest_seen", 0) - log["size"]
        if behind > 0:
            extra += f"  {behind} behind"
        if log.get("standing"):
            extra += f"  {log['flagged_entries']} FLAGGED ({log['standing']})"
        cosigned = len(log.get("cosigners", []))
        if quorum:
            extra += f"  cosigned {cosigned}/{quorum}" + (
                " witnessed" if cosigned >= quorum else ""
            )
        print(f"  {origin:40} {log['member'] or '?':12} size {log['size']}{extra}")
    index = status.get("match_index")
    if index is not None:
        counts = ", ".join(f"{n} {t}" for t, n in index["hashes"].items())
        print(f"match index: {counts}" + ("" if index["loaded"] else "  LOADING"))
    disk = status.get("disk")
    if disk is not None and disk["free_bytes"] is not None:
        free, total = disk["free_bytes"] / (1 << 20), disk["total_bytes"] / (1 << 20)
        failed = f"  {disk['write_failures']} failed writes" if disk["write_failures"] else ""
        print(f"disk: {free:.0f} MiB free of {total:.0f} MiB{failed}")
    print("peers:")
    for member, peer in status.get("peers", {}).items():
        if peer.get("refusing"):
            state = f"REFUSES US ({peer['last_error']})"
        elif peer["reachable"]:
            state = "reachable"
        else:
            state = f"UNREACHABLE ({peer['last_error']})"
        print(f"  {member:20} {state}")
    for alert in status.get("alerts", []):
        print(f"ALERT: {alert}")
    return EXIT_OK


def _behind(status: dict[str, Any]) -> tuple[int, int]:
    """(entries held, entries known to exist) over the other members' logs."""
    logs = [log for log in status["logs"].values() if not log["own"]]
    held = sum(log["size"] for log in logs)
    return held, sum(max(log["size"], log.get("latest_seen", 0)) for log in logs)


def cmd_sync(args: argparse.Namespace) -> int:
    api = client(args)
    api.call("POST", "/v1/sync")
    start = time.monotonic()
    time.sleep(0.5)  # let the round start and learn what the peers hold
    held, known = _behind(api.call("GET", "/v1/status"))
    while held < known and time.monotonic() - start < args.timeout:
        progress(held, known, "entries held")
        time.sleep(0.5)
        held, known = _behind(api.call("GET", "/v1/status"))
    progress(held, known, "entries held")
    caught_up = held >= known
    if args.json:
        print_json({"caught_up": caught_up, "held": held, "known": known})
    elif caught_up:
        print(f"caught up: {held} entries of other members' logs held")
    else:
        print(f"still behind after {args.timeout:.0f} s: {held} of {known} entries held")
    return EXIT_OK if caught_up else EXIT_NODE
