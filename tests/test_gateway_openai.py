"""The OpenAI-compatible gateway with the official `openai` client, against real mock replicas."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import openai
import pytest

import aisre
from aisre.testing.openai_server import openai_app
from aisre.testing.server import serve_in_thread
from aisre.testing.settings import MockSettings

from .gateway_helpers import RunningGateway, gateway_config

MESSAGES = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def replicas():
    servers = [serve_in_thread(openai_app(MockSettings(replica_id=f"r{i}", completion_tokens=12))) for i in range(2)]
    yield servers
    for s in servers:
        s.stop()


@pytest.fixture
def gw(tmp_path: Path, replicas):
    cfg = gateway_config(
        tmp_path,
        {
            "chat": {
                "protocol": "openai",
                "log_content": True,
                "versions": {"v1": {"replicas": [f"{r.url}/v1" for r in replicas]}},
            },
            "quiet": {"protocol": "openai", "versions": {"v1": {"replicas": [f"{replicas[0].url}/v1"]}}},
        },
        gateway={"max_body_bytes": 20_000, "health_checks": {"interval_s": 0.2}},
    )
    with RunningGateway(cfg) as running:
        yield running


def client(gw: RunningGateway, **kw) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gw.url}/v1", api_key="unused", max_retries=0, **kw)


def stored(gw: RunningGateway) -> list[aisre.InferenceRecord]:
    gw.gateway.recorder.flush()
    return gw.gateway.recorder.store.records()


def test_chat_plain_through_the_official_client(gw):
    reply = client(gw).chat.completions.with_raw_response.create(model="chat", messages=MESSAGES)
    completion = reply.parse()
    assert completion.choices[0].message.content.startswith("mock reply")
    assert completion.usage.completion_tokens == 12 and completion.usage.prompt_tokens == 2
    assert reply.headers["x-aisre-version"] == "v1" and reply.headers["x-aisre-route"] == "primary"
    assert float(reply.headers["x-aisre-overhead-ms"]) < 50
    (record,) = stored(gw)
    assert record.id == reply.headers["x-aisre-record-id"]
    assert (record.operation, record.input_tokens, record.output_tokens) == ("chat", 2, 12)
    assert record.inputs == MESSAGES and record.output_text == completion.choices[0].message.content
    assert record.replica.startswith("http://127.0.0.1:")


def test_chat_streaming_relays_chunks_and_measures_tokens(gw):
    chunks = list(client(gw).chat.completions.create(model="chat", messages=MESSAGES, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.startswith("mock reply") and all(c.usage is None for c in chunks)  # usage kept from client
    with_usage = list(
        client(gw).chat.completions.create(
            model="chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
    )
    assert with_usage[-1].usage.completion_tokens == 12 and not with_usage[-1].choices
    first, second = stored(gw)
    for r in (first, second):
        assert r.status == "ok" and r.output_tokens == 12 and r.input_tokens == 2
        assert 0 < r.ttft_s <= r.latency_s and r.tpot_s is not None
    assert first.output_text == text


def test_completions_embeddings_and_models(gw):
    c = client(gw)
    assert c.completions.create(model="chat", prompt="say hi", max_tokens=3).usage.completion_tokens == 3
    vectors = c.embeddings.create(model="chat", input=["a", "b", "c"])
    assert len(vectors.data) == 3 and len(vectors.data[0].embedding) > 0
    assert {m.id for m in c.models.list()} == {"chat", "quiet"}
    ops = [r.operation for r in stored(gw)]
    assert ops == ["text_completion", "embeddings"]


def test_content_is_not_stored_unless_asked(gw):
    client(gw).chat.completions.create(model="quiet", messages=MESSAGES)
    (record,) = stored(gw)
    assert record.inputs is None and record.output_text is None and record.output_tokens == 12


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "request body is not valid JSON"),
        (b"[1, 2]", 400, "request body must be a JSON object, got list"),
        (b"", 400, "request body is empty"),
        (b'{"messages": []}', 400, "missing required field 'model'"),
        (b'{"model": "chat"}', 400, "missing required field 'messages'"),
        (b'{"model": "chat", "messages": "hi"}', 400, "field 'messages' must be a list of message objects"),
        (b'{"model": "chat", "messages": [{"content": "x"}]}', 400, "messages[0].role must be a string"),
        (b'{"model": "chat", "messages": [{"role": "user"}], "max_tokens": 0}', 400, "field 'max_tokens' must be >= 1"),
        (
            b'{"model": "chat", "messages": [{"role": "user"}], "stream": "yes"}',
            400,
            "field 'stream' must be true or false",
        ),
        (b'{"model": "gpt-9", "messages": [{"role": "user"}]}', 404, "model 'gpt-9' does not exist"),
        (b'{"model": "chat", "messages": [{"role": "user", "content": "' + b"x" * 30_000 + b'"}]}', 413, "limit"),
    ],
)
def test_bad_requests_get_clear_openai_errors(gw, body: bytes, status: int, message: str):
    response = httpx.post(f"{gw.url}/v1/chat/completions", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    error = response.json()["error"]
    assert message in error["message"] and error["type"]


def test_unknown_paths_and_methods_are_json_errors(gw):
    assert httpx.get(f"{gw.url}/v1/nothing").json()["error"]["message"].startswith("GET /v1/nothing")
    assert httpx.get(f"{gw.url}/v1/chat/completions").status_code == 405


def _settings(replica, **values) -> None:
    httpx.post(f"{replica.url}/_mock/settings", json=values).raise_for_status()


def test_upstream_failures_become_502_and_504_never_500(tmp_path: Path, replicas):
    cfg = gateway_config(
        tmp_path,
        {"chat": {"protocol": "openai", "versions": {"v1": {"replicas": [f"{replicas[0].url}/v1"], "timeout_s": 0.5}}}},
        gateway={"deadline_s": 2, "retries": {"attempts": 1}},
    )
    with RunningGateway(cfg) as gw:
        url = f"{gw.url}/v1/chat/completions"
        body = {"model": "chat", "messages": MESSAGES}
        _settings(replicas[0], fail_rate=1.0, fail_status=503)
        r = httpx.post(url, json=body)
        assert r.status_code == 502 and "answered 503" in r.json()["error"]["message"]
        _settings(replicas[0], fail_rate=0.0, garbage=True)
        r = httpx.post(url, json=body)
        assert r.status_code == 502 and "invalid JSON" in r.json()["error"]["message"]
        _settings(replicas[0], garbage=False, hang=True)
        started = time.monotonic()
        r = httpx.post(url, json=body, timeout=10)
        assert r.status_code == 504 and time.monotonic() - started < 3
        _settings(replicas[0], hang=False)
        assert httpx.post(url, json=body).status_code == 200  # and it keeps serving
        errors = [r for r in stored(gw) if r.status == "error"]
        assert len(errors) == 3 and all(r.error for r in errors)


def test_spans_join_the_callers_trace_with_genai_attributes(tmp_path: Path, replicas):
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from aisre.telemetry import Recorder

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    cfg = gateway_config(
        tmp_path, {"chat": {"protocol": "openai", "versions": {"v1": {"replicas": [f"{replicas[0].url}/v1"]}}}}
    )
    recorder = Recorder.from_config(cfg, tracer_provider=provider)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    with RunningGateway(cfg, recorder) as gw:
        r = httpx.post(
            f"{gw.url}/v1/chat/completions",
            json={"model": "chat", "messages": MESSAGES},
            headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
        )
        assert r.status_code == 200
    (span,) = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == trace_id
    assert span.parent is not None and format(span.parent.span_id, "016x") == "00f067aa0ba902b7"
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "chat"
    assert a["gen_ai.usage.output_tokens"] == 12 and a["openinference.span.kind"] == "LLM"
    assert recorder.store.get(r.headers["x-aisre-record-id"]).trace_id == trace_id
    recorder.close()
