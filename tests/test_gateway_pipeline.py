"""The one request pipeline, seen from both protocols: the same fallback chain, records and headers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from aisre.testing.oip_server import oip_app
from aisre.testing.openai_server import openai_app
from aisre.testing.server import RunningServer, serve_in_thread
from aisre.testing.settings import MockSettings

from .gateway_helpers import RunningGateway, gateway_config, metric_value

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}
ROWS = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [[1, 2, 3], [4, 5, 6]]}]}


def _closed_port() -> str:
    sock = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()
    return url


class Protocol:
    """How to start a replica of, and send a request to, one protocol's model `m`."""

    def __init__(self, name: str) -> None:
        self.name = name

    def replica(self, **settings: Any) -> RunningServer:
        if self.name == "openai":
            return serve_in_thread(openai_app(MockSettings(**settings)))
        return serve_in_thread(oip_app(MockSettings(model="m", **settings)))

    def url(self, base: str) -> str:
        return f"{base}/v1" if self.name == "openai" else base

    def ask(self, gw: RunningGateway) -> httpx.Response:
        if self.name == "openai":
            return httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT, timeout=15)
        return httpx.post(f"{gw.url}/v2/models/m/infer", json=ROWS, timeout=15)

    def records_per_call(self) -> int:
        return 1 if self.name == "openai" else 2  # OIP: one record per row


@pytest.fixture(params=["openai", "oip"])
def protocol(request: pytest.FixtureRequest) -> Protocol:
    return Protocol(request.param)


@pytest.fixture
def replicas(protocol: Protocol) -> Iterator[dict[str, RunningServer]]:
    started = {"failing": protocol.replica(fail_rate=1.0, fail_status=503), "healthy": protocol.replica()}
    yield started
    for server in started.values():
        server.stop()


def _gateway(tmp_path: Path, protocol: Protocol, v2: str, v3: str, fallback: list[str]) -> RunningGateway:
    versions = {
        "v1": {"replicas": [protocol.url(_closed_port())]},
        "v2": {"replicas": [protocol.url(v2)]},
        "v3": {"replicas": [protocol.url(v3)]},
    }
    model = {"protocol": protocol.name, "versions": versions, "route": {"v1": 100}, "fallback": fallback}
    cfg = gateway_config(tmp_path, {"m": model}, gateway={"health_checks": {"enabled": False}})
    return RunningGateway(cfg)


def _records(gw: RunningGateway) -> list[Any]:
    gw.gateway.recorder.flush()
    return gw.gateway.recorder.store.records()


def _count(server: RunningServer) -> int:
    return httpx.get(f"{server.url}/_mock/stats").json()["requests_total"]


def test_a_version_listed_twice_in_the_fallback_chain_is_tried_once(tmp_path: Path, protocol, replicas):
    failing, healthy = replicas["failing"], replicas["healthy"]
    with _gateway(tmp_path, protocol, failing.url, healthy.url, ["v2", "v2", "v1", "v3"]) as gw:
        reply = protocol.ask(gw)
        assert reply.status_code == 200, reply.text
        assert reply.headers["x-aisre-version"] == "v3" and reply.headers["x-aisre-route"] == "fallback"
        records = _records(gw)
    assert _count(failing) == 1, "v2 was asked once although the chain names it twice"
    per_call = protocol.records_per_call()
    assert [r.version for r in records] == ["v1"] * per_call + ["v2"] * per_call + ["v3"] * per_call
    assert [r.status for r in records] == ["error"] * (2 * per_call) + ["ok"] * per_call


def test_fallback_records_say_route_fallback_and_why(tmp_path: Path, protocol, replicas):
    healthy = replicas["healthy"]
    with _gateway(tmp_path, protocol, healthy.url, healthy.url, ["v2"]) as gw:
        assert protocol.ask(gw).headers["x-aisre-route"] == "fallback"
        gw.gateway.routing.open_breaker("m", "v1")  # what the admin API and the AI breaker set
        reply = protocol.ask(gw)
        assert reply.headers["x-aisre-version"] == "v2" and reply.headers["x-aisre-route"] == "fallback"
        records = _records(gw)
    served = [r for r in records if r.status == "ok"]
    assert {r.route for r in served} == {"fallback"}
    reasons = [r.tags["fallback_reason"] for r in served]
    per_call = protocol.records_per_call()
    assert reasons == ["v1 failed"] * per_call + ["breaker open on v1"] * per_call
    assert [r.version for r in records if r.status == "error"] == ["v1"] * per_call, "an open breaker is not called"
    assert reply.headers["x-aisre-record-id"] == served[-per_call].id  # the call's first record


def test_every_version_failing_is_one_error_in_the_protocols_shape(tmp_path: Path, protocol, replicas):
    failing = replicas["failing"]
    with _gateway(tmp_path, protocol, failing.url, failing.url, ["v2", "v3"]) as gw:
        reply = protocol.ask(gw)
    assert reply.status_code == 502
    body = reply.json()
    message = body["error"]["message"] if protocol.name == "openai" else body["error"]
    assert "answered 503" in message, body


def test_a_shadowed_request_and_its_shadow_share_a_pairing_tag_row_by_row(tmp_path: Path, protocol, replicas):
    healthy = replicas["healthy"]
    versions = {"v1": {"replicas": [protocol.url(healthy.url)]}, "v2": {"replicas": [protocol.url(healthy.url)]}}
    model = {"protocol": protocol.name, "versions": versions, "route": {"v1": 100}, "shadow": {"version": "v2"}}
    cfg = gateway_config(tmp_path, {"m": model}, gateway={"health_checks": {"enabled": False}})
    per_call = protocol.records_per_call()
    with RunningGateway(cfg) as gw:
        for _ in range(2):
            assert protocol.ask(gw).status_code == 200
        deadline = time.monotonic() + 15
        while len(_records(gw)) < 4 * per_call and time.monotonic() < deadline:
            time.sleep(0.05)
        records = _records(gw)
    primary = {r.tags["request_id"]: r for r in records if r.route == "primary"}
    shadow = {r.tags["request_id"]: r for r in records if r.route == "shadow"}
    assert len(primary) == len(shadow) == 2 * per_call, records
    assert primary.keys() == shadow.keys()
    assert all(primary[k].inputs == shadow[k].inputs and shadow[k].version == "v2" for k in primary)


def test_retries_to_another_replica_are_counted_for_both_protocols(tmp_path: Path, protocol, replicas):
    failing, slow = replicas["failing"], protocol.replica(latency_s=0.05)
    try:
        # The healthy replica answers in 50 ms, so the balancer soon prefers the untried failing one (10 ms guess).
        versions = {"v1": {"replicas": [protocol.url(failing.url), protocol.url(slow.url)]}}
        model = {"protocol": protocol.name, "versions": versions, "retry_on": ["503"]}
        gateway = {"health_checks": {"enabled": False}, "ejection": {"consecutive_failures": 100}}
        cfg = gateway_config(tmp_path, {"m": model}, gateway=gateway)
        with RunningGateway(cfg) as gw:
            assert [protocol.ask(gw).status_code for _ in range(5)] == [200] * 5
            retries = metric_value(gw, "aisre_upstream_retries_total", model="m", version="v1")
        assert _count(failing) >= 1 and retries == _count(failing)
    finally:
        slow.stop()
