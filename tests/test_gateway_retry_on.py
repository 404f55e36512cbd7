"""A model's `retry_on`: which failed tries are repeated on another replica, against real failing upstreams.

Each version here has two replicas failing the same way, so a retried request reaches both and
one that is not retried reaches exactly one: the replicas' own request counters say how many
times the model was asked (paid for), whatever the balancer picked first.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aisre.config import parse_config
from aisre.errors import ConfigError
from aisre.testing.openai_server import openai_app
from aisre.testing.server import RunningServer, serve_in_thread
from aisre.testing.settings import MockSettings

from .gateway_helpers import RunningGateway, gateway_config

BODY = {"model": "chat", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}


class ResettingServer:
    """A replica that reads a whole request, then closes the connection without answering."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.requests = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    data += chunk
                if b"\r\n\r\n" in data:
                    self.requests += 1

    def count(self) -> int:
        return self.requests

    def stop(self) -> None:
        self.sock.close()


class MockReplica:
    def __init__(self, **settings: Any) -> None:
        self.server: RunningServer = serve_in_thread(openai_app(MockSettings(**settings)))
        self.url = self.server.url

    def count(self) -> int:
        return httpx.get(f"{self.url}/_mock/stats").json()["requests_total"]

    def stop(self) -> None:
        self.server.stop()


class ClosedPort:
    """A URL nothing listens on: connecting is refused."""

    def __init__(self) -> None:
        sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        sock.close()

    def count(self) -> int:
        return 0

    def stop(self) -> None:
        pass


FAILURES = {
    "connect-failure": lambda: ClosedPort(),
    "reset": lambda: ResettingServer(),
    "502": lambda: MockReplica(fail_rate=1.0, fail_status=502),
    "503": lambda: MockReplica(fail_rate=1.0, fail_status=503),
    "504": lambda: MockReplica(fail_rate=1.0, fail_status=504),
    "timeout": lambda: MockReplica(hang=True),
}


@pytest.fixture
def failing_pair(request: pytest.FixtureRequest) -> Iterator[tuple[str, list[Any]]]:
    kind = request.param
    pair = [FAILURES[kind](), FAILURES[kind]()]
    try:
        yield kind, pair
    finally:
        for replica in pair:
            replica.stop()


def _gateway(tmp_path: Path, pair: list[Any], retry_on: list[str] | None) -> RunningGateway:
    model: dict[str, Any] = {
        "protocol": "openai",
        "versions": {"v1": {"replicas": [f"{r.url}/v1" for r in pair], "timeout_s": 0.3}},
    }
    if retry_on is not None:
        model["retry_on"] = retry_on
    cfg = gateway_config(
        tmp_path,
        {"chat": model},
        gateway={
            "health_checks": {"enabled": False},
            "ejection": {"consecutive_failures": 100},
            "deadline_s": 10,
        },
    )
    return RunningGateway(cfg)


def _ask(gw: RunningGateway, n: int, stream: bool = False) -> list[httpx.Response]:
    body = {**BODY, "stream": True} if stream else BODY
    return [httpx.post(f"{gw.url}/v1/chat/completions", json=body, timeout=15) for _ in range(n)]


ALL_KINDS = list(FAILURES)


@pytest.mark.parametrize("failing_pair", ALL_KINDS, indirect=True)
def test_each_retry_on_value_retries_its_failure_on_the_other_replica(tmp_path: Path, failing_pair):
    kind, pair = failing_pair
    with _gateway(tmp_path, pair, [kind]) as gw:
        replies = _ask(gw, 3)
    assert all(r.status_code in (502, 504) for r in replies), [r.text for r in replies]
    assert all("after 2 tries" in r.json()["error"]["message"] for r in replies), replies[0].text
    if kind != "connect-failure":  # a refused connection reaches nobody; the others count each request
        assert sum(r.count() for r in pair) == 6


@pytest.mark.parametrize("failing_pair", ALL_KINDS, indirect=True)
def test_a_failure_missing_from_retry_on_is_tried_once(tmp_path: Path, failing_pair):
    kind, pair = failing_pair
    others = [k for k in ALL_KINDS if k != kind]
    with _gateway(tmp_path, pair, others) as gw:
        replies = _ask(gw, 3)
    assert all(r.status_code in (502, 504) for r in replies), [r.text for r in replies]
    messages = [r.json()["error"]["message"] for r in replies]
    assert all("after 2 tries" not in m and f"retry_on does not list {kind}" in m for m in messages), messages
    if kind != "connect-failure":
        assert sum(r.count() for r in pair) == 3


@pytest.mark.parametrize(
    ("failing_pair", "retried"),
    [("connect-failure", True), ("503", True), ("reset", False), ("502", False), ("504", False), ("timeout", False)],
    indirect=["failing_pair"],
)
def test_the_default_never_repeats_a_request_that_may_have_reached_the_model(tmp_path: Path, failing_pair, retried):
    kind, pair = failing_pair
    with _gateway(tmp_path, pair, None) as gw:
        replies = _ask(gw, 3)
    messages = [r.json()["error"]["message"] for r in replies]
    assert all(("after 2 tries" in m) is retried for m in messages), messages
    if kind != "connect-failure":
        assert sum(r.count() for r in pair) == (6 if retried else 3)


@pytest.mark.parametrize("failing_pair", ["timeout"], indirect=True)
def test_a_stream_whose_first_event_times_out_is_not_repeated_by_default(tmp_path: Path, failing_pair):
    _, pair = failing_pair
    with _gateway(tmp_path, pair, None) as gw:
        replies = _ask(gw, 2, stream=True)
    assert all(r.status_code == 504 for r in replies), [r.text for r in replies]
    assert sum(r.count() for r in pair) == 2


def test_a_connect_failure_is_retried_by_default_and_the_client_never_sees_it(tmp_path: Path):
    dead, alive = ClosedPort(), MockReplica()
    try:
        with _gateway(tmp_path, [dead, alive], None) as gw:
            replies = _ask(gw, 8)
        assert [r.status_code for r in replies] == [200] * 8
        assert alive.count() == 8
    finally:
        alive.stop()


def _config(tmp_path: Path, retry_on: Any) -> str:
    return f"""
store: sqlite:///{tmp_path / "a.db"}
models:
  chat:
    protocol: openai
    versions: {{v1: {{replicas: ["http://127.0.0.1:9/v1"]}}}}
    retry_on: {retry_on}
"""


def test_retry_on_accepts_statuses_as_numbers_and_defaults_to_connect_failure_and_503(tmp_path: Path):
    cfg = parse_config(_config(tmp_path, "[502, timeout]"))
    assert cfg.models["chat"].retry_on == ["502", "timeout"]
    default = parse_config(_config(tmp_path, "[]").replace("    retry_on: []\n", ""))
    assert default.models["chat"].retry_on == ["connect-failure", "503"]


def test_an_unknown_retry_on_value_is_refused_at_its_key_path(tmp_path: Path):
    with pytest.raises(ConfigError) as raised:
        parse_config(_config(tmp_path, "[connect-failure, 500]"))
    message = str(raised.value)
    assert "models.chat.retry_on.1" in message and "timeout" in message, message
