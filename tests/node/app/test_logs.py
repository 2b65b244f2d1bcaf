"""The node's log set-up (node/app/logging_setup.py) keeps repeated warnings from flooding
the log, writes JSON lines with the member and peer, and never writes a secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from node.app.logging_setup import (
    REDACTED,
    JsonFormatter,
    RedactingFormatter,
    RepeatLimiter,
    add_secret,
    configure_logging,
)
from node.credentials.request_auth import new_token


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


def test_json_lines_carry_member_and_peer_and_never_a_token(root_logger: None) -> None:
    token = new_token()
    key_text = (
        "PRIVATE+KEY+demo.hashmesh/member1+0a1b2c3d+AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
    )
    add_secret(token)
    out = io.StringIO()
    configure_logging(json_lines=True, stream=out)
    log = logging.getLogger("hashmesh.test")
    log.info("pushed to %s", "member2", extra={"member": "member1", "peer": "member2"})
    log.warning("request had Authorization: Bearer %s", token)
    log.warning("token was %s", token)
    log.info("headers %s", {"Authorization": f"Bearer {token}"})
    try:
        raise ValueError(f"bad key {key_text}")
    except ValueError:
        log.exception("loading failed")
    text = out.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 5
    assert lines[0]["member"] == "member1" and lines[0]["peer"] == "member2"
    assert lines[0]["msg"] == "pushed to member2" and lines[0]["level"] == "info"
    assert token not in text and "PRIVATE+KEY" not in text and key_text[-20:] not in text
    assert all(REDACTED in line["msg"] for line in lines[1:4])
    assert REDACTED in lines[4]["exc"] and "ValueError" in lines[4]["exc"]


def test_plain_text_logs_are_redacted_too() -> None:
    token = new_token()
    formatter = RedactingFormatter("%(levelname)s %(message)s")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "sent bearer %s", (token,), None)
    record.peer = "member2"
    line = formatter.format(record)
    assert token not in line and REDACTED in line and "peer=member2" in line
    assert JsonFormatter().format(record).count(token) == 0


class Emitted:
    """The summaries a RepeatLimiter writes as records of their own."""

    def __init__(self) -> None:
        self.records: list[logging.LogRecord] = []

    def __call__(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


def test_the_count_of_a_warning_that_stops_is_written_when_its_window_ends() -> None:
    # Regression: repeats were reported only on the warning's next occurrence after its
    # window, so a failure that stopped (or the node that stopped) lost its count.
    clock, emitted = FakeClock(), Emitted()
    limiter = RepeatLimiter(window_s=600, clock=clock, emit=emitted)
    for _ in range(4):
        limiter.filter(record("peer %s: %s", "member2", "POST /v1/push failed"))
    clock.now += 601
    assert limiter.filter(record("stored %d", 5, level=logging.INFO))
    assert emitted.messages() == [
        "peer member2: POST /v1/push failed (repeated 3 times in the last 10 min, summary only)"
    ]


def test_the_count_of_a_warning_forgotten_among_too_many_is_written_at_once() -> None:
    # Regression: a warning forgotten to bound the limiter's memory took its count with it,
    # and the one repeating most was forgotten first (it had been written longest ago).
    clock, emitted = FakeClock(), Emitted()
    limiter = RepeatLimiter(window_s=600, max_keys=2, clock=clock, emit=emitted)
    for _ in range(6):
        limiter.filter(record("peer %s failed", "member2"))
    limiter.filter(record("peer %s failed", "member3"))
    assert emitted.records == []
    limiter.filter(record("peer %s failed", "member4"))
    assert emitted.messages() == [
        "peer member2 failed (repeated 5 times in the last 0 s, summary only)"
    ]


def test_every_repeat_is_counted_exactly_once_in_the_log(root_logger: None) -> None:
    out = io.StringIO()
    handler = configure_logging(json_lines=False, stream=out)
    log = logging.getLogger("node.replication.replicator")
    for i in range(50):
        log.warning("peer %s: %s", f"member{i % 3}", "connection reset")
    handler.close()  # at exit: the counts not yet written are
    lines = out.getvalue().splitlines()
    written = sum(occurrences(line) for line in lines)
    assert written == 50 and len(lines) == 6
    assert sum("summary only" in line for line in lines) == 3


def occurrences(line: str) -> int:
    """How many occurrences of its warning a log line stands for."""
    if "(repeated " not in line:
        return 1
    count = int(line.split("(repeated ")[1].split(maxsplit=1)[0])
    return count if "summary only)" in line else 1 + count
