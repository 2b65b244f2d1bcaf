"""python-threatexchange's own CLI fetching from and matching against real node processes on
127.0.0.1 through the hashmesh exchange (hashmesh_threatexchange): registered with
`threatexchange config extensions add`, its token from the environment, a first fetch that
takes the export, later ones that follow the events feed, and a fetch that starts over when
the node's event log no longer holds what came after its checkpoint."""

from __future__ import annotations

import csv
import io
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

from PIL import Image
from threatexchange.signal_type.pdq.signal import PdqSignal

from node.app.procs import NodeGroup
from node.config import NodeConfig
from tests.cluster.support import api, consortium, submit, wait_until

REPO = Path(__file__).resolve().parents[2]


class Threatexchange:
    """The real `threatexchange` CLI with its own state directory, as a member's platform."""

    def __init__(self, state: Path, node: NodeConfig) -> None:
        self.env = {
            **os.environ,
            "TX_STATEDIR": str(state),
            "HASHMESH_OPERATOR_TOKEN": node.token_path.read_text().strip(),
            "PYTHONPATH": str(REPO),
        }

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "threatexchange.cli.main", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def dataset(self) -> dict[tuple[str, str], dict[str, str]]:
        out = self.run("dataset", "-P", "--csv").stdout
        return {(r["signal_type"], r["signal_str"]): r for r in csv.DictReader(io.StringIO(out))}


def pdq(rng: random.Random) -> dict[str, str]:
    return {"signal_type": "pdq", "value": f"{rng.getrandbits(256):064x}"}


def noise_image(path: Path, seed: int) -> str:
    """A picture of random blocks, and its PDQ as python-threatexchange computes it."""
    rng = random.Random(seed)
    small = Image.new("RGB", (16, 16))
    small.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(256)])
    small.resize((256, 256), Image.Resampling.NEAREST).save(path)
    return PdqSignal.hash_from_file(path)


def view(node: NodeConfig, item: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = api(node).call("POST", "/v1/lookup", {"hashes": [item]})
    return result["results"][0]  # type: ignore[no-any-return]


def test_threatexchange_fetches_and_matches_the_consortiums_view_through_the_exchange(
    tmp_path: Path,
) -> None:
    setup = consortium(tmp_path, 2, sync_interval_s=0.5, sync_jitter_s=0.1)
    ours, theirs = setup.configs
    rng = random.Random(18)
    image = tmp_path / "seen.png"
    seen = {"signal_type": "pdq", "value": noise_image(image, 1)}
    others = [pdq(rng) for _ in range(20)]
    video = {"signal_type": "video_md5", "value": f"{rng.getrandbits(128):032x}"}
    file_md5 = {"signal_type": "md5", "value": f"{rng.getrandbits(128):032x}"}
    tx = Threatexchange(tmp_path / "tx", ours)

    with NodeGroup([ours, theirs]) as group:
        entries = submit(theirs, [seen, *others, video, file_md5])
        wait_until(lambda: view(ours, file_md5)["found"], 60, "the adds replicated")

        tx.run("config", "extensions", "add", "hashmesh_threatexchange")
        tx.run("config", "collab", "edit", "hashmesh", "HASHMESH", "--create",
               "--operator-url", ours.operator_url)  # fmt: skip
        first = tx.run("-v", "fetch")
        assert "taking the node's export" in first.stderr
        records = tx.dataset()
        # md5 is any file's: python-threatexchange has no type for it, so it is not given.
        assert len(records) == 22
        assert records["pdq", seen["value"]]["category"] == "POSITIVE_CLASS"
        assert records["pdq", seen["value"]]["tags"] == "terrorist-attack"
        assert records["video_md5", video["value"]]["category"] == "POSITIVE_CLASS"
        match = tx.run("match", "photo", str(image)).stdout
        assert "pdq" in match and "POSITIVE_CLASS" in match
        assert "added by member2" in match  # the origin member is kept

        # Their member retracts the video; ours disputes the picture; they add one more.
        api(theirs).call("POST", "/v1/retract", {"index": entries[-2]["index"], "reason": "x"})
        dispute = {**entries[0], "reason_code": "wrong-label", "text": "not this incident"}
        api(ours).call("POST", "/v1/dispute", dispute)
        late = pdq(rng)
        submit(theirs, [late])
        wait_until(lambda: view(ours, late)["found"], 60, "the new add replicated")
        wait_until(lambda: not view(ours, video)["active"], 60, "the retraction replicated")

        second = tx.run("-v", "fetch")
        assert "taking the node's export" not in second.stderr  # the events feed, not an export
        assert "event(s) after" in second.stderr
        records = tx.dataset()
        assert ("video_md5", video["value"]) not in records
        assert records["pdq", seen["value"]]["category"] == "DISPUTED"
        assert records["pdq", late["value"]]["category"] == "POSITIVE_CLASS"
        assert len(records) == 22
        assert "DISPUTED" in tx.run("match", "photo", str(image)).stdout

        # Our node loses its event log; meanwhile the late add is retracted. The next fetch
        # finds its checkpoint beyond the feed and starts over from the export.
        group[0].stop()
        for name in ("outbox.db", "outbox.db-wal", "outbox.db-shm"):
            (ours.data_dir / name).unlink(missing_ok=True)
        index = view(theirs, late)["submissions"][0]["index"]
        api(theirs).call("POST", "/v1/retract", {"index": index, "reason": "x"})
        group[0].start()
        wait_until(lambda: not view(ours, late)["active"], 60, "the retraction reached us")

        third = tx.run("-v", "fetch")
        assert "starting over from its export" in third.stderr
        records = tx.dataset()
        assert ("pdq", late["value"]) not in records
        assert records["pdq", seen["value"]]["category"] == "DISPUTED"
        assert len(records) == 21
