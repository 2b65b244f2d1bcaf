#!/usr/bin/env bash
# The README's first command: sets everything up, then runs a local demo consortium.
# Extra arguments go to `hashmesh demo` (for example: ./scripts/demo.sh --nodes 5 --json).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh >&2
VENV="${HASHMESH_VENV:-.venv}"
exec "$VENV/bin/hashmesh" demo "$@"
