"""The figures of bench_crisis.py: bytes on the WAN per member and entry, whether each aim
holds, and the human lines. Imported by bench_crisis.py (scripts/ is on sys.path)."""

from __future__ import annotations

import argparse
from typing import Any

from node.config import NodeConfig

PROXY_COUNTS = ("connections", "requests", "resets", "unknown_sender")
PROXY_COUNTS += ("peak_open_connections", "chunks", "late_ms")


def wire_figures(
    counts: dict[str, Any],
    configs: tuple[NodeConfig, ...],
    own: list[int],
    entries: int,
    encoded: float,
) -> dict[str, Any]:
    sent = {c.member_id: 0 for c in configs}
    received = dict(sent)
    for link, size in counts["links"].items():
        a, b = link.split(">")
        if a in sent:
            sent[a] += size
        if b in received:
            received[b] += size
    per_member = {}
    received_entries = sum(entries - mine for mine in own)
    for config, mine in zip(configs, own, strict=True):
        m = config.member_id
        got = max(1, entries - mine)
        per_member[m] = {
            "sent_bytes": sent[m],
            "received_bytes": received[m],
            "sent_per_entry": round(sent[m] / max(1, entries), 1),
            "received_per_received_entry": round(received[m] / got, 1),
        }
    rec = [p["received_per_received_entry"] for p in per_member.values()]
    snt = [p["sent_per_entry"] for p in per_member.values()]
    return {
        "per_member": per_member,
        "received_per_entry": {"mean": round(sum(rec) / len(rec), 1), "max": max(rec)},
        "sent_per_entry": {"mean": round(sum(snt) / len(snt), 1), "max": max(snt)},
        "received_max_vs_encoded": round(max(rec) / encoded, 2) if encoded else None,
        # Pushes carry a checkpoint and signed headers: few entries a request cost more a byte.
        "requests_per_received_entry": round(counts["requests"] / max(1, received_entries), 3),
        "bytes_per_request": round(sum(received.values()) / max(1, counts["requests"]), 1),
        "unknown_sender_bytes": sum(s for k, s in counts["links"].items() if "unknown" in k),
        **{k: counts[k] for k in PROXY_COUNTS},
    }


def logged(text: str, marker: str) -> int:
    """How many times the log `text` says something containing `marker`: a line is once, plus
    the repeats it reports "(repeated N times ...)", and a "summary only" line its N alone
    (node/app/logging_setup.py)."""
    count = 0
    for line in text.splitlines():
        if marker not in line:
            continue
        repeats = 0
        if "(repeated " in line:
            word = line.rsplit("(repeated ", 1)[1].split(maxsplit=1)[0]
            repeats = int(word) if word.isdigit() else 0
        count += repeats + (0 if "summary only)" in line else 1)
    return count


def pull_bound_ms(args: argparse.Namespace) -> float:
    """The latest an entry may reach every member with push off and still be "within one sync
    interval": its member's next round starts at most sync_interval + sync_jitter after the
    acknowledgement (apscheduler adds 0..jitter to each interval), and that round then carries
    it: evidence, checkpoints and one page of entries, a round trip each over the slowest
    link, with a TCP handshake (one more) and one retry after a reset (two more: the
    replicator tries a reset peer once more in the same round)."""
    round_trip_ms = 2 * args.delay_ms[1]
    return 1000 * (args.sync_interval + args.sync_jitter) + 6 * round_trip_ms


def aims(modes: dict[str, dict[str, Any]], args: argparse.Namespace) -> dict[str, bool | None]:
    """Whether each aim holds; None where the mode it needs was not run."""
    push, pull = modes.get("push"), modes.get("pull")

    def complete(m: dict[str, Any]) -> bool:
        return m["missing"] == 0 and m["submit_errors"] == 0 and m["entries"] > 0

    bound_ms = pull_bound_ms(args)
    return {
        "burst_p99_under_1s_with_push": None
        if push is None
        else complete(push) and push["latency_ms"]["during_burst"]["p99"] < 1000,
        "every_entry_within_one_sync_interval_without_push": None
        if pull is None
        else complete(pull) and pull["latency_max_all_ms"] <= bound_ms,
        "wire_bytes_under_3x_encoded_entry": None
        if not modes
        else all(complete(m) and m["wire"]["received_max_vs_encoded"] < 3 for m in modes.values()),
    }


def lines_of(r: dict[str, Any]) -> list[str]:
    s = r["settings"]
    out = [
        f"crisis: {s['nodes']} members, WAN delay {s['delay_ms'][0]}-{s['delay_ms'][1]} ms one way,"
        f" {s['loss'] * 100:g} % of requests reset, {s['bandwidth_mbit']} Mbit/s a link;"
        f" steady {s['steady_rate']}/s, incident {s['burst_members']} x {s['burst_hashes']}"
        f" hashes over {s['burst_seconds']} s; sync every {s['sync_interval_s']} s"
        f" (+{s['sync_jitter_s']} s jitter)",
    ]
    for mode, m in r["modes"].items():
        w = m["wire"]
        out.append(
            f"  {mode}: {m['entries']} entries ({m['incident_entries']} of the incident),"
            f" {m['submit_errors']} submit errors, {m['missing']} not on every member"
        )
        out.append("    acknowledged -> stored on every member (ms):")
        for name, v in m["latency_ms"].items():
            out.append(
                f"      {name:13} p50 {v['p50']:8.1f}  p99 {v['p99']:8.1f}  max {v['max']:8.1f}"
                f"  ({v['count']})"
            )
        out.append(
            f"    wire per entry: received {w['received_per_entry']['mean']} B mean,"
            f" {w['received_per_entry']['max']} B max a member; sent"
            f" {w['sent_per_entry']['mean']} B mean; encoded entry {m['encoded_entry_bytes']} B"
            f" (max received x{w['received_max_vs_encoded']});"
            f" {w['requests']} requests ({w['requests_per_received_entry']} a received entry,"
            f" {w['bytes_per_request']} B each), {w['resets']} reset;"
            f" proxy late by {w['late_ms']['mean']} ms mean, {w['late_ms']['max']} ms max"
        )
        e, a = m["each_member_latency_ms"], m["submit_ack_ms"]
        out.append(
            f"      on each member p50 {e['p50']:.1f}  p99 {e['p99']:.1f};"
            f" {m['entries_over_1s']} entries over 1 s; submits answered in p50 {a['p50']:.1f}"
            f" p99 {a['p99']:.1f} ms; streamed in {m['streamed_s']} s of {m['planned_s']} planned"
        )
        cpu, rss = m["nodes_cpu_s"], m["nodes_peak_rss_mib"]
        out.append(
            f"    nodes: peak RSS max {max(rss)} MiB, mean {sum(rss) / len(rss):.1f} MiB;"
            f" CPU max {max(cpu)} s, mean {sum(cpu) / len(cpu):.1f} s, all {sum(cpu):.1f} s;"
            f" proxy {m['proxy_cpu_s']} s; load average {m['load_average_1m']};"
            f" {m['peer_request_failures']} peer requests failed,"
            f" {m['peer_requests_reset_by_peers']} reset by the sending peer"
        )
    out.append("  aims: " + ", ".join(f"{k} {v}" for k, v in r["aims_met"].items()))
    return out
