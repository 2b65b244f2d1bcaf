"""A node's configuration: a TOML file (`hashmesh.toml`) beside the node's keys and data.

Every setting has a default; `NodeConfig.fields_doc()` is the reference that docs/operator.md
shows. Paths in the file are relative to the file's directory.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from node.errors import ConfigError

CONFIG_NAME = "hashmesh.toml"


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Settings of one member's node."""

    member_id: str = field(metadata={"doc": "this member's id in the roster"})
    origin: str = field(metadata={"doc": "this member's log origin (the checkpoint key name)"})
    directory: Path = field(default=Path("."), metadata={"doc": "where keys and data live"})
    peer_host: str = field(default="127.0.0.1", metadata={"doc": "address of the peer API"})
    peer_port: int = field(default=7400, metadata={"doc": "port of the peer API"})
    operator_host: str = field(
        default="127.0.0.1", metadata={"doc": "address of the operator API (keep it local)"}
    )
    operator_port: int = field(default=7401, metadata={"doc": "port of the operator API"})
    store: str = field(
        default="sqlite", metadata={"doc": "'sqlite' (data/hashmesh.db) or a postgresql:// URL"}
    )
    sync_interval_s: float = field(
        default=30.0, metadata={"doc": "seconds between anti-entropy pulls from every peer"}
    )
    sync_jitter_s: float = field(default=3.0, metadata={"doc": "random delay added to each pull"})
    push: bool = field(default=True, metadata={"doc": "push new entries to peers at once"})
    relay: bool = field(default=True, metadata={"doc": "pass on what we learn from peers"})
    relay_fanout: int = field(
        default=3, metadata={"doc": "relay what we learn to this many random peers (0: to all)"}
    )
    checkpoint_batch_entries: int = field(
        default=256, metadata={"doc": "sign a checkpoint after this many new entries..."}
    )
    checkpoint_batch_ms: int = field(
        default=20, metadata={"doc": "...or this many milliseconds after the first unsigned one"}
    )
    page_size: int = field(default=4000, metadata={"doc": "entries per page served and fetched"})
    max_body_bytes: int = field(
        default=16 * 1024 * 1024, metadata={"doc": "largest request or response body accepted"}
    )
    max_upload_bytes: int = field(
        default=1 << 30, metadata={"doc": "largest file the operator API hashes (POST /v1/hash)"}
    )
    peer_timeout_s: float = field(default=10.0, metadata={"doc": "timeout of one peer request"})
    peer_header_timeout_s: float = field(
        default=20.0,
        metadata={
            "doc": "peer API: seconds a connection has to send a request's headers, from its"
            " opening or the first byte of a request after the previous one"
        },
    )
    peer_keepalive_s: float = field(
        # Longer than a sync round (sync_interval_s + sync_jitter_s) so that a peer link stays
        # open between rounds: each new connection costs a round trip before its request.
        default=60.0,
        metadata={
            "doc": "seconds an idle peer connection stays open after a request: the peer API"
            " closes it then, this node's client 5 s sooner"
        },
    )
    peer_max_connections: int = field(
        default=1024, metadata={"doc": "peer API: most open connections; more are refused (503)"}
    )
    peer_max_connections_per_address: int = field(
        # A member's node holds a few connections to a peer (its pusher, a sync round with two
        # pages fetched ahead, a catch-up): 256 admits some 30 members behind one NAT or proxy,
        # while one address still cannot take more than a quarter of peer_max_connections.
        default=256,
        metadata={
            "doc": "peer API: most open connections from one address (members behind one NAT"
            " or proxy share it); more are refused"
        },
    )
    act_below_disputes: int = field(
        default=1,
        metadata={"doc": "match policy: act on a hash disputed by fewer than this many members"},
    )
    act_agreement: int = field(
        default=1,
        metadata={
            "doc": "match policy: act on a hash only when at least this many members stand"
            " behind it (added, confirmed or corroborated it); the roster's act_agreement"
            " applies if it is more"
        },
    )
    trusted_members: str = field(
        default="",
        metadata={"doc": "match policy: comma-separated member ids to act on ('' = every member)"},
    )
    webhook_url: str = field(
        default="", metadata={"doc": "POST every new, retracted or disputed hash here ('' = off)"}
    )
    webhook_secret_file: str = field(
        default="keys/webhook.secret",
        metadata={"doc": "file with the webhook's HMAC secret, relative to the node's directory"},
    )
    webhook_max_backoff_s: float = field(
        default=300.0, metadata={"doc": "longest wait between two attempts at a webhook event"}
    )
    roster_warn_days: float = field(
        default=14.0, metadata={"doc": "warn when the roster expires within this many days"}
    )
    disk_alert_free_percent: float = field(
        default=5.0,
        metadata={"doc": "alert when the data directory's disk has less than this % free..."},
    )
    disk_alert_free_mib: float = field(
        default=256.0, metadata={"doc": "...or less than this many MiB, whichever is more"}
    )
    malloc_mmap_threshold_kib: int = field(
        default=256,
        metadata={
            "doc": "glibc's mmap threshold for the node's process, KiB: low hands a catch-up's"
            " large buffers back to the system when freed; higher keeps more large buffers in"
            " the heap for reuse, for memory that stays with the process (0: glibc's adaptive"
            " threshold); see docs/performance.md"
        },
    )

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def roster_path(self) -> Path:
        return self.directory / "roster.bin"

    @property
    def checkpoint_key_path(self) -> Path:
        return self.directory / "keys" / "checkpoint.key"

    @property
    def node_key_path(self) -> Path:
        return self.directory / "keys" / "node.key"

    @property
    def token_path(self) -> Path:
        return self.directory / "keys" / "operator.token"

    @property
    def operator_url(self) -> str:
        host = f"[{self.operator_host}]" if ":" in self.operator_host else self.operator_host
        return f"http://{host}:{self.operator_port}"

    @classmethod
    def fields_doc(cls) -> list[tuple[str, str, str]]:
        """(name, default, description) of every setting."""
        out = []
        for f in dataclasses.fields(cls):
            if f.name == "directory":
                continue
            default = "(required)" if f.default is dataclasses.MISSING else repr(f.default)
            out.append((f.name, default, str(f.metadata.get("doc", ""))))
        return out

    def to_toml(self) -> str:
        settings = {
            f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "directory"
        }
        header = "# hashmesh node configuration; see docs/operator.md for every setting\n"
        return header + tomli_w.dumps(settings)

    def save(self) -> Path:
        path = self.directory / CONFIG_NAME
        path.write_text(self.to_toml())
        return path


def load_config(path: str | Path) -> NodeConfig:
    """Load a node's configuration from its file or its directory."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_NAME
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError as e:
        raise ConfigError(f"no configuration at {path} (run `hashmesh init` first)") from e
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(f"cannot read {path}: {e}") from e
    known = {f.name: f for f in dataclasses.fields(NodeConfig)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, raw in data.items():
        want = known[name].type
        ok = {
            "str": isinstance(raw, str),
            "int": isinstance(raw, int) and not isinstance(raw, bool),
            "float": isinstance(raw, int | float) and not isinstance(raw, bool),
            "bool": isinstance(raw, bool),
        }.get(str(want), True)
        if not ok:
            raise ConfigError(f"{path}: {name} should be a {want}, not {raw!r}")
        values[name] = float(raw) if want == "float" else raw
    for required in ("member_id", "origin"):
        if required not in values:
            raise ConfigError(f"{path}: {required} is required")
    return NodeConfig(directory=path.parent.resolve(), **values)


def read_roster(config: NodeConfig) -> bytes:
    """The roster the node was set up with (its pinned trust root)."""
    try:
        return config.roster_path.read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the roster {config.roster_path}: {e}") from e
