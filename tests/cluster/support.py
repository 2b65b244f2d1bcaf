"""Helpers for tests that run real node processes on 127.0.0.1."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from node.app.consortium import Consortium, build_consortium
from node.cli.operator_client import OperatorClient
from node.config import NodeConfig

NOW = lambda: time.time_ns() // 1_000_000  # noqa: E731


def consortium(root: Path, n: int, **settings: Any) -> Consortium:
    return build_consortium(root, n, NOW(), **settings)


def md5_item(seed: str) -> dict[str, str]:
    value = hashlib.md5(seed.encode(), usedforsecurity=False).hexdigest()
    return {"signal_type": "md5", "value": value}


def api(config: NodeConfig) -> OperatorClient:
    return OperatorClient.for_node(config)


def submit(config: NodeConfig, items: list[dict[str, str]]) -> list[dict[str, Any]]:
    body = {"items": [{**i, "labels": ["terrorist-attack"]} for i in items]}
    result: list[dict[str, Any]] = api(config).call("POST", "/v1/submit", body)["entries"]
    return result


def found(config: NodeConfig, item: dict[str, str]) -> bool:
    result = api(config).call("POST", "/v1/lookup", {"hashes": [item]})
    return bool(result["results"][0]["found"])


def status(config: NodeConfig) -> dict[str, Any]:
    result: dict[str, Any] = api(config).call("GET", "/v1/status")
    return result


def wait_until(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Seconds until `check()` held; fails the test after `timeout_s`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(0.01)
    raise AssertionError(f"{what}: not within {timeout_s} s")


def roots(config: NodeConfig) -> dict[str, tuple[int, str]]:
    logs = status(config)["logs"]
    return {o: (logs[o]["size"], logs[o]["root"]) for o in sorted(logs)}
