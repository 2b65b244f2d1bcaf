"""`hashmesh audit verify`: check a node's copy of every log offline, from the pinned first
roster along the roster chain its store holds: every log against the roster that last listed
its member, and any equivocation evidence held.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from node.cli.common import EXIT_OK, EXIT_VERIFY, node_config, print_json
from node.errors import ConfigError
from protocol.errors import ProtocolError

if TYPE_CHECKING:
    from node.store.base import Store

#: Entries read from the store at a time.
PAGE = 10_000


async def _audit_store(store: Store, genesis: bytes) -> dict[str, Any]:
    from node.app.runner import wall_clock_ms
    from protocol.audit import LogAudit, check_evidence
    from protocol.evidence import verify_evidence
    from protocol.roster import SignedRoster, check_fresh, verify_link, verify_self_signed

    problems: list[str] = []
    notices: list[str] = []
    roster = verify_self_signed(SignedRoster.decode(genesis))
    # A removed member's log is judged by the last roster that listed it.
    listed_by = dict.fromkeys(roster.origins(), roster)
    for raw in await store.rosters():
        candidate = SignedRoster.decode(raw)
        if candidate.roster.version > roster.version:
            try:
                roster = verify_link(roster, candidate)  # expiry: of the last one, below
            except ProtocolError as bad:
                problems.append(f"roster version {candidate.roster.version}: {bad}")
                break
            listed_by.update(dict.fromkeys(roster.origins(), roster))
    try:
        check_fresh(roster, wall_clock_ms())
    except ProtocolError as stale:
        problems.append(str(stale))
    logs = {}
    for origin, head in sorted((await store.log_heads()).items()):
        judged_by = listed_by.get(origin)
        if judged_by is None:
            logs[origin] = {"size": head.size, "ok": True, "note": "in no roster of the chain"}
            continue
        checkpoints = [raw for _, raw in await store.checkpoints(origin)]
        audit = LogAudit(origin, judged_by, checkpoints)
        for start in range(0, head.size, PAGE):
            audit.feed(await store.entries(origin, start, min(head.size, start + PAGE)))
        report = audit.finish()
        problems.extend(f"{origin}: {p}" for p in report.problems)
        notices.extend(f"{origin}: {n}" for n in report.notices)
        logs[origin] = {
            "size": report.size,
            "root": report.root.hex(),
            "checkpoints_checked": report.checkpoints_checked,
            "witnessed_checkpoints": report.witnessed,
            "undecodable_entries": report.undecodable,
            "untrusted_checkpoints": list(report.untrusted_checkpoints),
            "unvouched_entries": report.unvouched_entries,
            "ok": report.ok,
        }
        if judged_by is not roster:
            logs[origin]["note"] = f"member removed: judged by roster version {judged_by.version}"
    evidence: list[dict[str, Any]] = []
    for held in await store.evidence():
        try:
            if held.encoded:
                proves = verify_evidence(roster, held.encoded).detail
            else:  # stored before evidence carried its proof
                proves = check_evidence(held.first, held.second, roster)
        except ProtocolError as err:
            evidence.append({"origin": held.origin, "invalid": str(err)})
            continue
        evidence.append(
            {
                "origin": held.origin,
                "proves": proves,
                "first": held.first.decode(errors="replace"),
                "second": held.second.decode(errors="replace"),
                "evidence": held.encoded.hex(),
                "seen_ms": held.seen_ms,
            }
        )
        problems.append(f"equivocation: {proves}")
    return {
        "roster_version": roster.version,
        "logs": logs,
        "equivocation_evidence": evidence,
        "problems": problems,
        "notices": notices,
        "ok": not problems,
    }


async def _run_verify(args: argparse.Namespace) -> dict[str, Any]:
    from node.app.runner import open_store

    config = node_config(argparse.Namespace(node=str(args.directory)))
    genesis_path = args.genesis or config.roster_path
    try:
        genesis = genesis_path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read {genesis_path}: {e}") from e
    store = open_store(config)
    await store.open()
    try:
        return await _audit_store(store, genesis)
    finally:
        await store.close()


def cmd_verify(args: argparse.Namespace) -> int:
    import asyncio

    report = asyncio.run(_run_verify(args))
    if args.json:
        print_json(report)
    else:
        print(f"roster version {report['roster_version']}")
        for origin, log in report["logs"].items():
            mark = "ok" if log["ok"] else "FAILED"
            checked = log.get("checkpoints_checked", 0)
            print(f"  {origin:40} size {log['size']:8}  {checked} checkpoints checked  {mark}")
        for e in report["equivocation_evidence"]:
            print(f"EQUIVOCATION: {e.get('proves') or e.get('invalid')}")
        for n in report["notices"]:
            print(f"NOTICE: {n}")
        for p in report["problems"]:
            print(f"PROBLEM: {p}")
        print("audit passed" if report["ok"] else "audit FAILED")
    return EXIT_OK if report["ok"] else EXIT_VERIFY
