"""Structured logging of a node: JSON lines (or plain text) with secrets redacted.

Log calls name the member and peer they concern with `extra={"member": ..., "peer": ...}`;
the JSON formatter emits those as fields. Whatever the format, every line passes through
`redact`, which removes anything that looks like a bearer token or a signer key
("PRIVATE+KEY+...") plus every secret value registered with `add_secret` (the operator token,
the webhook secret), so no key or token is ever written to a log, not even in a traceback.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
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


def configure_logging(
    json_lines: bool, level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """Send the root logger's records to `stream` (stderr) as JSON lines or text."""
    handler = logging.StreamHandler(stream or sys.stderr)
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
