"""Hashing uploads for the platform's own systems: POST files to the node's operator API (on
the platform's side of the network: content never leaves the platform) and get their hashes,
or have them matched against the consortium at once.

  POST /v1/hash           multipart/form-data, one or more files -> their hashes
  POST /v1/match/files    the same, then every match of every hash (as /v1/match answers)

Each file is streamed to a temporary file under the node's data directory (bounded by
`max_upload_bytes`), hashed in a worker thread (vPDQ of a video takes a while) and deleted.
The hashing libraries (Pillow, pdqhash, vpdq with FFmpeg's libraries) are imported by that
thread at the first upload: a node nobody uploads to does not hold them (about 30 MB
resident).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from node.errors import HashingError, RequestError
from node.http.match_api import Matching, match_results
from protocol.view import HashView

if TYPE_CHECKING:
    from node.matching.hashing import FileHash

MAX_FILES = 100


def _hash_file(path: Path) -> list[FileHash]:
    """node.matching.hashing's `hash_file`, imported on first use (see the docstring)."""
    from node.matching.hashing import hash_file  # noqa: PLC0415  # why: the docstring

    return hash_file(path)


async def _hash_uploads(
    request: web.Request, directory: Path, max_bytes: int
) -> list[dict[str, Any]]:
    if not request.content_type.startswith("multipart/"):
        raise RequestError("send the files as multipart/form-data")
    reader = await request.multipart()
    out: list[dict[str, Any]] = []
    await asyncio.to_thread(directory.mkdir, parents=True, exist_ok=True)
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise RequestError("nested multipart bodies are not supported")
        if len(out) >= MAX_FILES:
            raise RequestError(f"at most {MAX_FILES} files per request")
        name = part.filename or part.name or f"file{len(out)}"
        fd, tmp = tempfile.mkstemp(dir=directory, prefix="upload-")
        try:
            size = 0
            with os.fdopen(fd, "wb") as f:
                while chunk := await part.read_chunk(1 << 20):
                    size += len(chunk)
                    if size > max_bytes:
                        raise RequestError(f"{name}: larger than {max_bytes} bytes")
                    await asyncio.to_thread(f.write, chunk)
            try:
                hashes = await asyncio.to_thread(_hash_file, Path(tmp))
            except HashingError as e:
                raise RequestError(f"{name}: {e}") from e
        finally:
            with contextlib.suppress(FileNotFoundError):
                await asyncio.to_thread(os.unlink, tmp)
        out.append(
            {
                "file": name,
                "bytes": size,
                "hashes": [h.to_json() for h in hashes],
            }
        )
    if not out:
        raise RequestError("no file in the request")
    return out


def match_query(h: dict[str, Any]) -> dict[str, Any]:
    """The /v1/match query for a hash as `FileHash.to_json` shows it: both PDQ hashes if it
    has two."""
    query = {"signal_type": h["signal_type"], "value": h["value"]}
    if "threatexchange_value" in h:
        query["threatexchange_value"] = h["threatexchange_value"]
    return query


def hash_routes(
    matching: Matching,
    directory: Path,
    max_bytes: int,
    on_view: Callable[[HashView], None] | None = None,
) -> list[web.RouteDef]:
    """The hashing routes; `on_view` is given every view a file's hashes matched (the node's
    review queue)."""

    async def hash_files(request: web.Request) -> web.Response:
        return web.json_response({"files": await _hash_uploads(request, directory, max_bytes)})

    async def match_files(request: web.Request) -> web.Response:
        files = await _hash_uploads(request, directory, max_bytes)
        for f in files:
            queries = [match_query(h) for h in f["hashes"]]
            f["results"] = await match_results(matching, queries, on_view)
            f["found"] = any(r["found"] for r in f["results"])
        return web.json_response({"files": files})

    return [web.post("/v1/hash", hash_files), web.post("/v1/match/files", match_files)]
