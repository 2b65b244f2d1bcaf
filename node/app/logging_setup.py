"""Structured logging of a node: JSON lines (or plain text) with secrets redacted.

Log calls name the member and peer they concern with `extra={"member": ..., "peer": ...}`;
the JSON formatter emits those as fields. Whatever the format, every line passes through
`redact`, which removes anything that looks like a bearer token or a signer key
("PRIVATE+KEY+...") plus every secret value registered with `add_secret` (the operator token,
the webhook secret), so no key or token is ever written to a log, not even in a traceback.

`RepeatLimiter` keeps a warning that repeats word for word (a peer that fails the same way
every sync round) from flooding the log: the first one is written, its repeats within
REPEAT_WINDOW_S are counted instead, and the first one after the window carries the count,
"... (repeated 57 times in the last 10 min)". A count no later record can carry (the warning
stopped, or was forgotten among too many others) is written as a line of its own, "...
(repeated 57 times in the last 10 min, summary only)", when the window ends (at the next line
of any kind) or at exit. So every occurrence is in the log exactly once: a line is one, plus
the count it carries, and a "summary only" line is its count alone.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

REDACTED = "[REDACTED]"
#: Fields a log call may pass with `extra=`; the JSON formatter emits them when present.
CONTEXT_FIELDS = ("member", "peer", "origin", "event_id", "url")
_PATTERNS = (
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._~+/=-]+"),
    re.compile(r"PRIVATE\+KEY\+[^\s\"']+"),
    re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)[^\s\"',}]+"),
)
_secrets: set[str] = set()


def add_secret(value: str) -> None:
    """Redact this exact value from every log line (tokens without a 'Bearer' before them)."""
    if len(value) >= 8:  # a short value would redact ordinary words
        _secrets.add(value)


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub(
            lambda m: (m.group(1) if m.re.groups else "") + REDACTED,
            text,
        )
    for secret in _secrets:
        text = text.replace(secret, REDACTED)
    return text


class RedactingFormatter(logging.Formatter):
    """The plain-text format, redacted."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{name}={getattr(record, name)}" for name in CONTEXT_FIELDS if hasattr(record, name)
        )
        return redact(f"{line} [{context}]" if context else line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, context fields, exc; redacted."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            if hasattr(record, name):
                out[name] = getattr(record, name)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        # Redact the serialised line: a secret may sit in any field, or in the exception.
        return redact(json.dumps(out, default=str, ensure_ascii=False))


#: Repeats of one warning within this many seconds are counted, not written.
REPEAT_WINDOW_S = 600.0
#: Distinct warnings whose repeats are counted at once; the least recent is forgotten first.
REPEAT_KEYS = 1000


@dataclass(slots=True)
class _Repeats:
    """One warning's window: when it opened and how many repeats it swallowed since."""

    since: float
    count: int = 0


class RepeatLimiter(logging.Filter):
    """Write a warning (or worse) that repeats word for word once per `window_s`, with a count.

    A record is identified by its logger, level and formatted message. Records below WARNING
    always pass: debugging output is asked for, and info lines are not repeated noise.

    Every swallowed repeat is reported, exactly once: the first record of that warning after
    its window carries the count; a window that ends with no such record, or a warning
    forgotten to keep REPEAT_KEYS, has its count written as a record of its own (through
    `emit`, at the next record of any kind or at `flush`).
    """

    def __init__(
        self,
        window_s: float = REPEAT_WINDOW_S,
        max_keys: int = REPEAT_KEYS,
        clock: Callable[[], float] = time.monotonic,
        emit: Callable[[logging.LogRecord], object] | None = None,
    ) -> None:
        super().__init__()
        self.window_s = window_s
        self.max_keys = max_keys
        self._clock = clock
        self.emit = emit
        #: Oldest window first: a key moves to the end only when a new window opens.
        self._seen: OrderedDict[tuple[str, int, str], _Repeats] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, _SUMMARY, False):
            return True
        now = self._clock()
        if record.levelno < logging.WARNING:
            self._end_windows(now, None)
            return True
        message = record.getMessage()
        key = (record.name, record.levelno, message)
        self._end_windows(now, key)
        seen = self._seen.get(key)
        if seen is not None and now - seen.since < self.window_s:
            seen.count += 1
            return False
        if seen is not None and seen.count:
            # The summary rides on this record: its message is the one that was repeated.
            record.msg = f"{message} {_repeated(seen, now)}"
            record.args = None
        self._seen.pop(key, None)
        self._seen[key] = _Repeats(now)
        while len(self._seen) > self.max_keys:
            self._summarise(*self._seen.popitem(last=False), now)
        return True

    def flush(self) -> None:
        """Write the count of every warning with repeats not yet reported (at shutdown)."""
        now = self._clock()
        while self._seen:
            self._summarise(*self._seen.popitem(last=False), now)

    def _end_windows(self, now: float, keep: tuple[str, int, str] | None) -> None:
        """Report and forget the windows that ended, oldest first (but `keep`'s, whose
        record is being filtered and carries its own count)."""
        for key in list(self._seen):
            seen = self._seen[key]
            if now - seen.since < self.window_s:
                break
            if key != keep:
                del self._seen[key]
                self._summarise(key, seen, now)

    def _summarise(self, key: tuple[str, int, str], seen: _Repeats, now: float) -> None:
        if not seen.count or self.emit is None:
            return
        name, level, message = key
        record = logging.LogRecord(name, level, __file__, 0, "%s", (message,), None)
        record.msg = f"{message} {_repeated(seen, now, SUMMARY_ONLY)}"
        record.args = None
        setattr(record, _SUMMARY, True)
        self.emit(record)


#: The attribute that marks a record as a RepeatLimiter's own summary (it always passes).
_SUMMARY = "hashmesh_repeat_summary"


#: Ends the count of a summary written as a line of its own (not one more occurrence).
SUMMARY_ONLY = ", summary only"


def _repeated(seen: _Repeats, now: float, only: str = "") -> str:
    span = now - seen.since
    when = f"{span / 60:.0f} min" if span >= 60 else f"{span:.0f} s"
    return f"(repeated {seen.count} times in the last {when}{only})"


class _LimitedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler whose RepeatLimiter writes its pending counts when it closes (at
    interpreter exit, logging.shutdown)."""

    def __init__(self, stream: TextIO, limiter: RepeatLimiter) -> None:
        super().__init__(stream)
        self.limiter = limiter
        limiter.emit = self.handle
        self.addFilter(limiter)

    def close(self) -> None:
        try:
            self.limiter.flush()
        finally:
            super().close()


def configure_logging(
    json_lines: bool, level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Send the root logger's records to `stream` (stderr) as JSON lines or text; a warning
    repeated word for word is written once per REPEAT_WINDOW_S with a count (RepeatLimiter)."""
    handler = _LimitedHandler(stream or sys.stderr, RepeatLimiter())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # One line per sync job is noise; apscheduler's warnings and errors still show.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return handler
