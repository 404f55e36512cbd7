from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import aisre
from aisre.config import parse_config
from aisre.telemetry import Recorder


@pytest.fixture
def monitor(db_path: Path):
    m = aisre.Monitor("fraud", "v1", store=f"sqlite:///{db_path}")
    yield m
    m.close()


def _spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def test_record_then_label_joins_even_before_the_write(monitor):
    rid = monitor.record({"amount": 10.0}, 1, scores={"1": 0.9}, latency_s=0.002)
    monitor.label(rid, 0)  # the record may still be queued: label() commits it first
    ((record, label),) = monitor.store.labeled_records()
    assert record.id == rid and label.value == 0


def test_label_for_unknown_id_is_a_clear_error(monitor):
    monitor.record({"amount": 1.0}, 0)
    with pytest.raises(aisre.UnknownRecordError, match="no inference record with id 'bogus'"):
        monitor.label("bogus", 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"latency_s": -0.1}, "latency_s: expected a finite number >= 0"),
        ({"latency_s": float("nan")}, "latency_s: expected a finite number >= 0"),
        ({"latency_s": "fast"}, "latency_s: expected a finite number >= 0"),
        ({"route": "sideways"}, "route: expected one of ['primary', 'canary', 'shadow', 'fallback']"),
        ({"status": "meh"}, "status: expected one of ['ok', 'error', 'cancelled']"),
        ({"input_tokens": -3}, "input_tokens: expected an integer >= 0"),
        ({"tags": {"group": 1}}, "tags: expected a mapping of strings to strings"),
        ({"tags": ["a"]}, "tags: expected a mapping of strings to strings"),
    ],
)
def test_bad_record_calls_name_the_field(monitor, kwargs, message):
    with pytest.raises(aisre.InvalidRecordError) as err:
        monitor.record({"amount": 1.0}, 0, **kwargs)
    assert message in str(err.value)
    monitor.flush()
    assert monitor.store.count() == 0  # nothing half-recorded


def test_string_route_and_int_latency_are_accepted(monitor):
    rid = monitor.record(None, 1, route="canary", status="ok", latency_s=1, input_tokens=3)
    monitor.flush()
    r = monitor.store.get(rid)
    assert (r.route, r.latency_s, r.input_tokens) == (aisre.Route.CANARY, 1.0, 3)


def test_bad_monitor_arguments(db_path: Path):
    with pytest.raises(aisre.InvalidRecordError, match="model: expected a non-empty string"):
        aisre.Monitor("", store=f"sqlite:///{db_path}")


def test_timed_block_records_latency_and_errors(monitor):
    with monitor.timed({"amount": 5.0}) as call:
        time.sleep(0.01)
        call.prediction = 1
    with pytest.raises(ZeroDivisionError), monitor.timed({"amount": 6.0}) as failing:
        _ = 1 / 0
    monitor.flush()
    ok, bad = monitor.store.get(call.record_id), monitor.store.get(failing.record_id)
    assert ok.prediction == 1 and ok.latency_s >= 0.01 and ok.status == "ok"
    assert bad.status == "error" and bad.error.startswith("ZeroDivisionError")


def test_track_decorator_records_arguments_and_result(monitor):
    @monitor.track
    def score(amount: float, country: str = "FR") -> int:
        return int(amount > 100)

    @monitor.track
    async def ascore(features: dict) -> int:
        return 7

    assert score(150.0) == 1
    assert asyncio.run(ascore({"a": 1})) == 7
    monitor.flush()
    first, second = monitor.store.records()
    assert first.inputs == {"amount": 150.0, "country": "FR"} and first.prediction == 1
    assert second.inputs == {"a": 1} and second.prediction == 7


def test_redaction_reaches_store_jsonl_and_spans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AISRE_REDACTION_KEY", "s3cret")
    log = tmp_path / "inferences.jsonl"
    cfg = parse_config(f"""
store: sqlite:///{tmp_path / "r.db"}
log: {{jsonl: {log}}}
telemetry: {{tracing: {{enabled: true, log_content: true}}}}
redaction: {{drop: [ssn], hash: [email, user.phone]}}
""")
    provider, exporter = _spans()
    recorder = Recorder.from_config(cfg, tracer_provider=provider)
    monitor = aisre.Monitor("fraud", recorder=recorder)
    # secrets that cannot occur by chance in a timestamp or a record id (a bare "555" once matched ".555Z")
    inputs = {"ssn": "123-45-6789", "email": "a@b.c", "user": {"phone": "+1-555-0199"}, "amount": 3}
    rid = monitor.record(inputs, 0)
    monitor.record({"email": "a@b.c"}, 1)
    recorder.close()
    assert inputs["ssn"] == "123-45-6789"  # the caller's dict is untouched
    stored = aisre.open_store(cfg.store.url).get(rid)
    assert "ssn" not in stored.inputs and stored.inputs["amount"] == 3
    assert stored.inputs["email"].startswith("hmac-sha256:")
    assert stored.inputs["user"]["phone"].startswith("hmac-sha256:")
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert lines[0]["input"] == stored.inputs
    assert lines[1]["input"]["email"] == stored.inputs["email"]  # same value, same hash
    everything = log.read_text() + str([s.attributes for s in exporter.get_finished_spans()])
    for secret in ("123-45-6789", "a@b.c", "+1-555-0199"):
        assert secret not in everything
    assert "hmac-sha256" in exporter.get_finished_spans()[0].attributes["input.value"]


def test_hashing_without_a_key_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("AISRE_REDACTION_KEY", raising=False)
    cfg = parse_config(f"store: sqlite:///{tmp_path / 'x.db'}\nredaction: {{hash: [email]}}")
    with pytest.raises(aisre.ConfigError, match="set the environment variable AISRE_REDACTION_KEY"):
        Recorder.from_config(cfg)


def test_llm_record_span_has_genai_and_openinference_attributes(db_path: Path):
    provider, exporter = _spans()
    monitor = aisre.Monitor("chat", "v3", store=f"sqlite:///{db_path}", tracer_provider=provider)
    rid = monitor.record(
        [{"role": "user", "content": "hi"}],
        output_text="hello",
        operation="chat",
        input_tokens=12,
        output_tokens=30,
        latency_s=0.8,
        ttft_s=0.1,
        tpot_s=0.02,
        cost_usd=0.001,
        status="error",
        error="Timeout: upstream",
    )
    (span,) = exporter.get_finished_spans()
    a = span.attributes
    assert span.name == "chat chat"
    assert a["gen_ai.usage.input_tokens"] == 12 and a["gen_ai.usage.output_tokens"] == 30
    assert a["llm.token_count.prompt"] == 12 and a["llm.token_count.completion"] == 30
    assert a["llm.token_count.total"] == 42 and a["openinference.span.kind"] == "LLM"
    assert a["error.type"] == "Timeout" and not span.status.is_ok
    assert (span.end_time - span.start_time) / 1e9 == pytest.approx(0.8, abs=1e-6)
    assert "input.value" not in a and "output.value" not in a
    monitor.flush()
    assert monitor.store.get(rid).trace_id == format(span.context.trace_id, "032x")
    monitor.close()


class _OtlpReceiver(BaseHTTPRequestHandler):
    received: list[ExportTraceServiceRequest] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.append(request)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_spans_are_exported_over_otlp_http(tmp_path: Path):
    server = HTTPServer(("127.0.0.1", 0), _OtlpReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{server.server_port}/v1/traces"
    cfg = parse_config(f"""
store: sqlite:///{tmp_path / "o.db"}
telemetry: {{tracing: {{enabled: true, otlp_endpoint: '{endpoint}', service_name: fraud-svc}}}}
""")
    recorder = Recorder.from_config(cfg)
    monitor = aisre.Monitor("fraud", recorder=recorder)
    monitor.record({"amount": 1}, 0, latency_s=0.01)
    recorder.close()  # exports pending spans
    server.shutdown()
    spans = [
        s for req in _OtlpReceiver.received for rs in req.resource_spans for ss in rs.scope_spans for s in ss.spans
    ]
    assert [s.name for s in spans] == ["predict fraud"]
    resource = _OtlpReceiver.received[0].resource_spans[0].resource
    assert any(a.key == "service.name" and a.value.string_value == "fraud-svc" for a in resource.attributes)
