"""The OpenAI-compatible API: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models.

A request is validated, routed to a version (weighted, sticky), sent to a replica (balanced,
retried, within a deadline), falls back to the next version when its upstream fails, is
mirrored to a shadow when sampled, and becomes an InferenceRecord. Streams are relayed
event by event as they arrive (`streaming.StreamRelay`); time to first token and per output
token are measured; usage is taken from the final chunk (requested upstream even when the
client did not ask, and then kept from the client). A client that disconnects while an
upstream works for it cancels that work; the call is recorded as `cancelled`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aisre.config.gateway import ModelConfig
from aisre.errors import ClientDisconnected
from aisre.gateway.core import Gateway
from aisre.gateway.disconnect import cancel_on_disconnect
from aisre.gateway.errors import GatewayError, openai_error
from aisre.gateway.metrics import CANCELLED_STATUS_CLASS, REJECTED_REASONS
from aisre.gateway.requests import read_json, validate_chat, validate_completion, validate_embeddings
from aisre.gateway.streaming import StreamRelay, int_or_none
from aisre.gateway.upstream import HttpVersion, Reply
from aisre.records import InferenceRecord, Route, Status
from aisre.store.keys import KeyRecord

Validator = Callable[[dict[str, Any]], None]
T = TypeVar("T")


@dataclass
class Call:
    """One client request as it moves through the pipeline."""

    model: str
    config: ModelConfig
    payload: dict[str, Any]
    operation: str
    path: str
    started: float
    deadline: float
    raw: bytes = b""
    key_id: str | None = None
    trace_parent: Any = None
    admission: Any = None
    cost_usd: float | None = None
    used_tokens: int | None = None
    relay_settles: bool = False
    forward_headers: dict[str, str] = field(default_factory=dict)
    upstream_s: float = 0.0
    tags: dict[str, str] = field(default_factory=dict)
    receive: Any = None  # the client's ASGI receive, to notice it leaving (None for shadows)


class OpenAIApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def chat(self, request: Request) -> Response:
        return await self._handle(request, "/chat/completions", "chat", validate_chat)

    async def completions(self, request: Request) -> Response:
        return await self._handle(request, "/completions", "text_completion", validate_completion)

    async def embeddings(self, request: Request) -> Response:
        return await self._handle(request, "/embeddings", "embeddings", validate_embeddings)

    async def models(self, request: Request) -> Response:
        """The OpenAI models the caller's key may use (with auth on, a key is needed to list any)."""
        try:
            key = self.gw.policies.authenticate(request.headers)
        except GatewayError as err:
            self.gw.metrics.rejected.labels(REJECTED_REASONS.get(err.status, "bad_request")).inc()
            return openai_error(err)
        data = [
            {"id": name, "object": "model", "created": 0, "owned_by": "aisre"}
            for name in self.gw.policies.visible(key, self._openai_models())
        ]
        return JSONResponse({"object": "list", "data": data})

    def _openai_models(self) -> list[str]:
        return [name for name, m in self.gw.config.models.items() if m.protocol == "openai"]

    # -- the pipeline ----------------------------------------------------------------------
    async def _handle(self, request: Request, path: str, operation: str, validate: Validator) -> Response:
        started = time.perf_counter()
        g = self.gw.config.gateway
        try:
            # The key first: an anonymous or bad-key caller gets 401 before its body is read or a
            # model looked up, so errors cannot tell it which models exist.
            key = self.gw.policies.authenticate(request.headers)
            payload, raw = await read_json(request, g.max_body_bytes, g.body_timeout_s)
            validate(payload)
            self.gw.policies.authorize(key, payload["model"])
            call = Call(
                payload["model"],
                self._model(payload["model"], key),
                payload,
                operation,
                path,
                started,
                time.monotonic() + g.deadline_s,
                raw,
            )
            headers = request.headers
            call.admission = await self.gw.policies.admit(key, call.model, call.config, payload)
        except GatewayError as err:
            self.gw.metrics.rejected.labels(REJECTED_REASONS.get(err.status, "bad_request")).inc()
            return openai_error(err)
        call.key_id = call.admission.key_id
        call.receive = request.receive
        traceparent = headers.get("traceparent")
        if traceparent is not None:  # the upstream joins the caller's trace
            call.forward_headers["traceparent"] = traceparent
            call.trace_parent = self.gw.trace_parent(headers)
        version = self.gw.routing.choose(call.model, self.gw.sticky_key(call.config, headers))
        self.gw.metrics.in_flight.labels(call.model).inc()
        streaming = payload.get("stream") is True and operation != "embeddings"
        try:
            if streaming:
                return await self._stream(call, version)
            return await self._plain(call, version)
        except ClientDisconnected:  # recorded and counted where it happened; nobody reads this
            return Response(status_code=499)
        finally:
            if not call.relay_settles:  # a relayed stream counts itself out and settles when it ends
                self.gw.metrics.in_flight.labels(call.model).dec()
                self.gw.settle_later(call.admission, call.model, call.cost_usd, call.used_tokens)

    def _model(self, name: str, key: KeyRecord | None) -> ModelConfig:
        config = self.gw.config.models.get(name)
        if config is None:
            known = sorted(self.gw.policies.visible(key, self._openai_models()))
            raise GatewayError(
                404,
                f"model '{name}' does not exist; this gateway serves {known}",
                param="model",
                code="model_not_found",
            )
        if config.protocol != "openai":
            raise GatewayError(
                400,
                f"model '{name}' speaks the Open Inference Protocol; send it to /v2/models/{name}/infer",
                param="model",
            )
        return config

    def _candidates(self, call: Call, first: str) -> list[tuple[str, bool]]:
        """(version, is_fallback) in the order to try them; versions with an open breaker skipped."""
        route = self.gw.routing.models[call.model]
        if not route.fallback and not route.open_breakers:
            return [(first, False)]
        chain = [] if self.gw.routing.breaker_open(call.model, first) else [(first, False)]
        return chain + [(v, True) for v in route.fallbacks(first) if (v, False) not in chain]

    def _body(self, call: Call, version: str, include_usage: bool = False) -> bytes:
        payload = call.payload
        upstream_model = call.config.versions[version].upstream_model
        if not upstream_model and not include_usage and call.raw:
            return call.raw  # unchanged: forward the client's bytes as they came
        if upstream_model or include_usage:
            payload = dict(payload)
            if upstream_model:
                payload["model"] = upstream_model
            if include_usage:
                payload["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
        return orjson.dumps(payload)

    async def _attempt(
        self,
        call: Call,
        version: str,
        is_fallback: bool,
        body: bytes,
        start: Callable[[HttpVersion, bytes], Awaitable[T]],
    ) -> tuple[Route, HttpVersion, T]:
        """One version of the fallback chain: time the upstream call; a failure is recorded,
        counted and raised for the chain to move on. If the client leaves meanwhile, the call
        is cancelled, recorded as such and counted as 499, and `ClientDisconnected` ends the chain."""
        backend = self.gw.versions[(call.model, version)]
        assert isinstance(backend, HttpVersion)
        route = self.gw.route_of(call.model, version, is_fallback)
        if is_fallback:
            self.gw.metrics.fallbacks.labels(call.model, version).inc()
        t = time.perf_counter()
        try:
            if call.receive is None:
                return route, backend, await start(backend, body)
            return route, backend, await cancel_on_disconnect(call.receive, start(backend, body))
        except GatewayError as err:
            self.gw.metrics.upstream_errors.labels(call.model, version, str(err.status)).inc()
            self._record(call, version, route, None, None, error=err.message)
            raise
        except ClientDisconnected as gone:
            self._record(call, version, route, None, None, error=str(gone), cancelled=True)
            self.gw.metrics.requests.labels(call.model, version, CANCELLED_STATUS_CLASS).inc()
            raise
        finally:
            call.upstream_s += time.perf_counter() - t

    async def _plain(self, call: Call, first: str) -> Response:
        error = GatewayError(503, f"no version of '{call.model}' is available (breakers open)")
        for version, is_fallback in self._candidates(call, first):
            body = self._body(call, version)
            try:
                route, backend, reply = await self._attempt(
                    call,
                    version,
                    is_fallback,
                    body,
                    lambda b, payload: b.call(call.path, payload, call.deadline, call.forward_headers),
                )
            except GatewayError as err:
                error = err
                continue
            if reply.attempts > 1:
                self.gw.metrics.retries.labels(call.model, version).inc(reply.attempts - 1)
            data = self._parse(reply)
            if reply.status == 200 and data is None:
                invalid = GatewayError(502, f"upstream {call.model}/{version} ({reply.replica}) returned invalid JSON")
                self._record(call, version, route, reply, None, error=invalid.message)
                error = invalid
                continue
            record = self._record(call, version, route, reply, data)
            self._maybe_shadow(call, version)
            self.gw.metrics.requests.labels(call.model, version, f"{reply.status // 100}xx").inc()
            return Response(
                reply.body,
                reply.status,
                self._headers(call, version, route, record),
                media_type=reply.content_type or "application/json",
            )
        self.gw.metrics.requests.labels(call.model, first, f"{error.status // 100}xx").inc()
        return openai_error(error)

    @staticmethod
    def _parse(reply: Reply) -> dict[str, Any] | None:
        if "json" not in (reply.content_type or ""):
            return None
        try:
            data = orjson.loads(reply.body)
        except orjson.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    def _headers(self, call: Call, version: str, route: Route, record: InferenceRecord | None) -> dict[str, str]:
        overhead = max(0.0, time.perf_counter() - call.started - call.upstream_s)
        self.gw.metrics.overhead.labels(call.model).observe(overhead)
        headers = {
            "x-aisre-version": version,
            "x-aisre-route": str(route),
            "x-aisre-overhead-ms": f"{overhead * 1000:.3f}",
        }
        if call.admission is not None and call.admission.headers:
            headers.update(call.admission.headers)
        if record is not None:
            headers["x-aisre-record-id"] = record.id
        return headers

    # -- records ---------------------------------------------------------------------------
    def _record(
        self,
        call: Call,
        version: str,
        route: Route,
        reply: Reply | None,
        data: dict[str, Any] | None,
        error: str | None = None,
        output_text: str | None = None,
        cancelled: bool = False,
        **timing: Any,
    ) -> InferenceRecord:
        usage = (data or {}).get("usage") or {}
        ok = error is None and reply is not None and reply.status < 400
        if error is None and reply is not None and reply.status >= 400:
            error = f"upstream answered {reply.status}"
        tokens_in = int_or_none(usage.get("prompt_tokens"))
        tokens_out = int_or_none(usage.get("completion_tokens"))
        cost = self.gw.policies.price(call.model, version, tokens_in, tokens_out) if ok else None
        record = InferenceRecord(
            model=call.model,
            version=version,
            operation=call.operation,
            route=route,
            status=Status.CANCELLED if cancelled else Status.OK if ok else Status.ERROR,
            error=error,
            latency_s=time.perf_counter() - call.started,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            cost_usd=cost,
            key_id=call.key_id,
            replica=reply.replica if reply else None,
            tags=dict(call.tags),
            ts=self.gw.clock.now(),
            **timing,
        )
        if ok and route != Route.SHADOW:  # what the caller is charged for (shadows are the operator's cost)
            call.cost_usd = cost
            if tokens_in is not None or tokens_out is not None:
                call.used_tokens = (tokens_in or 0) + (tokens_out or 0)
        if call.config.log_content:
            record.inputs = _content_in(call.payload)
            record.output_text = output_text if output_text is not None else _content_out(data or {})
        self.gw.record(record, call.trace_parent)
        return record

    # -- shadow ----------------------------------------------------------------------------
    def _maybe_shadow(self, call: Call, served: str) -> None:
        shadow = self.gw.routing.shadow_for(call.model, served)
        if shadow is None:
            return
        if not self.gw.spawn(self._shadow(call, shadow)):
            self.gw.metrics.shadow.labels(call.model, shadow, "skipped").inc()

    async def _shadow(self, call: Call, version: str) -> None:
        """Mirror the request; the answer is recorded, never returned, and never waited for."""
        backend = self.gw.versions[(call.model, version)]
        assert isinstance(backend, HttpVersion)
        payload = dict(call.payload)
        payload.pop("stream", None)
        payload.pop("stream_options", None)
        deadline = time.monotonic() + self.gw.config.gateway.deadline_s
        shadow_call = Call(
            call.model,
            call.config,
            payload,
            call.operation,
            call.path,
            time.perf_counter(),
            deadline,
            key_id=call.key_id,
            trace_parent=call.trace_parent,
            tags=call.tags,
        )
        try:
            reply = await backend.call(call.path, self._body(shadow_call, version), shadow_call.deadline)
        except GatewayError as err:
            self._record(shadow_call, version, Route.SHADOW, None, None, error=err.message)
            self.gw.metrics.shadow.labels(call.model, version, "error").inc()
            return
        self._record(shadow_call, version, Route.SHADOW, reply, self._parse(reply))
        self.gw.metrics.shadow.labels(call.model, version, "ok" if reply.status < 400 else "error").inc()

    # -- streaming ---------------------------------------------------------------------------
    async def _stream(self, call: Call, first: str) -> Response:
        client_wants_usage = bool((call.payload.get("stream_options") or {}).get("include_usage"))
        error = GatewayError(503, f"no version of '{call.model}' is available (breakers open)")
        for version, is_fallback in self._candidates(call, first):
            body = self._body(call, version, include_usage=True)
            try:
                route, backend, stream = await self._attempt(
                    call,
                    version,
                    is_fallback,
                    body,
                    lambda b, payload: b.open_stream(call.path, payload, call.deadline, call.forward_headers),
                )
            except GatewayError as err:
                error = err
                continue
            if stream.attempts > 1:
                self.gw.metrics.retries.labels(call.model, version).inc(stream.attempts - 1)
            response = stream.response
            if response.status != 200:  # a status not worth retrying: its body (read, capped, upstream) is the answer
                body = stream.body
                backend.finish_stream(stream, ok=response.status < 500)
                reply = Reply(response.status, body, response.content_type, stream.replica.url, 0.0, stream.attempts)
                self._record(call, version, route, reply, None)
                self.gw.metrics.requests.labels(call.model, version, f"{response.status // 100}xx").inc()
                return Response(
                    body, response.status, self._headers(call, version, route, None), media_type=response.content_type
                )
            self._maybe_shadow(call, version)
            call.relay_settles = True
            headers = self._headers(call, version, route, None)
            return StreamRelay(self, call, version, route, backend, stream, client_wants_usage, headers)
        self.gw.metrics.requests.labels(call.model, first, f"{error.status // 100}xx").inc()
        return openai_error(error)


def _content_in(payload: dict[str, Any]) -> Any:
    for key in ("messages", "prompt", "input"):
        if key in payload:
            return payload[key]
    return None


def _content_out(data: dict[str, Any]) -> str | None:
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return None
    first = choices[0]
    message = first.get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), str):
        return message["content"]
    return first.get("text") if isinstance(first.get("text"), str) else None
