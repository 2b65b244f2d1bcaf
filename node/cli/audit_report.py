"""`hashmesh audit report`: a transparency report over a period, from one or more nodes'
stores (only read), as JSON and optionally a readable HTML page (node.formats.report).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from node.cli.common import EXIT_OK, UsageError, node_config, print_json
from node.config import read_roster

if TYPE_CHECKING:
    from node.formats.report import Observed


async def _observe(directory: Path, since_ms: int, until_ms: int) -> Observed:
    from node.app.runner import open_store
    from node.formats.report import observe, roster_changes
    from protocol.roster import SignedRoster

    config = node_config(argparse.Namespace(node=str(directory)))
    pinned = read_roster(config)  # a missing roster is the node's configuration, said first
    store = open_store(config)
    await store.open()
    try:
        chain = [pinned, *await store.rosters()]
        rosters = [SignedRoster.decode(raw).roster for raw in chain]
        names = {m.origin: m.member_id for r in rosters for m in r.members}
        joined = [
            r.issued_ms for r in rosters if any(m.member_id == config.member_id for m in r.members)
        ]
        seen = await observe(
            store,
            config.member_id,
            lambda o: names.get(o, o),
            since_ms,
            until_ms,
            joined_ms=min(joined, default=None),
        )
        seen.roster_changes = roster_changes(rosters, since_ms, until_ms)
        return seen
    finally:
        await store.close()


def cmd_report(args: argparse.Namespace) -> int:
    if args.html is not None and not args.html.resolve().parent.is_dir():
        raise UsageError(f"--html {args.html}: no directory {args.html.resolve().parent}")

    import asyncio

    from node.app.runner import wall_clock_ms
    from node.formats.report import build_report, render_html

    until_ms = wall_clock_ms()
    since_ms = until_ms - int(args.days * 86_400_000)
    observed = [asyncio.run(_observe(d, since_ms, until_ms)) for d in args.directories]
    report = build_report(observed, since_ms, until_ms)
    if args.html:
        args.html.write_text(render_html(report))
    if args.json:
        print_json(report)
    else:
        for member, counts in report["entries_by_member"].items():
            taken = report["takedowns_by_member"].get(member, {})
            print(f"{member:20} {taken.get('takedowns', 0):6} takedowns "
                  f"({taken.get('retracted', 0)} more retracted; "
                  f"{taken.get('hash_entries', 0)} hash entries) "
                  f"{counts['dispute']:4} disputes")  # fmt: skip
        for change in report["roster_changes"]:
            print(f"{change['member']}: {change['change']} by roster v{change['roster_version']}")
        for observer, p in report["arrival_ms"].items():
            if p["count"]:
                print(f"arrival at {observer}: median {p['p50']:.0f} ms, p99 {p['p99']:.0f} ms"
                      f" ({p['caught_up_excluded']} made before it joined left out)")  # fmt: skip
        if args.html:
            print(f"wrote {args.html}")
    return EXIT_OK
