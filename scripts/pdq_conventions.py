#!/usr/bin/env python3
"""Compare the two PDQ conventions on image files: hashmesh's (the image converted to RGB)
and python-threatexchange's own hasher (the decoded array as it is), file by file: the mode,
both hashes and qualities, the bits apart, and whether hashmesh carries threatexchange's hash
as the file's `threatexchange_value` (docs/matching.md, "Two PDQ conventions").

With no file named, it writes the test set (tests/pdq_modes.py: one picture in every Pillow
mode a file keeps) into a temporary folder and compares that. Needs the `threatexchange`
package (the dev extra).

    .venv/bin/python scripts/pdq_conventions.py [FILE or FOLDER ...] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from threatexchange.signal_type.pdq.pdq_hasher import pdq_from_bytes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from node.matching.hashing import hash_file
from tests.pdq_modes import pillow_modes


def compare(path: Path) -> dict[str, Any] | None:
    """One file's row, or None if Pillow does not read it as an image."""
    try:
        with Image.open(path) as image:
            mode = image.mode
    except UnidentifiedImageError:
        return None
    [ours] = [h for h in hash_file(path) if h.signal_type == "pdq"]
    row: dict[str, Any] = {"file": str(path), "mode": mode, "rgb": ours.value.hex()}
    row["rgb_quality"] = ours.quality
    try:
        theirs, quality = pdq_from_bytes(path.read_bytes())
    except (ValueError, IndexError) as e:
        row.update(threatexchange=None, threatexchange_quality=None, bits_apart=None)
        row["threatexchange_error"] = str(e)
    else:
        apart = (int(theirs, 16) ^ int.from_bytes(ours.value, "big")).bit_count()
        row.update(threatexchange=theirs, threatexchange_quality=quality, bits_apart=apart)
    row["carried"] = ours.threatexchange_value is not None
    return row


def files_under(paths: list[Path]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        out.extend(sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path])
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="image files or folders")
    parser.add_argument("--json", action="store_true", help="one JSON object per file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = args.paths or list(pillow_modes(Path(tmp)).values())
        rows = [r for r in (compare(p) for p in files_under(paths)) if r is not None]
    for r in rows:
        if args.json:
            print(json.dumps(r))
            continue
        apart = "-" if r["bits_apart"] is None else r["bits_apart"]
        tx_q = "-" if r["threatexchange_quality"] is None else r["threatexchange_quality"]
        carried = "  carried" if r["carried"] else ""
        name = Path(r["file"]).name
        quality = f"{r['rgb_quality']}/{tx_q}"
        print(f"{name:24} {r['mode']:6} bits apart {apart!s:>4}  quality {quality}{carried}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
