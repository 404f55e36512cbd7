"""The OpenAI-compatible API: /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/models.

A request is authenticated, read, validated and admitted here, then served by the shared
`pipeline.Pipeline` (choose a version, call it with fallback, record, shadow, settle); this
module only says how to call one OpenAI version (`call`), which record fields an answer gives
(`rows`) and renders the result or error in OpenAI's shape. Streams are relayed
event by event as they arrive (`streaming.StreamRelay`); time to first token and per output
token are measured; usage is taken from the final chunk (requested upstream even when the
client did not ask, and then kept from the client). A client that disconnects while an
upstream works for it cancels that work; the call is recorded as `cancelled`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aisre.config.gateway import ModelConfig
from aisre.errors import ClientDisconnected
from aisre.gateway.core import Gateway
from aisre.gateway.errors import GatewayError, openai_error
from aisre.gateway.metrics import REJECTED_REASONS
from aisre.gateway.pipeline import Answer, InferenceRequest, Pipeline
from aisre.gateway.requests import read_json, validate_chat, validate_completion, validate_embeddings
from aisre.gateway.streaming import StreamRelay, int_or_none
from aisre.gateway.upstream import HttpVersion, Reply
from aisre.store.keys import KeyRecord

Validator = Callable[[dict[str, Any]], None]


@dataclass
class OpenAIMessage:
    """The decoded OpenAI request, as the pipeline carries it (opaque to it)."""

    payload: dict[str, Any]
    path: str
    raw: bytes = b""  # the client's bytes, forwarded unchanged when nothing needs rewriting
    forward_headers: dict[str, str] = field(default_factory=dict)


class OpenAIApi:
    """Decodes OpenAI requests for the shared `Pipeline` and encodes its answers (and errors) as OpenAI's."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.pipeline = Pipeline(gateway)

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

    # -- decode → pipeline → encode --------------------------------------------------------
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
            name = payload["model"]
            config = self._model(name, key)
            admission = await self.pipeline.admit(key, name, config, payload)
        except GatewayError as err:
            self.gw.metrics.rejected.labels(REJECTED_REASONS.get(err.status, "bad_request")).inc()
            return openai_error(err)
        headers = request.headers
        message = OpenAIMessage(payload, path, raw)
        call = InferenceRequest(
            name,
            config,
            message,
            started,
            time.monotonic() + g.deadline_s,
            admission,
            operation=operation,
            sticky_key=self.gw.sticky_key(config, headers),
            receive=request.receive,
            streaming=payload.get("stream") is True and operation != "embeddings",
        )
        traceparent = headers.get("traceparent")
        if traceparent is not None:  # the upstream joins the caller's trace
            message.forward_headers["traceparent"] = traceparent
            call.trace_parent = self.gw.trace_parent(headers)
        try:
            served = await self.pipeline.serve(call, self)
        except GatewayError as err:
            return openai_error(err)
        except ClientDisconnected:  # recorded and counted where it happened; nobody reads this
            return Response(status_code=499)
        finally:
            self.pipeline.settle(call)  # after the response (a relayed stream settles when it ends)
        answer = served.answer
        if answer.stream is not None and answer.status == 200:
            backend = self.gw.versions[(name, served.candidate.version)]
            assert isinstance(backend, HttpVersion)
            wants_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
            return StreamRelay(self, call, served.candidate, backend, answer.stream, wants_usage, served.headers)
        return Response(answer.body, answer.status, served.headers, media_type=answer.media_type or "application/json")

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

    # -- the pipeline's ProtocolAdapter -------------------------------------------------------
    async def call(self, request: InferenceRequest, version: str) -> Answer:
        """One version's replicas: a whole answer (its JSON parsed for the record), or an open stream
        (retried until its first event; a non-200 answer to a stream comes back whole)."""
        backend = self.gw.versions[(request.model, version)]
        assert isinstance(backend, HttpVersion)
        message: OpenAIMessage = request.message
        if request.streaming:
            body = self._body(request, version, include_usage=True)
            stream = await backend.open_stream(message.path, body, request.deadline, message.forward_headers)
            response = stream.response
            replica = stream.replica.url
            if response.status == 200:
                return Answer(200, replica, stream.attempts, stream=stream)
            # A status not worth retrying: its body (read, capped, upstream) is the answer.
            backend.finish_stream(stream, ok=response.status < 500)
            return Answer(response.status, replica, stream.attempts, stream.body, response.content_type)
        body = self._body(request, version)
        reply = await backend.call(message.path, body, request.deadline, message.forward_headers)
        data = _parse(reply)
        answer = Answer(reply.status, reply.replica, reply.attempts, reply.body, reply.content_type, data=data)
        if reply.status == 200 and data is None:
            answer.invalid = f"upstream {request.model}/{version} ({reply.replica}) returned invalid JSON"
        return answer

    def rows(self, request: InferenceRequest, version: str, answer: Answer | None) -> list[dict[str, Any]]:
        data = answer.data if answer is not None and isinstance(answer.data, dict) else {}
        return [self.row(request, data.get("usage") or {}, None if answer is None else _content_out(data))]

    def row(self, request: InferenceRequest, usage: dict[str, Any], output_text: str | None) -> dict[str, Any]:
        """One record's OpenAI fields: tokens from `usage`; the messages and answer text if `log_content`."""
        row: dict[str, Any] = {
            "input_tokens": int_or_none(usage.get("prompt_tokens")),
            "output_tokens": int_or_none(usage.get("completion_tokens")),
        }
        if request.config.log_content:
            row["inputs"] = _content_in(request.message.payload)
            row["output_text"] = output_text
        return row

    def call_rule(self, request: InferenceRequest, version: str, rule: Any) -> Answer:
        """A breaker's fallback rule: `rule(messages)` (the chat messages, or the prompt for completions)
        returns the reply text, sent as a chat completion (one SSE chunk then [DONE] to a stream)."""
        message: OpenAIMessage = request.message
        text = rule(_content_in(message.payload))
        if not isinstance(text, str):
            raise GatewayError(
                502, f"fallback rule for {request.model}/{version} returned {type(text).__name__}, not text"
            )
        created = int(self.gw.clock.now())
        ident = f"chatcmpl-fallback-{created}"
        data = {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": request.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        }
        if not request.streaming:
            return Answer(200, None, 1, orjson.dumps(data), "application/json", data=data)
        chunk = {
            "id": ident,
            "object": "chat.completion.chunk",
            "created": created,
            "model": request.model,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        }
        body = b"data: " + orjson.dumps(chunk) + b"\n\ndata: [DONE]\n\n"
        return Answer(200, None, 1, body, "text/event-stream", data=data)

    def shadow_message(self, request: InferenceRequest) -> OpenAIMessage:
        """The same request as a whole response (a shadow never streams), without the caller's trace header."""
        message: OpenAIMessage = request.message
        payload = dict(message.payload)
        payload.pop("stream", None)
        payload.pop("stream_options", None)
        return OpenAIMessage(payload, message.path)

    def _body(self, request: InferenceRequest, version: str, include_usage: bool = False) -> bytes:
        message: OpenAIMessage = request.message
        payload = message.payload
        upstream_model = request.config.versions[version].upstream_model
        if not upstream_model and not include_usage and message.raw:
            return message.raw  # unchanged: forward the client's bytes as they came
        if upstream_model or include_usage:
            payload = dict(payload)
            if upstream_model:
                payload["model"] = upstream_model
            if include_usage:
                payload["stream_options"] = {**(payload.get("stream_options") or {}), "include_usage": True}
        return orjson.dumps(payload)


def _parse(reply: Reply) -> dict[str, Any] | None:
    if "json" not in (reply.content_type or ""):
        return None
    try:
        data = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


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
