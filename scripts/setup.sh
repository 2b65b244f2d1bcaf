#!/usr/bin/env bash
# Sets up everything hashmesh needs on a fresh Debian/Ubuntu machine: system packages, then a
# virtual environment (default .venv, or $HASHMESH_VENV) with hashmesh and its dev tools.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${HASHMESH_VENV:-.venv}"
PY="${PYTHON:-python3}"

# System packages: FFmpeg's libraries and a compiler to build vpdq and pdqhash (video and image
# hashing), ffmpeg itself (tests make videos with it), and Go's sumdb note/tlog packages for the
# interoperability tests, and chromium with its driver for the dashboard's browser test.
SYSTEM_PACKAGES=(
    build-essential pkg-config ffmpeg
    libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavdevice-dev libavfilter-dev
    golang-go golang-golang-x-mod-dev
    chromium chromium-driver
)
missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${SYSTEM_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
fi
if [ "${#missing[@]}" -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && SUDO="sudo"
    echo "setup: installing system packages: ${missing[*]}" >&2
    if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; }; then
        echo "setup: could not install ${missing[*]}; the tests that need them will be skipped" >&2
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -m pip install -q -e '.[dev]'
echo "setup: ready in $VENV" >&2
