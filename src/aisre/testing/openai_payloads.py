"""OpenAI request validation and response/chunk builders for the mock server (no I/O here).

Tokenizer, stated once: a token is a whitespace-separated word (`len(text.split())`); a list of
integers is already tokens. Prompt tokens of a chat request are the words of every message's text.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import time
import uuid
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import orjson

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "an object",
    type(None): "null",
}


class BadRequest(Exception):
    """A request OpenAI would refuse; rendered as its error JSON."""

    def __init__(
        self,
        message: str,
        param: str | None = None,
        code: str | None = None,
        status: int = 400,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message, self.param, self.code, self.status, self.type = message, param, code, status, type


def error_body(message: str, type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


def count_tokens(text: str) -> int:
    return len(text.split())


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            f"HTTP library correctly. The OpenAI API expects a JSON payload.) ({exc})"
        ) from None
    if not isinstance(body, dict):
        raise BadRequest(
            f"Invalid type for request body: expected an object, but got {_kind(body)} instead.", code="invalid_type"
        )
    return body


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, float):
        return "a number"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    return isinstance(value, kind)


def _get(body: dict[str, Any], key: str, *kinds: type, required: bool = False) -> Any:
    """`body[key]` if it has one of `kinds` (null counts as absent unless required)."""
    if key not in body or body[key] is None:
        if required:
            raise BadRequest(f"Missing required parameter: '{key}'.", param=key, code="missing_required_parameter")
        return None
    value = body[key]
    if not any(_is(value, k) for k in kinds):
        expected = " or ".join(_TYPE_NAMES[k] for k in kinds)
        raise BadRequest(
            f"Invalid type for '{key}': expected {expected}, but got {_kind(value)} instead.",
            param=key,
            code="invalid_type",
        )
    return value


@overload
def _int_at_least(body: dict[str, Any], key: str, minimum: int, default: int) -> int: ...
@overload
def _int_at_least(body: dict[str, Any], key: str, minimum: int, default: int | None) -> int | None: ...
def _int_at_least(body: dict[str, Any], key: str, minimum: int, default: int | None) -> int | None:
    value = _get(body, key, int)
    if value is None:
        return default
    if value < minimum:
        raise BadRequest(
            f"Invalid '{key}': integer below minimum value. Expected a value >= {minimum}, but got {value} instead.",
            param=key,
            code="integer_below_min_value",
        )
    return value


def _number_within(body: dict[str, Any], key: str, low: float, high: float) -> None:
    value = _get(body, key, float)
    if value is not None and not low <= value <= high:
        raise BadRequest(
            f"Invalid '{key}': expected a value within [{low}, {high}], but got {value} instead.",
            param=key,
            code="invalid_value",
        )


@dataclass(frozen=True)
class Generation:
    """The parts of a chat or completions request that shape the reply."""

    model: str
    prompt_tokens: list[int]  # one count per prompt (chat: one)
    max_tokens: int | None
    n: int
    stream: bool
    include_usage: bool


def _common(body: dict[str, Any], max_keys: tuple[str, ...]) -> tuple[str, int | None, int, bool, bool]:
    model = _get(body, "model", str, required=True)
    max_tokens = None
    for key in max_keys:
        max_tokens = _int_at_least(body, key, 1, max_tokens)
    n = _int_at_least(body, "n", 1, 1)
    if n > 128:
        raise BadRequest(
            f"Invalid 'n': expected a value <= 128, but got {n} instead.", param="n", code="integer_above_max_value"
        )
    _number_within(body, "temperature", 0.0, 2.0)
    _number_within(body, "top_p", 0.0, 1.0)
    _number_within(body, "presence_penalty", -2.0, 2.0)
    _number_within(body, "frequency_penalty", -2.0, 2.0)
    _get(body, "seed", int)
    _get(body, "user", str)
    stop = _get(body, "stop", str, list)
    if isinstance(stop, list) and not all(isinstance(s, str) for s in stop):
        raise BadRequest(
            "Invalid type for 'stop': expected a string or an array of strings.", param="stop", code="invalid_type"
        )
    stream = bool(_get(body, "stream", bool))
    options = _get(body, "stream_options", dict)
    if options is not None and not stream:
        raise BadRequest(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            param="stream_options",
            code="invalid_value",
        )
    include_usage = bool(options and _get(options, "include_usage", bool))
    return model, max_tokens, n, stream, include_usage


def parse_chat(body: dict[str, Any]) -> Generation:
    """Validate a chat completions body; BadRequest names the offending field."""
    model, max_tokens, n, stream, include_usage = _common(body, ("max_tokens", "max_completion_tokens"))
    messages = _get(body, "messages", list, required=True)
    if not messages:
        raise BadRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    words = 0
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise BadRequest(
                f"Invalid type for '{where}': expected an object, but got {_kind(message)} instead.",
                param=where,
                code="invalid_type",
            )
        role = message.get("role")
        if not isinstance(role, str):
            raise BadRequest(
                f"Missing required parameter: '{where}.role'.", param=f"{where}.role", code="missing_required_parameter"
            )
        if role not in ROLES:
            raise BadRequest(
                f"Invalid value: '{role}'. Supported values are: {', '.join(sorted(ROLES))}.",
                param=f"{where}.role",
                code="invalid_value",
            )
        words += _content_tokens(message.get("content"), f"{where}.content", role)
    return Generation(model, [words], max_tokens, n, stream, include_usage)


def _content_tokens(content: Any, where: str, role: str) -> int:
    if content is None:
        if role in ("assistant", "function"):
            return 0  # an assistant turn may carry only tool calls
        raise BadRequest(f"Missing required parameter: '{where}'.", param=where, code="missing_required_parameter")
    if isinstance(content, str):
        return count_tokens(content)
    if not isinstance(content, list):
        raise BadRequest(
            f"Invalid type for '{where}': expected one of a string or array of objects, but got "
            f"{_kind(content)} instead.",
            param=where,
            code="invalid_type",
        )
    words = 0
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise BadRequest(
                f"Invalid type for '{where}[{j}]': expected an object with a string 'type'.",
                param=f"{where}[{j}]",
                code="invalid_type",
            )
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise BadRequest(
                    f"Invalid type for '{where}[{j}].text': expected a string.",
                    param=f"{where}[{j}].text",
                    code="invalid_type",
                )
            words += count_tokens(part["text"])
    return words


def parse_completion(body: dict[str, Any]) -> Generation:
    """Validate a (legacy) completions body: `prompt` is a string, strings, tokens, or lists of tokens."""
    model, max_tokens, n, stream, include_usage = _common(body, ("max_tokens",))
    prompt = _get(body, "prompt", str, list, required=True)
    return Generation(model, _prompt_counts(prompt, "prompt"), max_tokens, n, stream, include_usage)


def _prompt_counts(value: str | list[Any], where: str) -> list[int]:
    """Token count of each prompt (or embedding input) in `value`."""
    if isinstance(value, str):
        return [count_tokens(value)]
    if not value:
        raise BadRequest(f"Invalid '{where}': empty array.", param=where, code="empty_array")
    if all(_is(v, int) for v in value):
        return [len(value)]
    counts = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            counts.append(count_tokens(item))
        elif isinstance(item, list) and item and all(_is(v, int) for v in item):
            counts.append(len(item))
        else:
            raise BadRequest(
                f"Invalid type for '{where}[{i}]': expected a string or a non-empty array of "
                f"integers, but got {_kind(item)} instead.",
                param=f"{where}[{i}]",
                code="invalid_type",
            )
    return counts


@dataclass(frozen=True)
class EmbeddingRequest:
    model: str
    inputs: list[bytes]  # canonical bytes of each input, hashed into its vector
    prompt_tokens: int
    dimensions: int | None
    base64: bool


def parse_embeddings(body: dict[str, Any]) -> EmbeddingRequest:
    model = _get(body, "model", str, required=True)
    value = _get(body, "input", str, list, required=True)
    counts = _prompt_counts(value, "input")
    if isinstance(value, str) or all(_is(v, int) for v in value):
        items: list[Any] = [value]
    else:
        items = value
    dimensions = _int_at_least(body, "dimensions", 1, None)
    encoding = _get(body, "encoding_format", str) or "float"
    if encoding not in ("float", "base64"):
        raise BadRequest(
            f"Invalid value for 'encoding_format': expected 'float' or 'base64', got '{encoding}'.",
            param="encoding_format",
            code="invalid_value",
        )
    return EmbeddingRequest(model, [orjson.dumps(i) for i in items], sum(counts), dimensions, encoding == "base64")


def reply_words(count: int, replica_id: str) -> list[str]:
    """The deterministic reply: `mock reply [replica] 0 1 2 ...`, exactly `count` tokens long."""
    head = ["mock", "reply"] + ([f"[{replica_id}]"] if replica_id else [])
    words = head[:count]
    words.extend(str(i) for i in range(count - len(words)))
    return words


def reply_length(natural: int, max_tokens: int | None) -> tuple[int, str]:
    """Tokens to generate and the finish reason: `length` when `max_tokens` cut the natural reply short."""
    if max_tokens is not None and max_tokens < natural:
        return max_tokens, "length"
    return natural, "stop"


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


_ID_PREFIX = uuid.uuid4().hex[:12]  # per process: ids stay unique across restarts of a mock
_ID_COUNTER = itertools.count()


def new_id(prefix: str) -> str:
    return f"{prefix}-{_ID_PREFIX}{next(_ID_COUNTER):012d}"


def chat_response(model: str, words: list[str], finish: str, gen: Generation) -> dict[str, Any]:
    text = " ".join(words)
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "logprobs": None,
            "finish_reason": finish,
        }
        for i in range(gen.n)
    ]
    return {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": choices,
        "usage": usage(sum(gen.prompt_tokens), len(words) * gen.n),
    }


def completion_response(model: str, words: list[str], finish: str, gen: Generation) -> dict[str, Any]:
    text = " ".join(words)
    choices = [
        {"index": i, "text": text, "logprobs": None, "finish_reason": finish}
        for i in range(gen.n * len(gen.prompt_tokens))
    ]
    return {
        "id": new_id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_mock",
        "choices": choices,
        "usage": usage(sum(gen.prompt_tokens), len(words) * len(choices)),
    }


def embedding_vector(key: bytes, dim: int) -> np.ndarray:
    """A unit float32 vector that depends only on the input bytes and `dim`."""
    seed = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "little")
    vector = np.random.default_rng(seed).standard_normal(dim).astype(np.float32)
    return vector / np.float32(np.linalg.norm(vector))


def embeddings_response(model: str, req: EmbeddingRequest, default_dim: int) -> dict[str, Any]:
    dim = req.dimensions or default_dim
    data = []
    for i, key in enumerate(req.inputs):
        vector = embedding_vector(key, dim)
        encoded: Any = base64.b64encode(vector.astype("<f4").tobytes()).decode() if req.base64 else vector.tolist()
        data.append({"object": "embedding", "index": i, "embedding": encoded})
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": req.prompt_tokens, "total_tokens": req.prompt_tokens},
    }
