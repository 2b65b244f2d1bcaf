"""The hashmesh exchange's fetch logic and records against a stub operator API on 127.0.0.1
(the real node and the real threatexchange CLI: tests/cluster/test_threatexchange.py)."""

from __future__ import annotations

import json
import pickle
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from threatexchange.exchanges.auth import SignalExchangeAPIMissingAuthException
from threatexchange.exchanges.fetch_state import AggregateSignalOpinionCategory as Aggregate
from threatexchange.extensions.vpdq.vpdq import VPDQSignal
from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.utils import dataclass_json

from hashmesh_threatexchange import exchange
from hashmesh_threatexchange.exchange import (
    HashmeshCheckpoint,
    HashmeshCollabConfig,
    HashmeshCredentials,
    HashmeshExchangeError,
    HashmeshSignalExchangeAPI,
)
from hashmesh_threatexchange.records import RecordError, record_of
from protocol.signals import VpdqFrame, encode_vpdq

TYPES = [PdqSignal, VideoMD5Signal, VPDQSignal]
Answer = Callable[[str, Any], Any]


def sub(
    member: str, *, active: bool = True, standing: str | None = None, disputes: int = 0
) -> dict[str, Any]:
    return {
        "member": member,
        "log": f"o/{member}",
        "index": 3,
        "labels": ["terrorist-attack"],
        "incident": "inc-1",
        "active": active,
        "standing": standing,
        "disputes": [{"member": "m9", "log": "o/m9", "index": 1, "reason_code": "wrong-label"}]
        * disputes,
    }


def view(signal_type: str, value: str, *subs: dict[str, Any]) -> dict[str, Any]:
    active = any(s["active"] for s in subs)
    return {"signal_type": signal_type, "value": value, "active": active, "submissions": list(subs)}


PDQ_A, PDQ_B, PDQ_C = "a" * 64, "b" * 64, "c" * 64


class StubNode:
    """An operator API answering from the test's functions; it notes every path asked."""

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.events: Answer = lambda path, body: {}
        self.export: list[dict[str, Any]] = []
        self.lookup: dict[str, dict[str, Any]] = {}

    def answer(self, method: str, path: str, body: Any) -> tuple[str, bytes]:
        self.asked.append(path)
        if path == "/v1/status":
            return "application/json", json.dumps({"member_id": "m1"}).encode()
        if path.startswith("/v1/events"):
            return "application/json", json.dumps(self.events(path, body)).encode()
        if path.startswith("/v1/export"):
            lines = [json.dumps(x) for x in self.export]
            return "application/x-ndjson", "\n".join([*lines, ""]).encode()
        results = [self.lookup[h["value"]] for h in body["hashes"]]
        return "application/json", json.dumps({"results": results}).encode()


@pytest.fixture
def node() -> Iterator[tuple[StubNode, str]]:
    stub = StubNode()

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str) -> None:
            assert self.headers["Authorization"] == "Bearer tok"
            size = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(size)) if size else None
            kind, data = stub.answer(method, self.path, body)
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._reply("GET")

        def do_POST(self) -> None:
            self._reply("POST")

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def api_for(url: str) -> HashmeshSignalExchangeAPI:
    collab = HashmeshCollabConfig(name="HASHMESH", operator_url=url)
    return HashmeshSignalExchangeAPI.for_collab(collab, HashmeshCredentials("tok"))


def end(count: int, exported_ms: int = 1_700_000_500_000) -> dict[str, Any]:
    return {"end": True, "count": count, "exported_ms": exported_ms}


def test_a_first_fetch_takes_the_export_then_the_events_after_the_id_noted_before_it(
    node: tuple[StubNode, str],
) -> None:
    stub, url = node
    views = [
        view("pdq", PDQ_A, sub("m2")),
        view("pdq", PDQ_B, sub("m2", active=False)),  # withdrawn: comes as a deletion
        view("md5", "d" * 32, sub("m2")),  # threatexchange has no file md5
    ]
    stub.export = [*views, end(3)]
    later = {"id": 6, "event": "add", "signal_type": "pdq", "value": PDQ_C}
    later["received_ms"] = 1_700_000_600_000

    def events(path: str, body: Any) -> dict[str, Any]:
        if "after=0" in path:
            return {"events": [], "cursor": 0, "oldest": 1, "latest": 5}
        if "after=5" in path:
            return {"events": [later], "cursor": 6, "oldest": 1, "latest": 6}
        return {"events": [], "cursor": 6, "oldest": 1, "latest": 6}

    stub.events = events
    stub.lookup = {PDQ_C: view("pdq", PDQ_C, sub("m1"))}
    first, second = api_for(url).fetch_iter(TYPES, None)
    assert set(first.updates) == {("pdq", PDQ_A), ("pdq", PDQ_B)}
    assert first.updates["pdq", PDQ_B] is None
    assert first.checkpoint == HashmeshCheckpoint(5, 1_700_000_500_000)
    record = second.updates["pdq", PDQ_C]
    assert record is not None and record.opinions[0].is_mine
    assert second.checkpoint == HashmeshCheckpoint(6, 1_700_000_600_000)
    assert "/v1/export?include_withdrawn=1&types=pdq,vpdq,video_md5" in stub.asked


def test_a_checkpoint_the_feed_no_longer_holds_starts_over_from_the_export(
    node: tuple[StubNode, str],
) -> None:
    stub, url = node
    stub.export = [view("pdq", PDQ_A, sub("m2", active=False)), end(1)]
    stub.events = lambda path, body: {"events": [], "cursor": 0, "oldest": 10, "latest": 12}
    deltas = list(api_for(url).fetch_iter(TYPES, HashmeshCheckpoint(2, 1_700_000_000_000)))
    assert any(p.startswith("/v1/export") for p in stub.asked)
    assert deltas[0].updates == {("pdq", PDQ_A): None}
    assert deltas[-1].checkpoint == HashmeshCheckpoint(12, 1_700_000_500_000)

    # A node whose event log started afresh (its latest id below ours) is the same case.
    stub.asked.clear()
    stub.events = lambda path, body: {"events": [], "cursor": 0, "oldest": 1, "latest": 1}
    deltas = list(api_for(url).fetch_iter(TYPES, HashmeshCheckpoint(40, 1_700_000_000_000)))
    assert any(p.startswith("/v1/export") for p in stub.asked)
    assert deltas[-1].checkpoint.event_id == 1

    # So is one whose new event log has already passed our id: its feed id differs.
    stub.asked.clear()
    stub.events = lambda path, body: {"events": [], "oldest": 1, "latest": 90, "feed": "new"}
    old = HashmeshCheckpoint(40, 1_700_000_000_000, feed="old")
    deltas = list(api_for(url).fetch_iter(TYPES, old))
    assert any(p.startswith("/v1/export") for p in stub.asked)
    assert (deltas[-1].checkpoint.event_id, deltas[-1].checkpoint.feed) == (90, "new")


def test_an_export_cut_short_fails_the_fetch_and_its_partial_checkpoint_is_stale(
    node: tuple[StubNode, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    stub, url = node
    monkeypatch.setattr(exchange, "EXPORT_BATCH", 2)
    stub.export = [view("pdq", v * 64, sub("m2")) for v in "abc"] + [end(4)]
    stub.events = lambda path, body: {"events": [], "cursor": 0, "oldest": 1, "latest": 0}
    fetch = api_for(url).fetch_iter(TYPES, None)
    partial = next(fetch)
    assert len(partial.updates) == 2 and partial.checkpoint.is_stale()
    with pytest.raises(HashmeshExchangeError, match="cut short"):
        next(fetch)


def test_records_follow_the_consortiums_view() -> None:
    flagged = record_of(view("pdq", PDQ_A, sub("m2", standing="member-removed")), "m1")
    assert flagged is not None and flagged[1] is not None
    assert flagged[1].get_as_aggregate_opinion().category == Aggregate.INVESTIGATION_SEED
    disputed = record_of(view("pdq", PDQ_A, sub("m2", disputes=1), sub("m3")), "m9")
    assert disputed is not None and disputed[1] is not None
    opinions = disputed[1].opinions
    assert [(o.member, o.is_mine) for o in opinions] == [("m2", False), ("m9", True), ("m3", False)]
    assert disputed[1].get_as_aggregate_opinion().category == Aggregate.DISPUTED
    assert disputed[1].get_as_aggregate_opinion().tags == {"terrorist-attack"}
    assert str(disputed[1]) == "DISPUTED terrorist-attack (added by m2, m3)"
    assert record_of(view("pdq", PDQ_A, sub("m2", active=False)), "m1") == (("pdq", PDQ_A), None)
    assert record_of(view("sha256", "e" * 64, sub("m2")), "m1") is None
    vpdq = encode_vpdq([VpdqFrame(b"\x01" * 32, 80, 0, 1500)]).hex()
    vpdq_record = record_of(view("vpdq", vpdq, sub("m2")), "m1")
    assert vpdq_record is not None
    assert vpdq_record[0] == ("vpdq", json.dumps([f"{'01' * 32},80,1.500"]))
    VPDQSignal.validate_signal_str(vpdq_record[0][1])
    with pytest.raises(RecordError, match="lacks or misshapes"):
        record_of({"signal_type": "pdq", "value": PDQ_A}, "m1")


def test_the_token_comes_from_the_environment_or_a_file_and_its_absence_says_how_to_give_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("HASHMESH_OPERATOR_TOKEN", raising=False)
    monkeypatch.setattr(HashmeshCredentials, "FILE_NAME", str(tmp_path / "token"))
    collab = HashmeshCollabConfig(name="HASHMESH", operator_url="http://127.0.0.1:9")
    with pytest.raises(SignalExchangeAPIMissingAuthException) as missing:
        HashmeshSignalExchangeAPI.for_collab(collab)
    assert "HASHMESH_OPERATOR_TOKEN" in missing.value.pretty_str()
    (tmp_path / "token").write_text("from-file\n")
    assert HashmeshCredentials.get(HashmeshSignalExchangeAPI).token == "from-file"
    monkeypatch.setenv("HASHMESH_OPERATOR_TOKEN", "from-env")
    assert HashmeshCredentials.get(HashmeshSignalExchangeAPI).token == "from-env"


def test_the_config_checkpoint_and_credentials_survive_the_json_hma_stores_them_in() -> None:
    # HMA keeps collaborations, checkpoints and credentials as threatexchange's dataclass
    # JSON, and records pickled (as the threatexchange CLI does).
    config = dataclass_json.dataclass_load_dict(
        {"name": "HASHMESH", "api": "hashmesh", "enabled": True, "operator_url": "http://h:7401"},
        HashmeshCollabConfig,
    )
    assert config == HashmeshCollabConfig(name="HASHMESH", operator_url="http://h:7401")
    for value in (HashmeshCheckpoint(7, 1_700_000_000_000, feed="f"), HashmeshCredentials("t")):
        dumped = json.loads(json.dumps(dataclass_json.dataclass_dump_dict(value)))
        assert dataclass_json.dataclass_load_dict(dumped, type(value)) == value
    record = record_of(view("pdq", PDQ_A, sub("m2", disputes=1)), "m1")
    assert record is not None
    assert pickle.loads(pickle.dumps(record[1])) == record[1]  # our own bytes
