"""An OpenAI-compatible mock server (chat, completions, embeddings, models) with deterministic replies and faults."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response
from starlette.types import Receive, Scope, Send

from aisre.testing.control import control_routes, json_response
from aisre.testing.faults import GARBAGE_BODY, injected_fault, pace
from aisre.testing.openai_payloads import (
    BadRequest,
    Generation,
    chat_response,
    completion_response,
    embeddings_response,
    error_body,
    new_id,
    parse_chat,
    parse_completion,
    parse_embeddings,
    parse_json_object,
    reply_length,
    reply_words,
    usage,
)
from aisre.testing.settings import MockSettings
from aisre.testing.state import MockState, Tracked

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_error(status: int, message: str, param: str | None = None, code: str | None = None) -> Response:
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return json_response(error_body(message, kind, param, code), status)


def _bad_request(exc: BadRequest) -> Response:
    return json_response(error_body(exc.message, exc.type, exc.param, exc.code), exc.status)


class SSEResponse(Response):
    """Server-sent events, one `data:` event per item; may stop early to imitate a dropped
    connection, or slip in a line that is not SSE (an HTML error page from a proxy, say)."""

    media_type = "text/event-stream"

    def __init__(
        self,
        events: AsyncIterator[bytes],
        request: Request,
        truncate_after: int | None,
        garbage_after: int | None = None,
    ) -> None:
        self.events = events
        self.request = request
        self.truncate_after = truncate_after
        self.garbage_after = garbage_after
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        sent = 0
        try:
            async for event in self.events:
                if self.truncate_after is not None and sent >= self.truncate_after:
                    return  # response left incomplete: uvicorn closes the connection, no terminating chunk
                if await self.request.is_disconnected():
                    return
                if sent == self.garbage_after:
                    await send({"type": "http.response.body", "body": GARBAGE_BODY + b"\n\n", "more_body": True})
                await send({"type": "http.response.body", "body": b"data: " + event + b"\n\n", "more_body": True})
                sent += 1
        finally:
            await self.events.aclose()  # type: ignore[attr-defined]
        await send({"type": "http.response.body", "body": b"", "more_body": False})


#: The reply of a refused generation (`MockSettings.refusal_rate`).
REFUSAL = "I'm sorry, but I can't help with that."


async def _chat_events(
    model: str, words: list[str], finish: str, gen: Generation, tokens_per_s: float | None
) -> AsyncIterator[bytes]:
    base: dict[str, Any] = {
        "id": new_id("chatcmpl"),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_mock",
    }
    if gen.include_usage:
        base["usage"] = None  # OpenAI sends null usage on every chunk but the last when include_usage is set

    def chunk(index: int, delta: dict[str, Any], finish_reason: str | None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return orjson.dumps({**base, "choices": [choice]})

    for i in range(gen.n):
        yield chunk(i, {"role": "assistant", "content": "", "refusal": None}, None)
    started = asyncio.get_running_loop().time()
    for k, word in enumerate(words):
        await pace(started, k, tokens_per_s)
        for i in range(gen.n):
            yield chunk(i, {"content": word if k == 0 else " " + word}, None)
    for i in range(gen.n):
        yield chunk(i, {}, finish)
    if gen.include_usage:
        yield orjson.dumps({**base, "choices": [], "usage": usage(sum(gen.prompt_tokens), len(words) * gen.n)})
    yield b"[DONE]"


async def _completion_events(
    model: str, words: list[str], finish: str, gen: Generation, tokens_per_s: float | None
) -> AsyncIterator[bytes]:
    base: dict[str, Any] = {
        "id": new_id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_mock",
    }
    if gen.include_usage:
        base["usage"] = None
    choices = gen.n * len(gen.prompt_tokens)

    def chunk(index: int, text: str, finish_reason: str | None) -> bytes:
        choice = {"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}
        return orjson.dumps({**base, "choices": [choice]})

    started = asyncio.get_running_loop().time()
    for k, word in enumerate(words):
        await pace(started, k, tokens_per_s)
        for i in range(choices):
            yield chunk(i, word if k == 0 else " " + word, None)
    for i in range(choices):
        yield chunk(i, "", finish)
    if gen.include_usage:
        yield orjson.dumps({**base, "choices": [], "usage": usage(sum(gen.prompt_tokens), len(words) * choices)})
    yield b"[DONE]"


def openai_app(settings: MockSettings | None = None) -> Starlette:
    """A Starlette app speaking the OpenAI API; its live state is at `app.state.mock` (a `MockState`)."""
    state = MockState(settings or MockSettings())

    def model_mismatch(requested: str) -> Response | None:
        if state.settings.strict_model and requested != state.settings.model:
            return openai_error(
                404, f"The model `{requested}` does not exist or you do not have access to it.", code="model_not_found"
            )
        return None

    async def generate(request: Request, parse: Any, respond: Any, events: Any) -> Response:
        fault = await injected_fault(request, state, openai_error)
        if fault is not None:
            return fault
        try:
            gen = parse(parse_json_object(await request.body()))
        except BadRequest as exc:
            return _bad_request(exc)
        settings = state.settings
        if (refused := model_mismatch(gen.model)) is not None:
            return refused
        count, finish = reply_length(settings.completion_tokens, gen.max_tokens)
        words = reply_words(count, settings.replica_id)
        if settings.refusal_rate > 0 and state.rng.random() < settings.refusal_rate:
            words, finish = REFUSAL.split(), "stop"  # what the LLM-quality refusal patterns look for
        if gen.stream:
            stream = events(settings.model, words, finish, gen, settings.tokens_per_s)
            return SSEResponse(stream, request, settings.truncate_stream_after, settings.garbage_stream_after)
        return json_response(respond(settings.model, words, finish, gen))

    async def chat(request: Request) -> Response:
        return await generate(request, parse_chat, chat_response, _chat_events)

    async def completions(request: Request) -> Response:
        return await generate(request, parse_completion, completion_response, _completion_events)

    async def embeddings(request: Request) -> Response:
        fault = await injected_fault(request, state, openai_error)
        if fault is not None:
            return fault
        try:
            req = parse_embeddings(parse_json_object(await request.body()))
        except BadRequest as exc:
            return _bad_request(exc)
        if (refused := model_mismatch(req.model)) is not None:
            return refused
        return json_response(embeddings_response(state.settings.model, req, state.settings.embedding_dim))

    async def models(request: Request) -> Response:
        fault = await injected_fault(request, state, openai_error)
        if fault is not None:
            return fault
        entry = {"id": state.settings.model, "object": "model", "created": int(state.started_at), "owned_by": "aisre"}
        return json_response({"object": "list", "data": [entry]})

    async def health(request: Request) -> Response:
        ok = state.settings.healthy
        response = json_response({"status": "ok" if ok else "unhealthy"}, 200 if ok else 503)
        if state.settings.replica_id:
            response.headers["x-mock-replica"] = state.settings.replica_id
        return response

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = f"{exc.detail}: {request.method} {request.url.path}"
        return openai_error(exc.status_code, message, code="unknown_url" if exc.status_code == 404 else None)

    def api(path: str, handler: Any, method: str) -> Route:
        return Route(path, Tracked(request_response(handler), state, path), methods=[method])

    routes = [
        api("/v1/chat/completions", chat, "POST"),
        api("/v1/completions", completions, "POST"),
        api("/v1/embeddings", embeddings, "POST"),
        api("/v1/models", models, "GET"),
        Route("/health", health, methods=["GET"]),
        *control_routes(state),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.mock = state
    return app
