"""Node processes on this machine, for the demo and the multi-process tests.

A NodeProcess runs `hashmesh node run DIR` as a child process, waits for its ready line and
stops it (SIGTERM, then SIGKILL after a grace period) or kills it hard (`kill -9`). Its output
goes to DIR/node.log so a failing test can show it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from node.config import NodeConfig
from node.errors import NodeError

READY = "hashmesh node ready"


class NodeProcessError(NodeError):
    """A node process did not start or stopped unexpectedly."""


class NodeProcess:
    """`hashmesh node run DIR`, or another long-running hashmesh command given as `command`."""

    def __init__(
        self,
        config: NodeConfig,
        command: tuple[str, ...] = ("node", "run"),
        ready: str = READY,
        log_name: str = "node.log",
    ) -> None:
        self.config = config
        self.command = command
        self.ready = ready
        self.log_path = config.directory / log_name
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self, timeout_s: float = 20.0) -> NodeProcess:
        if self.running:
            return self
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as out:
            self._proc = subprocess.Popen(  # noqa: S603  # our own interpreter and module
                [sys.executable, "-m", "node.cli.main", *self.command, str(self.config.directory)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.ready in self._log_from(offset):
                return self
            if self._proc.poll() is not None:
                raise NodeProcessError(
                    f"{self.config.member_id} exited with {self._proc.returncode}: "
                    f"{self._log_from(offset)[-2000:]}"
                )
            time.sleep(0.02)
        self.kill()
        raise NodeProcessError(f"{self.config.member_id} not ready after {timeout_s} s")

    def _log_from(self, offset: int) -> str:
        with self.log_path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def log(self) -> str:
        return self._log_from(0) if self.log_path.exists() else ""

    def stop(self, grace_s: float = 10.0) -> int | None:
        """SIGTERM, wait, then SIGKILL if it did not stop. Returns the exit code."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(grace_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        return self._proc.returncode

    def kill(self) -> None:
        """kill -9: no chance to clean up, as in a crash."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()


class NodeGroup:
    """Several node processes that are all stopped when the group exits."""

    def __init__(self, configs: list[NodeConfig] | tuple[NodeConfig, ...]) -> None:
        self.nodes = [NodeProcess(c) for c in configs]

    def __enter__(self) -> NodeGroup:
        try:
            for node in self.nodes:
                node.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        for node in self.nodes:
            if node.running and node._proc is not None:
                node._proc.send_signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()

    def __getitem__(self, i: int) -> NodeProcess:
        return self.nodes[i]


def logs_of(paths: list[Path]) -> str:
    return "\n".join(f"--- {p}\n{p.read_text(errors='replace')[-3000:]}" for p in paths)
