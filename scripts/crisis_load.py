"""The workload of bench_crisis.py: the submits of a run, planned in time order (a steady
stream of takedowns round-robin over the members, then an incident's burst on a few), and the
ledger of what each submit's acknowledgement says (the entries, when, their encoded size).
Imported by bench_crisis.py (scripts/ is on sys.path)."""

from __future__ import annotations

import argparse
import random
import threading
from dataclasses import dataclass, field
from typing import Any

from benchlib import wall_ms

from node.cli.operator_client import OperatorClient
from node.errors import NodeError
from node.formats.json_views import parse_add
from protocol.entries import encode_entry

KINDS = ("pdq", "vpdq", "md5")
LABELS = ["terrorist-attack"]


@dataclass(frozen=True, slots=True)
class Submit:
    """One submit request planned at `at` seconds into the run."""

    at: float
    member: int
    items: tuple[dict[str, Any], ...]
    incident: bool


@dataclass
class Ledger:
    """Acknowledged entries: (log, index) -> (ack wall ms, incident?, member, encoded bytes)."""

    entries: dict[tuple[str, int], tuple[float, bool, int, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    ack_ms: list[float] = field(default_factory=list)  # how long each submit took to answer
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def hash_item(kind: str, rng: random.Random, frames: int, incident: str | None) -> dict[str, Any]:
    if kind == "pdq":
        value = rng.randbytes(32).hex()
    elif kind == "vpdq":
        value = b"".join(
            rng.randbytes(32) + bytes([100]) + i.to_bytes(4, "big") + (i * 1000).to_bytes(4, "big")
            for i in range(frames)
        ).hex()
    else:
        value = rng.randbytes(16).hex()
    item: dict[str, Any] = {"signal_type": kind, "value": value, "labels": LABELS}
    if incident is not None:
        item["incident"] = incident
    return item


def plan(args: argparse.Namespace, seed: int) -> list[Submit]:
    """Every submit of a run in time order: the steady stream, and the incident."""
    rng = random.Random(seed)  # reproducible hashes, not secrets
    out: list[Submit] = []
    total_s = args.steady_seconds + args.burst_seconds
    for i in range(round(total_s * args.steady_rate)):
        item = hash_item(KINDS[i % 3], rng, args.vpdq_frames, None)
        out.append(Submit(i / args.steady_rate, i % args.nodes, (item,), False))
    incident = f"incident-{seed}"
    requests = -(-args.burst_hashes // args.burst_batch)
    for m in range(args.burst_members):
        left = args.burst_hashes
        for r in range(requests):
            size = min(args.burst_batch, left)
            left -= size
            items = tuple(
                hash_item(KINDS[(r * args.burst_batch + k) % 3], rng, args.vpdq_frames, incident)
                for k in range(size)
            )
            at = args.steady_seconds + args.burst_seconds * (r + m / args.burst_members) / requests
            out.append(Submit(at, m % args.nodes, items, True))
    return sorted(out, key=lambda s: s.at)


def submit(client: OperatorClient, job: Submit, ledger: Ledger) -> None:
    sent = wall_ms()
    try:
        answer = client.call("POST", "/v1/submit", {"items": list(job.items)})
    except NodeError as e:
        with ledger.lock:
            ledger.errors.append(f"member{job.member + 1}: {e}")
        return
    acked = wall_ms()
    sizes = [len(encode_entry(parse_add(item, int(acked)))) for item in job.items]
    with ledger.lock:
        ledger.ack_ms.append(acked - sent)
        for ref, size in zip(answer["entries"], sizes, strict=True):
            ledger.entries[(ref["log"], ref["index"])] = (acked, job.incident, job.member, size)
