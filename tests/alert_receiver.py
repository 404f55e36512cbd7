"""A real HTTP receiver for alert notifications: records every JSON body POSTed to it (any path)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class AlertReceiver:
    """`ThreadingHTTPServer` on 127.0.0.1 (`port` 0 picks a free one); `bodies` in arrival order, with headers."""

    def __init__(self, port: int = 0, status: int = 200) -> None:
        self.bodies: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.status = status
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length))
                if received.status < 300:
                    received.bodies.append(body)
                    received.headers.append(dict(self.headers))
                self.send_response(received.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/alerts"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def statuses(self) -> list[tuple[str, str, str]]:
        """(status, alertname, sloth_severity) of every alert received, in order."""
        return [
            (a["status"], a["labels"]["alertname"], a["labels"].get("sloth_severity", ""))
            for body in self.bodies
            for a in body["alerts"]
        ]

    def wait_for(self, status: str, severity: str = "page", timeout_s: float = 60.0) -> dict[str, Any]:
        """The first alert of `status` and `severity`; fails after `timeout_s` (generous: CI is busy)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for body in list(self.bodies):
                for a in body["alerts"]:
                    if a["status"] == status and a["labels"].get("sloth_severity") == severity:
                        return dict(a)
            time.sleep(0.05)
        raise AssertionError(f"no {status} {severity} alert within {timeout_s} s; received {self.statuses()}")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> AlertReceiver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
