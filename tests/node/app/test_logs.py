"""The node's log set-up keeps repeated warnings from flooding the log
(node/app/logging_setup.py)."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from node.app.logging_setup import RepeatLimiter, configure_logging


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def record(message: str, *args: object, level: int = logging.WARNING) -> logging.LogRecord:
    return logging.LogRecord("node.replication.replicator", level, __file__, 1, message, args, None)


def test_a_warning_repeated_within_the_window_is_written_once_then_summarised() -> None:
    clock = FakeClock()
    limiter = RepeatLimiter(window_s=600, clock=clock)
    first = record("peer %s: no member has the log %r", "member2", "gone.hashmesh")
    assert limiter.filter(first)
    for _ in range(57):
        clock.now += 10
        assert not limiter.filter(
            record("peer %s: no member has the log %r", "member2", "gone.hashmesh")
        )
    clock.now = 1000.0 + 600
    after = record("peer %s: no member has the log %r", "member2", "gone.hashmesh")
    assert limiter.filter(after)
    assert after.getMessage() == (
        "peer member2: no member has the log 'gone.hashmesh' (repeated 57 times in the last 10 min)"
    )
    # The next window starts afresh.
    clock.now += 1
    assert not limiter.filter(
        record("peer %s: no member has the log %r", "member2", "gone.hashmesh")
    )


def test_different_warnings_and_info_lines_are_not_held_back() -> None:
    limiter = RepeatLimiter(window_s=600, clock=FakeClock())
    assert limiter.filter(record("peer %s failed", "member2"))
    assert limiter.filter(record("peer %s failed", "member3"))
    assert limiter.filter(record("peer %s failed", "member2", level=logging.ERROR))
    assert all(limiter.filter(record("stored %d", 5, level=logging.INFO)) for _ in range(3))


def test_a_warning_after_a_quiet_window_carries_no_count() -> None:
    clock = FakeClock()
    limiter = RepeatLimiter(window_s=600, clock=clock)
    assert limiter.filter(record("disk is low"))
    clock.now += 601
    again = record("disk is low")
    assert limiter.filter(again) and again.getMessage() == "disk is low"


def test_the_warnings_it_counts_are_bounded_in_number() -> None:
    clock = FakeClock()
    limiter = RepeatLimiter(window_s=600, max_keys=3, clock=clock)
    for i in range(10):
        assert limiter.filter(record("peer %d failed", i))
    # The oldest were forgotten: one of them is written again, the newest is still held.
    assert limiter.filter(record("peer %d failed", 0))
    assert not limiter.filter(record("peer %d failed", 9))


@pytest.fixture
def root_logger() -> Iterator[None]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    yield None
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_the_node_log_writes_a_repeated_warning_once(root_logger: None) -> None:
    out = io.StringIO()
    configure_logging(json_lines=False, stream=out)
    log = logging.getLogger("node.replication.replicator")
    for _ in range(5):
        log.warning("peer %s: %s", "member2", "no member has the log 'gone.hashmesh'")
    log.warning("peer %s: %s", "member3", "connection refused")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert "member2" in lines[0] and "member3" in lines[1]
