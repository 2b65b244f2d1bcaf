#!/usr/bin/env python3
"""Benchmark the `hashmesh` command's start-up: wall time of whole processes, against the
baseline of a bare interpreter (`python -c pass`) in the same run.

Each command runs `--runs` times (default 10) as its own process; the figures are the minimum
and median wall times. Commands that need a node (`status`, `lookup`) are run with their
`--help`, which parses as far as the command itself and imports what the command module does
at start, not the network round trip.

    .venv/bin/python scripts/bench_cli.py [--runs 10] [--json]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import emit, log, machine

COMMANDS: dict[str, list[str]] = {
    "python -c pass (baseline)": ["-c", "pass"],
    "hashmesh --help": ["-m", "node.cli.main", "--help"],
    "hashmesh status --help": ["-m", "node.cli.main", "status", "--help"],
    "hashmesh lookup --help": ["-m", "node.cli.main", "lookup", "--help"],
    "hashmesh submit --help": ["-m", "node.cli.main", "submit", "--help"],
    "import node.app.runner (what `node run` needs)": ["-c", "import node.app.runner"],
}


def wall_times(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = {}
    for name, command in COMMANDS.items():
        log(f"timing {name}")
        times = wall_times(command, args.runs)
        figures[name] = {
            "min_s": round(min(times), 4),
            "median_s": round(statistics.median(times), 4),
        }
    base = figures["python -c pass (baseline)"]["median_s"]
    for figure in figures.values():
        figure["over_baseline_s"] = round(figure["median_s"] - base, 4)
    lines = [f"{'command':45} {'min s':>8} {'median s':>9} {'over baseline':>14}"]
    lines += [
        f"{name:45} {f['min_s']:8.3f} {f['median_s']:9.3f} {f['over_baseline_s']:14.3f}"
        for name, f in figures.items()
    ]
    emit({"runs": args.runs, "commands": figures, "machine": machine()}, args.json, lines)


if __name__ == "__main__":
    main()
