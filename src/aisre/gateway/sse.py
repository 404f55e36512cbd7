"""Server-sent events as OpenAI streams them: splitting bytes into events, telling a
well-formed event from garbage, and the error event that makes clients raise.

An OpenAI stream is a sequence of `data: <JSON object>` events ending with `data: [DONE]`.
The official SDKs raise `APIError` on an event whose JSON has an `"error"` key, and return
normally when the stream simply ends; so a stream that fails after its first byte must end
with such an error event, never silently.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from aisre.errors import ResponseTooLarge

DONE = b"[DONE]"
#: The largest single event accepted from an upstream, in bytes. OpenAI's chunks are hundreds of
#: bytes (a few KB with logprobs or tool calls); an upstream that never ends an event must not
#: fill the gateway's memory. Streams as a whole have no size limit (their read timeout applies).
MAX_EVENT_BYTES = 1024 * 1024
# Lines an SSE event may hold besides data (comments start with ':'); anything else is garbage.
_FIELDS = (b"data:", b"event:", b"id:", b"retry:", b":")
_BARE_FIELDS = frozenset({b"data", b"event", b"id", b"retry"})
_SHOWN_BYTES = 60  # how much of a malformed event an error message quotes


class SseEvents:
    """Complete events (each ending in a blank line) from a stream of byte chunks, CRLF normalised.

    An async iterator; a last event missing its blank line is still yielded (completed) when the
    bytes end, so a `data: [DONE]` without the final newline is not lost. An event (complete or
    still arriving) over `max_event_bytes` raises `ResponseTooLarge`.
    """

    def __init__(self, chunks: AsyncIterable[bytes], max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._chunks: AsyncIterator[bytes] = aiter(chunks)
        self.max_event_bytes = max_event_bytes
        self._buffer = b""
        self._ready: deque[bytes] = deque()
        self._ended = False
        self.count = 0  # events handed out so far

    def __aiter__(self) -> SseEvents:
        return self

    async def __anext__(self) -> bytes:
        while not self._ready:
            if self._ended:
                raise StopAsyncIteration
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                self._ended = True
                rest, self._buffer = self._buffer.strip(b"\n"), b""
                if rest:
                    self._ready.append(rest + b"\n\n")
                continue
            self._feed(chunk)
        self.count += 1
        return self._ready.popleft()

    def push_back(self, event: bytes) -> None:
        """Put an event back to be read again (the first one, checked before the relay starts)."""
        self._ready.appendleft(event)
        self.count -= 1

    def _feed(self, chunk: bytes) -> None:
        buffer = self._buffer + chunk
        if b"\r" in buffer:  # on the joined bytes: a chunk may end between \r and \n
            buffer = buffer.replace(b"\r\n", b"\n")
        start = 0
        while (cut := buffer.find(b"\n\n", start)) >= 0:
            if cut - start > self.max_event_bytes:
                self._too_large()
            if cut > start:  # blank lines between events are no event
                self._ready.append(buffer[start : cut + 2])
            start = cut + 2
        self._buffer = buffer[start:]
        if len(self._buffer) > self.max_event_bytes + 1:  # + 1: the first \n of its blank line may be here
            self._too_large()

    def _too_large(self) -> None:
        self._buffer = b""
        raise ResponseTooLarge(f"a server-sent event over {self.max_event_bytes} bytes")


@dataclass(slots=True)
class Event:
    """One event read: its JSON objects (`data` lines), whether it was `[DONE]`, or what is wrong."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    done: bool = False
    problem: str | None = None


def read_event(event: bytes) -> Event:
    """Parse one event; `problem` says why it is not part of an OpenAI stream (then nothing else is set)."""
    parsed = Event()
    for line in event.split(b"\n"):
        if not line:
            continue
        if line.startswith(b"data:"):
            data = line[5:].strip()
            if data == DONE:
                parsed.done = True
                continue
            try:
                obj = orjson.loads(data)
            except orjson.JSONDecodeError:
                return Event(problem=f"a data line that is not JSON: {_shown(data)}")
            if not isinstance(obj, dict):
                return Event(problem=f"a data line that is not a JSON object: {_shown(data)}")
            parsed.objects.append(obj)
        elif not (line.startswith(_FIELDS) or line in _BARE_FIELDS):
            return Event(problem=f"a line that is not server-sent events: {_shown(line)}")
    return parsed


def first_event_problem(event: bytes) -> str | None:
    """Why the first event of a stream is unusable (then another replica or version is tried), or None."""
    problem = read_event(event).problem
    return None if problem is None else f"sent {problem}"


def error_event(message: str, type_: str, code: str) -> bytes:
    """The event that ends a failed stream: OpenAI's error object, which the SDKs raise as `APIError`."""
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return b"data: " + orjson.dumps(body) + b"\n\n"


def upstream_error(obj: dict[str, Any]) -> str | None:
    """The message of an error event sent by the upstream itself, or None for an ordinary chunk."""
    error = obj.get("error")
    if not error:
        return None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else str(error)[:200]


def _shown(data: bytes) -> str:
    text = data[:_SHOWN_BYTES].decode("utf-8", "replace")
    return repr(text + ("..." if len(data) > _SHOWN_BYTES else ""))
