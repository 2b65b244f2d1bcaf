"""An outbox for unit tests of the event API and webhooks: events built without a store."""

from __future__ import annotations

import json
from pathlib import Path

from node.events.outbox import Event, EventRange, Outbox


async def index_events(recorded: EventRange, start: int, stop: int) -> list[Event]:
    """An add event for each index: {"log", "index", "value"} (no entries behind them)."""
    return [
        Event(
            recorded.id_of(i),
            "add",
            json.dumps({"log": recorded.log, "index": i, "value": f"{i:032x}"}),
        )
        for i in range(start, stop)
    ]


def fake_outbox(path: Path, deliver: bool, retain_events: int = 100_000) -> Outbox:
    return Outbox(path, deliver=deliver, build=index_events, retain_events=retain_events)


async def record_adds(outbox: Outbox, log: str, end: int) -> int:
    """Record `log`'s entries up to `end` as events (from its cursor on); how many."""
    return await outbox.record(log, end, "member1", 1_700_000_000_000)
