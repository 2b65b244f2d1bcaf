"""The anti-entropy schedule: an apscheduler job that asks the Replicator for a sync round.

The job only sets the Replicator's request flag; the round itself runs in the Replicator's own
task, so every task has an owner and a round never overlaps another (max_instances=1 too).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger


class SyncSchedule:
    """Calls `request_sync` every `interval_s` seconds (plus jitter), first at once."""

    def __init__(self, request_sync: Callable[[], None], interval_s: float, jitter_s: float):
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_job(
            request_sync,
            IntervalTrigger(seconds=interval_s, jitter=jitter_s or None, timezone=UTC),
            id="anti-entropy",
            max_instances=1,
            coalesce=True,
            next_run_time=datetime.now(UTC),
        )

    def start(self) -> None:
        self._scheduler.start()

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
