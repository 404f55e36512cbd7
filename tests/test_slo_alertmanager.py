"""aisre's SLO alerts through a real Alertmanager (Debian's prometheus-alertmanager): what it sends its
webhook receiver must be what aisre's own WebhookNotifier sends, field for field, fingerprint included."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from aisre.slo import AlertmanagerClient, webhook_payload
from tests.conftest import free_port
from tests.test_slo_alerts import firing_then_resolved

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(BINARY is None, reason="prometheus-alertmanager is not installed (apt)")


class _Receiver(BaseHTTPRequestHandler):
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s  # wide: only a bound on a broken setup, never on speed
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/-/ready", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"bodies": []})
    receiver = HTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        "route:\n  receiver: aisre-test\n  group_by: [alertname, sloth_id]\n"
        "  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        "receivers:\n  - name: aisre-test\n    webhook_configs:\n"
        f"      - url: http://127.0.0.1:{receiver.server_address[1]}/hook\n        send_resolved: true\n"
    )
    port = free_port()
    assert BINARY is not None
    process = subprocess.Popen(
        [
            BINARY,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(url) or process.poll() is not None, "alertmanager to start")
        assert process.poll() is None, "alertmanager exited at start"
        yield url, handler
    finally:
        process.terminate()
        process.wait(timeout=30)
        receiver.shutdown()
        receiver.server_close()


def test_alertmanager_forwards_aisre_alerts_as_aisre_formats_them(alertmanager: tuple[str, type[_Receiver]]) -> None:
    url, handler = alertmanager
    _, fired, resolved = firing_then_resolved()
    client = AlertmanagerClient(url, timeout_s=10)
    assert client.push(fired), client.last_error
    # With group_wait 0s Alertmanager may flush the group before it has taken in every alert of the push (seen on
    # a busy machine: a first notification with the page alone); its next flush, a group_interval later, holds
    # the whole group, which is what aisre's payload is compared with.
    wait_for(lambda: any(len(b["alerts"]) == len(fired) for b in handler.bodies), "a firing notification of all")
    theirs = next(b for b in handler.bodies if len(b["alerts"]) == len(fired))
    ours = webhook_payload(fired, receiver="aisre-test", external_url=theirs["externalURL"])
    assert set(theirs) == set(ours)
    for key in ("version", "groupKey", "status", "receiver", "groupLabels", "commonLabels", "commonAnnotations"):
        assert theirs[key] == ours[key], key
    by_fingerprint = {a["fingerprint"]: a for a in theirs["alerts"]}
    assert set(by_fingerprint) == {a["fingerprint"] for a in ours["alerts"]}  # Prometheus's label fingerprint
    for alert in ours["alerts"]:
        other = by_fingerprint[alert["fingerprint"]]
        assert set(other) == set(alert)
        assert (other["status"], other["labels"], other["annotations"]) == (
            alert["status"],
            alert["labels"],
            alert["annotations"],
        )
        assert other["startsAt"].replace(".000", "") == alert["startsAt"]

    assert client.push(resolved), client.last_error
    wait_for(lambda: any(b["status"] == "resolved" for b in handler.bodies), "the resolved notification")
    done = next(b for b in handler.bodies if b["status"] == "resolved")
    ours = webhook_payload(resolved, receiver="aisre-test")
    assert {a["fingerprint"]: a["endsAt"] for a in done["alerts"]} == {
        a["fingerprint"]: a["endsAt"] for a in ours["alerts"]
    }
