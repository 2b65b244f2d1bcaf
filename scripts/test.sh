#!/usr/bin/env bash
# The README's test command: sets everything up, then runs the whole test suite.
# Extra arguments go to pytest (for example: ./scripts/test.sh -k merkle).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
VENV="${HASHMESH_VENV:-.venv}"
exec "$VENV/bin/python" -m pytest -q "$@"
