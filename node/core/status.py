"""The node's status report and alerts, as the operator API, CLI and dashboard show them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from node.matching.indexes import INDEXED_TYPES
from node.matching.policy import MEMBER_REMOVED, PAST_COMPROMISED_KEY
from protocol.errors import RosterError

if TYPE_CHECKING:
    from node.core.service import NodeService


def node_status(service: NodeService) -> dict[str, Any]:
    roster = service.rosters.roster
    held = service.peers.held
    logs: dict[str, Any] = {}
    own_signed = service.own_checkpoint.checkpoint.size if service.own_checkpoint else 0
    logs[service.origin] = {
        "member": service.config.member_id,
        "size": service.own_size,
        "root": service.own_root.hex(),
        "checkpoint_size": own_signed,
        "cosigners": sorted(service.witness.cosigners(service.own_checkpoint)),
        "own": True,
        "held": False,
    }
    flagged = flagged_logs(service)
    for origin, replica in sorted(service.peers.replicas().items()):
        latest = replica.latest_seen
        try:
            member = roster.member_by_origin(origin).member_id
        except RosterError:  # a removed member's log stays listed
            member = None
        logs[origin] = {
            "member": member,
            "size": replica.size,
            "root": replica.root.hex(),
            "checkpoint_size": replica.checkpoint.checkpoint.size if replica.checkpoint else 0,
            "cosigners": sorted(service.witness.cosigners(replica.checkpoint)),
            "latest_seen": latest.checkpoint.size if latest else 0,
            "own": False,
            "held": origin in held,
            # No longer a writer in the roster in force: what we hold stays, nothing new comes.
            "removed": member is None,
        }
    for origin, (flag, count) in flagged.items():
        if origin in logs:
            logs[origin].update(standing=flag, flagged_entries=count)
    return {
        "member_id": service.config.member_id,
        "origin": service.origin,
        # False once the admins removed this member: its peers refuse it and it adds nothing.
        "in_roster": service.own_member() is not None,
        "roster": {
            "version": roster.version,
            "expires_ms": roster.expires_ms,
            "expired": service.rosters.expired(),
            "consortium": roster.consortium,
            "witness_quorum": roster.witness_quorum,
        },
        "logs": logs,
        # Matching is exact for what is indexed; after a start the index loads in the
        # background, and until `loaded` a node may miss older near-duplicates.
        "match_index": {
            "loaded": service.matcher.loaded,
            "hashes": {t: service.matcher.index.size(t) for t in INDEXED_TYPES},
        },
        "equivocations": [
            {"origin": e.origin, "detail": e.detail, "seen_ms": e.seen_ms} for e in held.values()
        ],
        "now_ms": service.clock(),
        "disk": disk_status(service),
        "alerts": node_alerts(service),
    }


def disk_status(service: NodeService) -> dict[str, Any]:
    """The data directory's free and total bytes (None if unreadable), and failed writes."""
    space = service.disk.space()
    return {
        "path": str(service.disk.path),
        "free_bytes": space.free_bytes if space else None,
        "total_bytes": space.total_bytes if space else None,
        "write_failures": service.disk.write_failures,
    }


def node_alerts(service: NodeService) -> list[str]:
    """What an operator must look at: equivocation, an expiring roster, removal, failing
    listeners, flagged entries, a filling disk."""
    out = [f"equivocation by {e.origin}: {e.detail}" for e in service.peers.held.values()]
    roster = service.rosters.roster
    if service.own_member() is None:
        out.append(
            f"{service.config.member_id} is NOT IN roster version {roster.version}, the roster "
            "in force: the admins removed it; peers refuse it and it accepts no submissions"
        )
    elif refusing := service.refused_by():
        out.append(
            f"peers refuse us (401): {', '.join(refusing)}; see their last error. `unknown "
            f"member` means their roster does not name {service.config.member_id}: if every "
            "peer says so, the admins have probably removed it and that roster has not "
            "reached this node"
        )
    left_ms = roster.expires_ms - service.clock()
    if left_ms <= 0:
        out.append(
            f"roster version {roster.version} has EXPIRED; ask the admins to renew it (the node "
            "keeps serving and replicating under it, and accepts only its signed successor)"
        )
    elif left_ms < service.config.roster_warn_days * 86_400_000:
        days = left_ms / 86_400_000
        out.append(f"roster version {roster.version} expires in {days:.1f} days")
    if roster.resign_period_ms and service.clock() > roster.issued_ms + roster.resign_period_ms:
        out.append(
            f"roster version {roster.version} is due for re-signing: the consortium re-signs "
            f"every {roster.resign_period_ms / 86_400_000:g} days"
        )
    unsigned = service.own_size - own_signed_size(service)
    if unsigned and service.keys.for_size(roster, service.own_size) is None:
        out.append(
            f"{unsigned} acknowledged entries wait for a checkpoint: the roster names no "
            "installed key for them (key rotation under way, or our key declared compromised)"
        )
    if service.sign_failure is not None:
        out.append(
            f"checkpoints are not being signed ({service.sign_failure[0]}); acknowledged "
            "entries wait, and the node retries"
        )
    out += service.listeners.alerts()
    out += service.disk.alerts()
    for origin, (flag, count) in flagged_logs(service).items():
        if flag == MEMBER_REMOVED:
            out.append(
                f"{count} entries of {origin} are flagged: its member was removed from the "
                "roster; matches on them are sent to review"
            )
        else:
            out.append(
                f"{count} entries of {origin} are flagged: they lie past where its key was "
                "declared compromised and no valid key has signed over them; matches on them "
                "are sent to review"
            )
    return out


def flagged_logs(service: NodeService) -> dict[str, tuple[str, int]]:
    """origin -> (flag, how many of its held entries carry it), for logs with flagged entries."""
    standing = service.entry_standing()
    sizes = {origin: r.size for origin, r in service.peers.replicas().items()}
    sizes[service.origin] = service.own_size
    out = {}
    for origin, size in sorted(sizes.items()):
        if origin not in standing.origins:
            flag, start = MEMBER_REMOVED, 0
        elif origin in standing.flagged_from:
            flag, start = PAST_COMPROMISED_KEY, standing.flagged_from[origin]
        else:
            continue
        if size > start:
            out[origin] = (flag, size - start)
    return out


def own_signed_size(service: NodeService) -> int:
    return service.own_checkpoint.checkpoint.size if service.own_checkpoint else 0
