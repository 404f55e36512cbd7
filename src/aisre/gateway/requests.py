"""Reading and validating request bodies: size limit, JSON, and the fields each endpoint needs.

Validation is deliberately light: the fields the gateway itself relies on are checked and
named in errors; everything else passes through to the upstream, which knows its API.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from aisre.gateway.errors import GatewayError


async def read_json(request: Request, limit: int, idle_timeout_s: float = 60.0) -> tuple[dict[str, Any], bytes]:
    """The body as a JSON object (and its bytes); 413 over `limit`, 400 when not JSON."""
    body = await read_body(request, limit, idle_timeout_s)
    return parse_json_object(body), body


async def read_body(request: Request, limit: int, idle_timeout_s: float = 60.0) -> bytes:
    """The whole body; 413 over `limit` (checked against content-length first, then while reading);
    408 when no byte of it arrives for `idle_timeout_s` (a slow-body client cannot hold a worker)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise GatewayError(400, f"content-length header is not a number: {declared!r}") from None
        if size > limit:
            raise GatewayError(413, f"request body is {size} bytes; the limit is {limit} bytes")
    body = bytearray()
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(idle_timeout_s) as idle:  # one timer, moved on each chunk
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise GatewayError(413, f"request body exceeds the limit of {limit} bytes")
                idle.reschedule(loop.time() + idle_timeout_s)
    except TimeoutError:
        raise GatewayError(408, f"no byte of the request body arrived for {idle_timeout_s:g} s") from None
    except ClientDisconnect:  # the client left (or shutdown closed its unfinished request): nobody reads this
        raise GatewayError(400, "the connection closed before the request body was complete") from None
    return bytes(body)


def parse_json_object(body: bytes, what: str = "request body") -> dict[str, Any]:
    """`body` as a JSON object; 400 naming `what` otherwise."""
    if not body:
        raise GatewayError(400, f"{what} is empty; expected a JSON object")
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(400, f"{what} is not valid JSON: {exc}") from None
    if not isinstance(payload, dict):
        raise GatewayError(400, f"{what} must be a JSON object, got {type(payload).__name__}")
    return payload


def _field(payload: dict[str, Any], name: str, kinds: type | tuple[type, ...], what: str, required: bool = True) -> Any:
    if name not in payload:
        if required:
            raise GatewayError(400, f"missing required field '{name}' ({what})", param=name)
        return None
    value = payload[name]
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in _as_tuple(kinds)):
        raise GatewayError(400, f"field '{name}' must be {what}, got {type(value).__name__}", param=name)
    return value


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def _common(payload: dict[str, Any]) -> None:
    model = _field(payload, "model", str, "a model name string")
    if not model:
        raise GatewayError(400, "field 'model' must not be empty", param="model")
    _field(payload, "stream", bool, "true or false", required=False)
    for name in ("max_tokens", "max_completion_tokens", "n"):
        value = _field(payload, name, int, "a positive integer", required=False)
        if value is not None and value < 1:
            raise GatewayError(400, f"field '{name}' must be >= 1, got {value}", param=name)
    options = _field(payload, "stream_options", dict, "an object", required=False)
    if options is not None and "include_usage" in options and not isinstance(options["include_usage"], bool):
        raise GatewayError(
            400, "field 'stream_options.include_usage' must be true or false", param="stream_options.include_usage"
        )


def validate_chat(payload: dict[str, Any]) -> None:
    _common(payload)
    messages = _field(payload, "messages", list, "a list of message objects")
    if not messages:
        raise GatewayError(400, "field 'messages' must not be empty", param="messages")
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            raise GatewayError(400, f"messages[{i}] must be an object, got {type(m).__name__}", param=f"messages[{i}]")
        if not isinstance(m.get("role"), str):
            raise GatewayError(400, f"messages[{i}].role must be a string", param=f"messages[{i}].role")


def validate_completion(payload: dict[str, Any]) -> None:
    _common(payload)
    prompt = _field(payload, "prompt", (str, list), "a string or a list of strings")
    if isinstance(prompt, list) and not all(isinstance(p, str | int) for p in prompt):
        raise GatewayError(400, "field 'prompt' must be a string or a list of strings", param="prompt")


def validate_embeddings(payload: dict[str, Any]) -> None:
    _common(payload)
    value = _field(payload, "input", (str, list), "a string or a list of strings")
    if isinstance(value, list) and not value:
        raise GatewayError(400, "field 'input' must not be empty", param="input")
