"""A platform wired to its node: webhooks for every takedown that arrives (signed, delivered
despite the receiver failing at first and the node restarting), the events pull stream, and
Prometheus metrics. Real node processes and a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from node.app.procs import NodeGroup, NodeProcess
from node.credentials.secret_files import write_secret
from node.events.webhooks import verify_signature
from tests.cluster.support import api, consortium, md5_item, submit, wait_until

SECRET = "a-shared-secret-of-some-length"


class Receiver(ThreadingHTTPServer):
    def __init__(self, fail_first: int) -> None:
        super().__init__(("127.0.0.1", 0), Hook)
        self.fail_left = fail_first
        self.events: list[dict[str, Any]] = []
        self.bad_signatures = 0


class Hook(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if not verify_signature(SECRET.encode(), body, self.headers["X-Hashmesh-Signature"]):
            self.server.bad_signatures += 1
        if self.server.fail_left > 0:
            self.server.fail_left -= 1
            self.send_response(503)
        else:
            self.server.events.append(json.loads(body))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        """Quiet."""


def test_webhooks_events_and_metrics_of_a_running_node(tmp_path: Path) -> None:
    receiver = Receiver(fail_first=2)
    thread = threading.Thread(target=receiver.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    try:
        setup = consortium(tmp_path, 2, sync_interval_s=0.5, sync_jitter_s=0.1)
        origin, platform = setup.configs
        write_secret(platform.directory / "keys" / "webhook.secret", SECRET)
        (platform.directory / "hashmesh.toml").write_text(
            (platform.directory / "hashmesh.toml").read_text()
            .replace('webhook_url = ""', f'webhook_url = "{url}"')
            .replace("webhook_max_backoff_s = 300.0", "webhook_max_backoff_s = 0.5")
        )  # fmt: skip
        node = NodeProcess(platform)
        with NodeGroup([origin]):
            node.start()
            try:
                first = [md5_item(f"w{i}") for i in range(3)]
                submit(origin, first)
                wait_until(
                    lambda: len({e["id"] for e in receiver.events}) >= 3, 30, "webhooks delivered"
                )
                node.stop()  # events arriving while the platform's node is down wait upstream
                submit(origin, [md5_item("while-down")])
                node.start()
                wait_until(
                    lambda: len({e["id"] for e in receiver.events}) >= 4, 30, "after restart"
                )
                feed = api(platform).call("GET", "/v1/events?after=0&wait=0")
                metrics = _get(platform.operator_url + "/metrics", platform)
            finally:
                node.stop()
    finally:
        receiver.shutdown()
        thread.join()
        receiver.server_close()
    assert receiver.bad_signatures == 0
    # Delivery is at least once (a restart may resend what was not yet marked delivered);
    # receivers deduplicate by id, and then every takedown is there once, in order.
    unique = {e["id"]: e for e in receiver.events}
    values = [unique[i]["value"] for i in sorted(unique)]
    assert values == [i["value"] for i in first] + [md5_item("while-down")["value"]]
    assert all(e["event"] == "add" and e["member"] == origin.member_id for e in unique.values())
    assert [e["value"] for e in feed["events"]] == values
    # Counters count since the process started: one entry arrived after the restart.
    assert f'hashmesh_entries_stored_total{{origin="{origin.origin}"}} 1.0' in metrics
    assert "hashmesh_arrival_delay_seconds_bucket" in metrics


def _get(url: str, config: Any) -> str:
    token = config.token_path.read_text().strip()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(response.read().decode())
