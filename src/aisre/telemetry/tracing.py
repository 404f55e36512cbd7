"""OpenTelemetry spans for inferences, with GenAI and OpenInference attributes.

A span is emitted after the fact from a finished record: it starts at `ts - latency_s`
and ends at `ts`, so instrumenting needs no change to the call being measured. The span
becomes a child of whatever span is current (the caller's request, say), and its trace id
is written onto the record so logs, traces and records join.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from opentelemetry import trace
from opentelemetry.trace import SpanKind, StatusCode

from aisre.config import TracingConfig
from aisre.records import InferenceRecord, Status
from aisre.store.codec import dumps

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

# One OTLP export (all its retries included) gives up after this long: a collector that is
# down or silent costs the export thread seconds, never the caller (see span_export.py).
EXPORT_TIMEOUT_S = 2.0

# gen_ai.operation.name -> openinference.span.kind. OpenInference has no kind for a
# classical model's prediction; CHAIN is its generic "a step that transforms input".
_OPENINFERENCE_KIND = {
    "chat": "LLM",
    "text_completion": "LLM",
    "generate_content": "LLM",
    "embeddings": "EMBEDDING",
}


def build_tracer_provider(cfg: TracingConfig) -> TracerProvider:
    """A tracer provider that exports to OTLP/HTTP when `otlp_endpoint` is set.

    Spans go through a `SpanExportQueue` (bounded, its own thread, bounded waits), so a slow
    or absent collector never holds up recording or the store. The SDK loads only here.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({"service.name": cfg.service_name}),
        sampler=ParentBased(TraceIdRatioBased(cfg.sample_ratio)),
    )
    if cfg.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        from aisre.telemetry.span_export import SpanExportQueue

        exporter = OTLPSpanExporter(
            endpoint=cfg.otlp_endpoint, headers=cfg.otlp_headers or None, timeout=EXPORT_TIMEOUT_S
        )
        provider.add_span_processor(SpanExportQueue(exporter))
    return provider


def span_attributes(r: InferenceRecord, log_content: bool) -> dict[str, Any]:
    """The attributes of one record's span (OTel GenAI, OpenInference and aisre.*)."""
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": r.operation,
        "gen_ai.request.model": r.model,
        "gen_ai.response.model": r.model,
        "openinference.span.kind": _OPENINFERENCE_KIND.get(r.operation, "CHAIN"),
        "llm.model_name": r.model,
        "aisre.record_id": r.id,
        "aisre.model.version": r.version,
        "aisre.route": str(r.route),
        "aisre.status": str(r.status),
    }
    if r.input_tokens is not None:
        attrs["gen_ai.usage.input_tokens"] = r.input_tokens
        attrs["llm.token_count.prompt"] = r.input_tokens
    if r.output_tokens is not None:
        attrs["gen_ai.usage.output_tokens"] = r.output_tokens
        attrs["llm.token_count.completion"] = r.output_tokens
    if r.input_tokens is not None and r.output_tokens is not None:
        attrs["llm.token_count.total"] = r.input_tokens + r.output_tokens
    if r.ttft_s is not None:
        attrs["aisre.time_to_first_token_s"] = r.ttft_s
    if r.tpot_s is not None:
        attrs["aisre.time_per_output_token_s"] = r.tpot_s
    if r.cost_usd is not None:
        attrs["aisre.cost_usd"] = r.cost_usd
    if r.replica:
        attrs["server.address"] = r.replica
    if r.key_id:
        attrs["aisre.key_id"] = r.key_id
    if r.status == Status.ERROR:  # a cancelled call (the caller left) is no error
        attrs["error.type"] = (r.error or "error").split(":", 1)[0][:128]
    if log_content:
        _content(attrs, "input", r.inputs)
        _content(attrs, "output", r.output_text if r.output_text is not None else r.prediction)
    return attrs


def _content(attrs: dict[str, Any], side: str, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, str):
        attrs[f"{side}.value"] = value
        attrs[f"{side}.mime_type"] = "text/plain"
    else:
        attrs[f"{side}.value"] = dumps(value)  # the store's encoding: numpy-aware, never fails
        attrs[f"{side}.mime_type"] = "application/json"


class SpanEmitter:
    """Turns finished records into spans on a tracer; fills `record.trace_id`."""

    def __init__(self, tracer_provider: Any = None, log_content: bool = False, owns_provider: bool = False) -> None:
        self.provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
        self.tracer = self.provider.get_tracer("aisre")
        self.log_content = log_content
        self._owns_provider = owns_provider

    def flush(self, timeout_s: float = 5.0) -> bool:
        """Ask the provider to export pending spans; True if it finished within `timeout_s`.

        Bounded for the provider aisre builds; a provider passed in flushes by its own rules
        (the SDK's BatchSpanProcessor ignores the timeout and exports on this thread).
        """
        force_flush = getattr(self.provider, "force_flush", None)
        if force_flush is None:
            return True
        return bool(force_flush(int(timeout_s * 1000)))

    def close(self) -> None:
        """Shut the provider down (bounded) if aisre built it; a provider passed in is the caller's."""
        if self._owns_provider:  # then build_tracer_provider made it: an SDK provider
            cast("TracerProvider", self.provider).shutdown()

    def emit(self, r: InferenceRecord, batch_size: int | None = None) -> None:
        end_ns = int(r.ts * 1e9)
        start_ns = end_ns - int((r.latency_s or 0.0) * 1e9)
        attrs = span_attributes(r, self.log_content)
        if batch_size is not None:
            attrs["aisre.batch_size"] = batch_size
        span = self.tracer.start_span(
            f"{r.operation} {r.model}", kind=SpanKind.CLIENT, attributes=attrs, start_time=start_ns
        )
        if r.status == Status.ERROR:
            span.set_status(StatusCode.ERROR, r.error or None)
        ctx = span.get_span_context()
        if ctx.is_valid and r.trace_id is None:
            r.trace_id = format(ctx.trace_id, "032x")
        span.end(end_time=end_ns)
