"""A small synchronous client of a node's operator API, for the CLI (stdlib urllib only)."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from node.credentials.secret_files import read_secret
from node.errors import NodeError, RequestError

if TYPE_CHECKING:
    from node.config import NodeConfig


class NodeUnreachableError(NodeError):
    """The node's operator API did not answer."""


class NodeUnavailableError(RequestError):
    """The node answered 503: its store failed, and a write's outcome may be unknown."""


class OperatorClient:
    def __init__(self, base_url: str, token: str, timeout_s: float = 30.0) -> None:
        self._base = base_url.rstrip("/")
        self._token = token
        self._timeout = timeout_s

    @classmethod
    def for_node(cls, config: NodeConfig) -> OperatorClient:
        return cls(config.operator_url, read_secret(config.token_path))

    def lines(self, path: str) -> Iterator[bytes]:
        """GET a streamed JSON-lines answer, one line at a time as it arrives."""
        request = urllib.request.Request(self._base + path)  # noqa: S310  # the node's own URL
        request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                yield from response
        except urllib.error.HTTPError as e:
            with e:
                raise RequestError(f"GET {path}: {e.code} {e.read()[:300]!r}") from e
        except (urllib.error.URLError, OSError) as e:
            raise NodeUnreachableError(f"cannot reach the node at {self._base}: {e}") from e

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        raw: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        request = urllib.request.Request(  # noqa: S310  # the URL is the node's own, from config
            self._base + path, data=data, method=method, headers=dict(headers or {})
        )
        request.add_header("Authorization", f"Bearer {self._token}")
        if raw is not None:
            request.add_header("Content-Type", "application/msgpack")
        elif data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                payload = response.read()
                if response.headers.get_content_type() == "application/json":
                    return json.loads(payload)
                return payload
        except urllib.error.HTTPError as e:
            with e:
                detail = e.read().decode(errors="replace")
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("detail", detail)
            error = NodeUnavailableError if e.code == 503 else RequestError
            raise error(f"{method} {path}: {e.code} {detail}") from e
        except (urllib.error.URLError, OSError) as e:
            raise NodeUnreachableError(f"cannot reach the node at {self._base}: {e}") from e
