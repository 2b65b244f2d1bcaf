"""Files named on the command line (`submit --file`, `lookup --file`, `match --file`): folders
expanded recursively, every file hashed locally before anything is sent, then sent to the
operator API's batch endpoints a hundred files a request, so that a folder of takedowns costs
one start-up and a few requests, not one start-up a file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from node.cli.common import (
    EXIT_NOT_ACTIONABLE,
    EXIT_NOT_FOUND,
    EXIT_OK,
    UsageError,
    progress,
)
from node.errors import HashingError, NodeError, RequestError
from protocol.signals import value_text

if TYPE_CHECKING:
    from node.matching.hashing import FileHash

#: Files whose hashes go in one request to /v1/submit, /v1/lookup or /v1/match: a file has at
#: most five hashes, far under the operator API's 10,000 a request, and a failed request
#: leaves at most this many files to send again.
FILES_PER_REQUEST = 100
#: A hash value printed in full up to this many characters (a vPDQ runs to thousands).
SHOWN_VALUE = 80


@dataclass(frozen=True, slots=True)
class HashedFile:
    """One file named on the command line and its hashes as the operator API takes them."""

    path: str
    items: tuple[dict[str, str], ...]


def files_under(paths: list[Path]) -> list[Path]:
    """The files named, with every file under each directory named (sorted, recursive)."""
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.is_file()))
        else:
            out.append(path)
    return out


def hash_files(
    paths: list[Path], force: bool, command: str, both_pdq: bool = False
) -> list[HashedFile]:
    """Every file's hashes, all computed before any is sent: a file that cannot be hashed, or
    a low-quality PDQ without `force`, stops the command with nothing sent. With `both_pdq`
    (match) a pdq item also carries python-threatexchange's hash of the image where it
    differs; a submission shares only the RGB hash (docs/matching.md, "Two PDQ
    conventions")."""
    if not paths:
        return []  # hashes given as TYPE:VALUE only: no need to load the hashers (numpy, Pillow)
    from node.matching.hashing import LOW_QUALITY, hash_file

    files = files_under(paths)
    out: list[HashedFile] = []
    for done, path in enumerate(files, 1):
        try:
            hashed = hash_file(path)
        except HashingError as e:  # a file named on the command line: a usage error
            raise UsageError(f"{e}; nothing was sent") from e
        for h in hashed:
            if h.quality is not None and h.quality < LOW_QUALITY and not force:
                raise UsageError(
                    f"{path}: PDQ quality {h.quality} is below {LOW_QUALITY}; such hashes match "
                    "unrelated images (use --force to send them anyway); nothing was sent"
                )
        items = tuple(_item(h, both_pdq) for h in hashed)
        out.append(HashedFile(str(path), items))
        if len(files) > 1:
            progress(done, len(files), "files hashed", command)
    return out


def _item(h: FileHash, both_pdq: bool) -> dict[str, str]:
    item = {"signal_type": h.signal_type, "value": value_text(h.signal_type, h.value)}
    if both_pdq and h.threatexchange_value is not None:
        item["threatexchange_value"] = h.threatexchange_value.hex()
    return item


def in_batches(files: list[HashedFile]) -> Iterator[list[HashedFile]]:
    for start in range(0, len(files), FILES_PER_REQUEST):
        yield files[start : start + FILES_PER_REQUEST]


@dataclass(frozen=True, slots=True)
class Submitted:
    """Entries the node acknowledged for one file (or, with no file, the TYPE:VALUE
    arguments), in the order of their items."""

    file: str | None
    items: tuple[dict[str, Any], ...]
    entries: list[dict[str, Any]]


def submit_in_batches(
    send: Callable[[list[dict[str, Any]], str], list[dict[str, Any]]],
    hashes: list[dict[str, str]],
    files: list[HashedFile],
    fields: dict[str, Any],
    key: str,
) -> Iterator[Submitted]:
    """Submit the TYPE:VALUE arguments in one request, then the files a hundred a request,
    each item with `fields` (labels, incident, reference); `send(items, idempotency_key)`
    answers each request's entries. Each request has its own Idempotency-Key derived from
    the run's `key`, so a rerun with the same key adds only what did not get through."""
    groups: list[list[tuple[str | None, tuple[dict[str, Any], ...]]]] = []
    if hashes:
        groups.append([(None, tuple({**h, **fields} for h in hashes))])
    for batch in in_batches(files):
        groups.append([(f.path, tuple({**i, **fields} for i in f.items)) for f in batch])
    sent_files = 0
    for number, requests in enumerate(groups):
        items = [item for _, file_items in requests for item in file_items]
        try:
            entries = send(items, key if len(groups) == 1 else f"{key}.{number}")
        except NodeError as e:
            if number == 0:
                raise
            raise RequestError(
                f"{e}; {sent_files} of {len(files)} files were submitted; run the same command "
                f"with --idempotency-key {key} to add the rest without adding any twice"
            ) from e
        position = 0
        for path, file_items in requests:
            yield Submitted(path, file_items, entries[position : position + len(file_items)])
            position += len(file_items)
            sent_files += path is not None
        if len(files) > FILES_PER_REQUEST:
            progress(sent_files, len(files), "files submitted", "submit")


def lookup_in_batches(
    send: Callable[[list[dict[str, str]]], list[dict[str, Any]]],
    hashes: list[dict[str, str]],
    files: list[HashedFile],
    command: str,
) -> list[dict[str, Any]]:
    """Each query's result (lookup or match), the TYPE:VALUE arguments in one request, then
    the files' hashes a hundred files a request, each of those results naming its `file`."""
    results: list[dict[str, Any]] = []
    if hashes:
        results.extend(send(hashes))
    sent = 0
    for batch in in_batches(files):
        answered = iter(send([item for f in batch for item in f.items]))
        for f in batch:
            results.extend({"file": f.path, **next(answered)} for _ in f.items)
        sent += len(batch)
        if len(files) > FILES_PER_REQUEST:
            progress(sent, len(files), "files", command)
    return results


def hits_exit_code(results: list[dict[str, Any]]) -> int:
    """0 if the match policy says to act on some hit, 1 if nothing was found, 6 if every hit
    is one to review or ignore (retracted, disputed, flagged, from an untrusted member)."""
    hits = [m for r in results for m in r.get("matches", [r] if r["found"] else [])]
    if not hits:
        return EXIT_NOT_FOUND
    if any((h.get("decision") or {}).get("action") == "act" for h in hits):
        return EXIT_OK
    return EXIT_NOT_ACTIONABLE


def shown(signal_type: str, value: str) -> str:
    text = f"{signal_type}:{value}"
    return text if len(text) <= SHOWN_VALUE else text[: SHOWN_VALUE - 3] + "..."
