"""Our signed notes, checkpoints, cosignatures, tlog-proofs and consistency proofs, checked by
Go's golang.org/x/mod/sumdb/note and sumdb/tlog (tests/interop/verify.go).

Needs `go` and the x/mod sources (Debian: golang-go, golang-golang-x-mod-dev); skipped without.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from protocol import vectors
from protocol.errors import ProtocolError
from protocol.note import Verifier
from protocol.tlogproof import parse_tlog_proof

pytestmark = pytest.mark.interop

HERE = Path(__file__).parent
GOPATH_SYSTEM = Path("/usr/share/gocode")
XMOD = GOPATH_SYSTEM / "src/golang.org/x/mod/sumdb"


@pytest.fixture(scope="module")
def go_verifier(tmp_path_factory: pytest.TempPathFactory) -> Path:
    go = shutil.which("go")
    if go is None:
        pytest.skip("the Go toolchain (`go`) is not installed")
    if not (XMOD / "note/note.go").is_file() or not (XMOD / "tlog/tlog.go").is_file():
        pytest.skip(f"golang.org/x/mod sources are missing under {GOPATH_SYSTEM}")
    work = tmp_path_factory.mktemp("go")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(work),
        "GO111MODULE": "off",
        "GOPATH": f"{GOPATH_SYSTEM}:{work / 'gopath'}",
        "GOCACHE": str(work / "cache"),
        "GOFLAGS": "",
        "CGO_ENABLED": "0",
    }
    binary = work / "verify"
    subprocess.run(
        [go, "build", "-o", str(binary), str(HERE / "verify.go")],
        check=True,
        env=env,
        cwd=work,
        timeout=300,
    )
    return binary


def _write_vectors(directory: Path) -> None:
    # Through the real command line, as an implementer of another language would run it.
    subprocess.run(
        [sys.executable, "-m", "protocol.vectors", str(directory)],
        check=True,
        cwd=HERE.parent.parent,
        timeout=120,
    )


def _run(binary: Path, directory: Path) -> tuple[int, dict[str, str]]:
    done = subprocess.run(
        [str(binary), str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    results: dict[str, str] = {}
    for line in done.stdout.splitlines():
        status, _, rest = line.partition(" ")
        results[rest.split(":")[0]] = status
    return done.returncode, results


def _expected_files() -> set[str]:
    return {
        name
        for name in vectors.build_vectors()
        if name.startswith(("checkpoint.", "proofs/", "consistency."))
    }


def test_go_accepts_every_vector(go_verifier: Path, tmp_path: Path) -> None:
    _write_vectors(tmp_path)
    code, results = _run(go_verifier, tmp_path)
    assert code == 0, results
    assert set(results) == _expected_files()
    assert set(results.values()) == {"OK"}


def test_vectors_are_deterministic() -> None:
    assert vectors.build_vectors() == vectors.build_vectors()


def _flip_base64_line(text: str, line_no: int) -> str:
    lines = text.split("\n")
    raw = bytearray(base64.b64decode(lines[line_no]))
    raw[-1] ^= 1
    lines[line_no] = base64.b64encode(bytes(raw)).decode()
    return "\n".join(lines)


def _tamper_root(path: Path) -> None:
    path.write_text(_flip_base64_line(path.read_text(), 2))


def _tamper_entry(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))


def _tamper_proof_hash(path: Path) -> None:
    path.write_text(_flip_base64_line(path.read_text(), 2))  # the first hash, after "index"


def _tamper_consistency(path: Path) -> None:
    path.write_text(_flip_base64_line(path.read_text(), 0))


def _tamper_cosignature(path: Path) -> None:
    lines = path.read_text().split("\n")
    last = next(i for i in range(len(lines) - 1, -1, -1) if lines[i])
    name, blob = lines[last].rsplit(" ", 1)
    raw = bytearray(base64.b64decode(blob))
    raw[20] ^= 1  # inside the Ed25519 signature, after key id and timestamp
    lines[last] = f"{name} {base64.b64encode(bytes(raw)).decode()}"
    path.write_text("\n".join(lines))


@pytest.mark.parametrize(
    ("target", "tamper", "must_fail"),
    [
        ("checkpoint.8", _tamper_root, {"checkpoint.8"}),
        ("entries/7.bin", _tamper_entry, {"proofs/7.tlog-proof"}),
        ("proofs/12.tlog-proof", _tamper_proof_hash, {"proofs/12.tlog-proof"}),
        ("consistency.7.20", _tamper_consistency, {"consistency.7.20"}),
        ("checkpoint.20", _tamper_cosignature, {"checkpoint.20"}),
    ],
)
def test_go_rejects_tampered_vectors(
    go_verifier: Path, tmp_path: Path, target: str, tamper: object, must_fail: set[str]
) -> None:
    _write_vectors(tmp_path)
    assert callable(tamper)
    tamper(tmp_path / target)
    code, results = _run(go_verifier, tmp_path)
    assert code == 1
    failed = {name for name, status in results.items() if status == "FAIL"}
    assert must_fail <= failed
    # Only the tampered file and what depends on it fail; the rest still verifies.
    assert "proofs/0.tlog-proof" in results
    if target != "checkpoint.20":
        assert results["proofs/0.tlog-proof"] == "OK"


def test_python_rejects_what_go_rejects(tmp_path: Path) -> None:
    """The same tampering is caught by our own verifier (no Go needed)."""
    _write_vectors(tmp_path)
    verifier = Verifier.parse((tmp_path / "verifier.key").read_text())
    proof_path = tmp_path / "proofs/12.tlog-proof"
    entry = (tmp_path / "entries/12.bin").read_bytes()
    parse_tlog_proof(proof_path.read_bytes()).verify(entry, verifier.public)
    _tamper_proof_hash(proof_path)
    with pytest.raises(ProtocolError):
        parse_tlog_proof(proof_path.read_bytes()).verify(entry, verifier.public)


def test_documented_example_matches_the_vectors() -> None:
    """docs/protocol.md (signed notes and checkpoints) quotes these vector files; keep it true."""
    doc = (HERE.parent.parent / "docs/protocol.md").read_text()
    files = vectors.build_vectors()
    for name in ("verifier.key", "witness.key", "checkpoint.20", "proofs/13.tlog-proof"):
        for line in files[name].decode().splitlines():
            if line and not line.startswith("example.hashmesh/vectors"):
                assert f"    {line}\n" in doc, (name, line)
    assert files["consistency.8.13"].decode().strip() in doc
