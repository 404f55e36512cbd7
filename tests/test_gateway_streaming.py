"""Streams that fail, and clients that leave: what the official `openai` SDK sees, what is
recorded, what Prometheus counts. Real gateway (uvicorn), real mock replicas, real sockets."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

import aisre
from aisre.testing.openai_server import openai_app
from aisre.testing.server import serve_in_thread
from aisre.testing.settings import MockSettings

from .gateway_helpers import RunningGateway, eventually, gateway_config, metric_value

MESSAGES = [{"role": "user", "content": "hello there"}]
BREAK_OFF = {"truncate_stream_after": 3}  # the mock drops the connection after 3 events
GARBAGE = {"garbage_stream_after": 3}  # the mock slips a line that is not SSE in after 3 events


@pytest.fixture
def replicas():
    servers = [serve_in_thread(openai_app(MockSettings(replica_id=f"r{i}", completion_tokens=12))) for i in range(2)]
    yield servers
    for s in servers:
        s.stop()


def _chat_gateway(tmp_path: Path, replicas, **version) -> RunningGateway:
    models = {
        "chat": {
            "protocol": "openai",
            "log_content": True,
            "versions": {"v1": {"replicas": [f"{replicas[0].url}/v1"], **version}},
        }
    }
    return RunningGateway(gateway_config(tmp_path, models, gateway={"retries": {"attempts": 1}}))


def _settings(replica, **values) -> None:
    httpx.post(f"{replica.url}/_mock/settings", json=values).raise_for_status()


def _client(gw: RunningGateway, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key="unused", max_retries=0, **kw)


def _records(gw: RunningGateway) -> list[aisre.InferenceRecord]:
    gw.gateway.recorder.flush()
    return gw.gateway.recorder.store.records()


def _requests_counted(gw: RunningGateway, status_class: str) -> float:
    return metric_value(gw, "aisre_gateway_requests_total", model="chat", status_class=status_class)


# -- upstream failures after the first byte ----------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code", "said"),
    [
        (BREAK_OFF, "upstream_stream_broken", "broke off the stream after 3 events"),
        (GARBAGE, "upstream_stream_malformed", "a line that is not server-sent events"),
    ],
    ids=["broken-off", "garbage"],
)
def test_a_stream_failing_after_the_first_byte_makes_the_sdk_raise(tmp_path: Path, replicas, fault, code, said):
    _settings(replicas[0], **fault)
    with _chat_gateway(tmp_path, replicas) as gw:
        received: list[str] = []
        with pytest.raises(openai.APIError) as raised:
            for chunk in _client(gw).chat.completions.create(model="chat", messages=MESSAGES, stream=True):
                received.append(chunk.choices[0].delta.content or "")
        assert type(raised.value) is openai.APIError  # the gateway's error event, not a dropped connection
        assert raised.value.body["code"] == code and said in raised.value.message
        assert "the answer is incomplete" in raised.value.message
        assert "mock" in "".join(received)  # the first words did arrive before the failure
        eventually(lambda: len(_records(gw)) == 1)
        (record,) = _records(gw)
        assert record.status == "error" and said in record.error
        assert record.output_text == "".join(received)
        assert _requests_counted(gw, "5xx") == 1 and _requests_counted(gw, "2xx") == 0


def test_a_stream_that_stalls_after_the_first_byte_ends_with_a_timeout_error_event(tmp_path: Path, replicas):
    _settings(replicas[0], tokens_per_s=0.1)  # the first word at once, the second 10 s later
    with _chat_gateway(tmp_path, replicas, timeout_s=0.5) as gw:
        with pytest.raises(openai.APIError) as raised:
            list(_client(gw).chat.completions.create(model="chat", messages=MESSAGES, stream=True))
        assert raised.value.body["type"] == "timeout" and raised.value.body["code"] == "upstream_stream_timeout"
        eventually(lambda: len(_records(gw)) == 1)
        assert _records(gw)[0].status == "error"


def test_an_upstream_error_event_reaches_the_client_and_is_recorded(tmp_path: Path):
    # A replica that starts a stream and then reports an error in OpenAI's own shape.
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route

    async def events():
        yield b'data: {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}\n\n'
        yield b'data: {"error": {"message": "overloaded", "type": "server_error", "code": null}}\n\n'

    async def chat(request):
        return StreamingResponse(events(), media_type="text/event-stream")

    upstream = serve_in_thread(Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])]))
    try:
        with _chat_gateway(tmp_path, [upstream]) as gw:
            with pytest.raises(openai.APIError, match="overloaded"):
                list(_client(gw).chat.completions.create(model="chat", messages=MESSAGES, stream=True))
            eventually(lambda: len(_records(gw)) == 1)
            (record,) = _records(gw)
            assert record.status == "error" and "sent an error event: overloaded" in record.error
    finally:
        upstream.stop()


# -- upstream failures before the first byte: retried, then the fallback chain -------------------


@pytest.mark.parametrize(
    "fault",
    [{"truncate_stream_after": 0}, {"garbage_stream_after": 0}, {"fail_rate": 1.0, "fail_status": 503}],
    ids=["broken-before-first-event", "garbage-first", "503"],
)
def test_a_stream_failing_before_the_first_byte_is_served_by_the_fallback_version(tmp_path: Path, replicas, fault):
    _settings(replicas[0], **fault)
    models = {
        "chat": {
            "protocol": "openai",
            "versions": {"v1": {"replicas": [f"{replicas[0].url}/v1"]}, "v2": {"replicas": [f"{replicas[1].url}/v1"]}},
            "route": {"v1": 100},
            "fallback": "v2",
        }
    }
    with RunningGateway(gateway_config(tmp_path, models, gateway={"retries": {"attempts": 1}})) as gw:
        stream = _client(gw).chat.completions.with_raw_response.create(model="chat", messages=MESSAGES, stream=True)
        assert stream.headers["x-aisre-version"] == "v2" and stream.headers["x-aisre-route"] == "fallback"
        text = "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
        assert text.startswith("mock reply") and "r1" in text  # replica r1 serves v2
        eventually(lambda: len(_records(gw)) == 2)
        by_version = {r.version: r for r in _records(gw)}
        assert by_version["v1"].status == "error" and by_version["v2"].status == "ok"
        assert by_version["v2"].route == "fallback" and by_version["v2"].output_tokens == 12


def test_a_stream_breaking_before_the_first_byte_is_retried_on_another_replica_when_retry_on_lists_reset(
    tmp_path: Path, replicas
):
    _settings(replicas[0], truncate_stream_after=0)
    # The healthy replica answers in 50 ms, so the balancer soon prefers the untried broken one (10 ms guess).
    _settings(replicas[1], latency_s=0.05)
    versions = {"v1": {"replicas": [f"{r.url}/v1" for r in replicas]}}
    # A broken-off stream may have cost the model its work: retried only because the model says so.
    models = {"chat": {"protocol": "openai", "versions": versions, "retry_on": ["connect-failure", "reset"]}}
    config = gateway_config(
        tmp_path,
        models,
        gateway={"retries": {"attempts": 2, "min_per_second": 100}, "ejection": {"consecutive_failures": 100}},
    )
    with RunningGateway(config) as gw:
        for _ in range(6):
            chunks = list(_client(gw).chat.completions.create(model="chat", messages=MESSAGES, stream=True))
            assert "r1" in "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert httpx.get(f"{replicas[0].url}/_mock/stats").json()["by_endpoint"], "the broken replica was tried"
        assert metric_value(gw, "aisre_upstream_retries_total", model="chat") >= 1
        eventually(lambda: len(_records(gw)) == 6)
        assert {r.status for r in _records(gw)} == {"ok"}


# -- sizes: one event, an error body --------------------------------------------------------------


def _oversized_upstream(calls: list[str]):
    """A replica whose answers are too large, by the request's `user` field: an event that never
    ends (`endless`), one after a first good event (`endless-later`), or a 400 of 10 kB (`big-error`)."""
    import json

    from starlette.applications import Starlette
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    async def endless(first: bool):
        if not first:
            yield b'data: {"choices": [{"index": 0, "delta": {"content": "Hel"}}]}\n\n'
        yield b"data: "
        for _ in range(64):  # 4 MiB, never a blank line
            yield b"x" * 65536

    async def chat(request):
        kind = json.loads(await request.body()).get("user")
        calls.append(kind)
        if kind == "big-error":
            body = json.dumps({"error": {"message": "x" * 10_000, "type": "invalid_request_error"}})
            return Response(body, 400, media_type="application/json")
        return StreamingResponse(endless(first=kind == "endless"), media_type="text/event-stream")

    return serve_in_thread(Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])]))


def test_an_endless_event_is_cut_at_the_event_limit_and_not_retried(tmp_path: Path):
    calls: list[str] = []
    replicas = [_oversized_upstream(calls) for _ in range(2)]
    models = {"chat": {"protocol": "openai", "versions": {"v1": {"replicas": [f"{r.url}/v1" for r in replicas]}}}}
    config = gateway_config(tmp_path, models, gateway={"retries": {"attempts": 2}, "health_checks": {"enabled": False}})
    try:
        with RunningGateway(config) as gw:
            with pytest.raises(openai.APIStatusError) as before_first_byte:
                list(_client(gw).chat.completions.create(model="chat", messages=MESSAGES, stream=True, user="endless"))
            assert before_first_byte.value.status_code == 502 and calls == ["endless"], "one replica, no retry"
            assert "a server-sent event over 1048576 bytes" in before_first_byte.value.message
            with pytest.raises(openai.APIError) as after_first_byte:
                list(
                    _client(gw).chat.completions.create(
                        model="chat", messages=MESSAGES, stream=True, user="endless-later"
                    )
                )
            assert after_first_byte.value.body["code"] == "upstream_stream_too_large"
            assert "a server-sent event over 1048576 bytes after 1 events" in after_first_byte.value.message
    finally:
        for r in replicas:
            r.stop()


def test_a_stream_request_s_error_body_over_max_response_bytes_is_a_502_naming_the_limit(tmp_path: Path):
    calls: list[str] = []
    upstream = _oversized_upstream(calls)
    models = {"chat": {"protocol": "openai", "versions": {"v1": {"replicas": [f"{upstream.url}/v1"]}}}}
    config = gateway_config(tmp_path, models, gateway={"max_response_bytes": 4096, "health_checks": {"enabled": False}})
    try:
        with RunningGateway(config) as gw:
            request = dict(model="chat", messages=MESSAGES, stream=True)
            with pytest.raises(openai.APIStatusError) as raised:
                list(_client(gw).chat.completions.create(**request, user="big-error"))
            assert raised.value.status_code == 502 and "the limit is 4096 bytes" in raised.value.message
    finally:
        upstream.stop()
