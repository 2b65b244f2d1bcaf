"""python-threatexchange's SignalExchangeAPI for a hashmesh node, through its operator API only.

A fetch without a complete checkpoint takes the node's export (`GET /v1/export`, withdrawn
hashes included so that they come as deletions), having first noted the newest event id; it
then follows the events feed (`GET /v1/events`) from that id. For each page of events it looks
the hashes they touch up (`POST /v1/lookup`) and gives their records as the consortium sees
them now (hashmesh_threatexchange/records.py). The checkpoint is the last event id taken and
the time of the newest event taken.

If the feed no longer holds the events after the checkpoint (the node keeps the newest
100,000), or the node's event log was started afresh (its `feed` id changed, or its newest id
is below the checkpoint's), the fetch starts over with an export,
which replaces every record the collaboration holds. A checkpoint taken part way through an
export is stale: threatexchange's CLI and HMA then fetch from scratch.
"""

# No `from __future__ import annotations`: threatexchange's CLI builds its options from the
# config dataclass's field types at run time, and needs them as types, not strings.
import json
import logging
import typing as t
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field

from threatexchange.exchanges import auth
from threatexchange.exchanges.collab_config import CollaborationConfigWithDefaults
from threatexchange.exchanges.fetch_state import FetchCheckpointBase, FetchDelta
from threatexchange.exchanges.signal_exchange_api import SignalExchangeAPIWithSimpleUpdates
from threatexchange.signal_type.signal_base import SignalType

from hashmesh_threatexchange.records import (
    HashmeshSignalMetadata,
    RecordError,
    RecordKey,
    record_of,
)
from node.cli.operator_client import OperatorClient
from node.errors import NodeError
from protocol.signal_names import OURS_TO_TE

log = logging.getLogger(__name__)

API_NAME = "hashmesh"
#: Records a delta of the export carries (threatexchange's stores commit per delta or so).
EXPORT_BATCH = 1000
#: Events read per page (the node gives at most 1000); their hashes are one lookup.
EVENTS_PAGE = 1000


class HashmeshExchangeError(Exception):
    """The node could not be reached, refused us, or answered what we cannot follow."""


@dataclass
class _RequiredFields:
    operator_url: str = field(
        metadata={"help": "the hashmesh node's operator API, e.g. http://127.0.0.1:7401"}
    )


@dataclass
class HashmeshCollabConfig(CollaborationConfigWithDefaults, _RequiredFields):
    """A collaboration: the consortium's hashes as one member's node holds them."""

    api: str = field(init=False, default=API_NAME)


@dataclass
class HashmeshCredentials(auth.CredentialHelper):
    """The node's operator token (its `keys/operator.token`)."""

    ENV_VARIABLE: t.ClassVar[str] = "HASHMESH_OPERATOR_TOKEN"
    FILE_NAME: t.ClassVar[str] = "~/.hashmesh_operator_token"

    token: str = field(metadata={"help": "the node's operator token"})

    @classmethod
    def _from_str(cls, s: str) -> "HashmeshCredentials":
        return cls(s.strip())

    def _are_valid(self) -> bool:
        return bool(self.token)


@dataclass
class HashmeshCheckpoint(FetchCheckpointBase):
    """How far a fetch got: events up to `event_id` are in the fetched state."""

    event_id: int
    event_ms: int  # when the newest event taken was recorded (or the export made), ms
    complete: bool = True  # False part way through an export
    feed: str = ""  # the node's event log the id is of ("": not known yet)

    def is_stale(self) -> bool:
        return not self.complete

    def get_progress_timestamp(self) -> int | None:
        return self.event_ms // 1000 if self.event_ms > 0 else None


Delta = FetchDelta[RecordKey, HashmeshSignalMetadata, HashmeshCheckpoint]


class HashmeshSignalExchangeAPI(
    auth.SignalExchangeWithAuth[HashmeshCollabConfig, HashmeshCredentials],
    SignalExchangeAPIWithSimpleUpdates[
        HashmeshCollabConfig, HashmeshCheckpoint, HashmeshSignalMetadata
    ],
):
    """Fetches the consortium's hashes from a hashmesh node (read only)."""

    def __init__(self, collab: HashmeshCollabConfig, client: OperatorClient) -> None:
        self.collab = collab
        self._client = client
        self._me: str | None = None

    @classmethod
    def get_name(cls) -> str:
        return API_NAME

    @staticmethod
    def get_config_cls() -> type[HashmeshCollabConfig]:
        return HashmeshCollabConfig

    @staticmethod
    def get_checkpoint_cls() -> type[HashmeshCheckpoint]:
        return HashmeshCheckpoint

    @staticmethod
    def get_record_cls() -> type[HashmeshSignalMetadata]:
        return HashmeshSignalMetadata

    @staticmethod
    def get_credential_cls() -> type[HashmeshCredentials]:
        return HashmeshCredentials

    @classmethod
    def for_collab(
        cls, collab: HashmeshCollabConfig, credentials: HashmeshCredentials | None = None
    ) -> "HashmeshSignalExchangeAPI":
        credentials = credentials or HashmeshCredentials.get(cls)
        return cls(collab, OperatorClient(collab.operator_url, credentials.token))

    def fetch_iter(
        self,
        supported_signal_types: Sequence[type[SignalType]],
        checkpoint: HashmeshCheckpoint | None,
    ) -> Iterator[Delta]:
        names = {s.get_name() for s in supported_signal_types}
        types = tuple(ours for ours, theirs in OURS_TO_TE.items() if theirs in names)
        if not types:
            yield FetchDelta({}, HashmeshCheckpoint(0, 0, complete=False))
            return
        if checkpoint is None or not checkpoint.complete:
            since = 0 if checkpoint is None else checkpoint.event_ms
            checkpoint = yield from self._snapshot(types, since)
        yield from self._follow(types, checkpoint)

    def _snapshot(
        self, types: tuple[str, ...], since_ms: int
    ) -> Generator[Delta, None, HashmeshCheckpoint]:
        """Every hash of `types` the node holds, withdrawn ones as deletions; the events
        recorded from the moment the export is asked for are followed after it."""
        head = self._poll(0, 1)
        cursor, feed = _int(head, "latest"), str(head.get("feed", ""))
        log.info("hashmesh: taking the node's export; events after %d follow", cursor)
        path = f"/v1/export?include_withdrawn=1&types={','.join(types)}"
        updates: dict[RecordKey, HashmeshSignalMetadata | None] = {}
        received, end = 0, None
        for line in self._lines(path):
            item = _json_object(line)
            if item.get("end") is True:
                end = item
                break
            received += 1
            self._add(updates, item)
            if len(updates) >= EXPORT_BATCH:
                partial = HashmeshCheckpoint(cursor, since_ms, complete=False, feed=feed)
                yield FetchDelta(updates, partial)
                updates = {}
        if end is None or end.get("count") != received:
            raise HashmeshExchangeError("the node's export was cut short")
        done = HashmeshCheckpoint(cursor, max(since_ms, _int(end, "exported_ms")), feed=feed)
        yield FetchDelta(updates, done)
        return done

    def _follow(self, types: tuple[str, ...], checkpoint: HashmeshCheckpoint) -> Iterator[Delta]:
        """The events after the checkpoint, a page a delta, until the node has no more."""
        while True:
            answer = self._poll(checkpoint.event_id, EVENTS_PAGE)
            oldest, latest = _int(answer, "oldest"), _int(answer, "latest")
            feed = str(answer.get("feed", ""))
            renumbered = bool(checkpoint.feed and feed and feed != checkpoint.feed)
            if renumbered or oldest - 1 > checkpoint.event_id or latest < checkpoint.event_id:
                log.warning(
                    "hashmesh: the node no longer holds the events after %d (it holds %d..%d%s);"
                    " starting over from its export",
                    checkpoint.event_id,
                    oldest,
                    latest,
                    " of a new event log" if renumbered else "",
                )
                checkpoint = yield from self._snapshot(types, checkpoint.event_ms)
                continue
            events = answer.get("events")
            if not isinstance(events, list):
                raise HashmeshExchangeError("the node's events answer has no list of events")
            if not events:
                return
            log.info("hashmesh: %d event(s) after %d", len(events), checkpoint.event_id)
            touched = dict.fromkeys(
                (e["signal_type"], e["value"])
                for e in events
                if e.get("signal_type") in types and isinstance(e.get("value"), str)
            )
            updates: dict[RecordKey, HashmeshSignalMetadata | None] = {}
            if touched:
                hashes = [{"signal_type": s, "value": v} for s, v in touched]
                looked_up = self._call("POST", "/v1/lookup", {"hashes": hashes})
                results = looked_up.get("results") if isinstance(looked_up, dict) else None
                if not isinstance(results, list):
                    raise HashmeshExchangeError("the node's lookup answer has no results")
                for view in results:
                    self._add(updates, view)
            newest = max([checkpoint.event_ms, *(_int(e, "received_ms") for e in events)])
            checkpoint = HashmeshCheckpoint(_int(answer, "cursor"), newest, feed=feed)
            yield FetchDelta(updates, checkpoint)

    def _add(self, updates: dict[RecordKey, HashmeshSignalMetadata | None], view: t.Any) -> None:
        try:
            record = record_of(view, self._member())
        except RecordError as e:
            raise HashmeshExchangeError(str(e)) from e
        if record is not None:
            updates[record[0]] = record[1]

    def _member(self) -> str | None:
        """This node's member id (threatexchange's `is_mine` for its own adds and disputes)."""
        if self._me is None:
            self._me = str(self._call("GET", "/v1/status")["member_id"])
        return self._me

    def _poll(self, after: int, limit: int) -> dict[str, t.Any]:
        answer = self._call("GET", f"/v1/events?after={after}&limit={limit}")
        if not isinstance(answer, dict):
            raise HashmeshExchangeError("the node's events answer is not a JSON object")
        return answer

    def _call(self, method: str, path: str, body: t.Any = None) -> t.Any:
        try:
            return self._client.call(method, path, body)
        except NodeError as e:
            raise HashmeshExchangeError(str(e)) from e

    def _lines(self, path: str) -> Iterator[bytes]:
        try:
            yield from self._client.lines(path)
        except NodeError as e:
            raise HashmeshExchangeError(str(e)) from e


def _json_object(line: bytes) -> dict[str, t.Any]:
    try:
        item = json.loads(line)
    except ValueError as e:
        raise HashmeshExchangeError(f"the node's export ends mid-line: {e}") from e
    if not isinstance(item, dict):
        raise HashmeshExchangeError("a line of the node's export is not a JSON object")
    return item


def _int(answer: dict[str, t.Any], name: str) -> int:
    value = answer.get(name)
    if not isinstance(value, int):
        raise HashmeshExchangeError(
            f"the node's answer has no {name}: is it older than this exchange?"
        )
    return value
