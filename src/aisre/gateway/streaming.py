"""Relaying one upstream SSE stream to the client, event by event, and recording how it ended.

By the time a relay starts, the upstream has sent a well-formed first event (see
`upstream.open_stream`): failures before that were retried or fell back. After it the
client has bytes, so a failure can no longer be hidden: the relay sends OpenAI's error event
(the SDKs raise `APIError` on it) and ends the stream, without `[DONE]`. Every stream ends
in exactly one of three ways, each recorded and counted once:

| how it ended | record status | aisre_gateway_requests_total status_class |
| --- | --- | --- |
| `[DONE]` relayed | ok | 2xx |
| upstream broke off, stalled, sent garbage, an error event, or ended without `[DONE]` | error | 5xx |
| the client disconnected | cancelled | 499 |
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from aisre.errors import ClientDisconnected, ResponseTooLarge
from aisre.gateway.disconnect import cancel_on_disconnect
from aisre.gateway.metrics import CANCELLED_STATUS_CLASS
from aisre.gateway.pipeline import Answer, Candidate, InferenceRequest
from aisre.gateway.sse import Event, error_event, read_event, upstream_error
from aisre.gateway.upstream import HttpVersion, Stream
from aisre.records import Status

if TYPE_CHECKING:
    from aisre.gateway.openai_api import OpenAIApi


@dataclass(slots=True)
class _Ending:
    """How a stream ended: the record's status and error, the metric's status class, and the
    error event still owed to the client (`code` set), if any."""

    status: Status
    message: str | None = None
    status_class: str = "2xx"
    code: str | None = None  # set: send the client an error event with this code
    error_type: str = "upstream_error"


class StreamRelay(Response):
    """The ASGI response of one relayed stream: headers at once, then each upstream event as it
    completes; usage chunks the client did not ask for are dropped; tokens and timing noted."""

    media_type = "text/event-stream"

    def __init__(
        self,
        api: OpenAIApi,
        call: InferenceRequest,
        candidate: Candidate,
        backend: HttpVersion,
        stream: Stream,
        client_wants_usage: bool,
        headers: dict[str, str],
    ) -> None:
        self.status_code = 200
        self.background = None
        self.init_headers({**headers, "cache-control": "no-cache", "x-accel-buffering": "no"})
        self.api, self.call, self.candidate, self.version = api, call, candidate, candidate.version
        self.backend, self.stream, self.client_wants_usage = backend, stream, client_wants_usage
        self.first_token_at: float | None = None
        self.last_token_at: float | None = None
        self.usage: dict[str, Any] = {}
        self.text: list[str] = []
        self.where = f"upstream {call.model}/{self.version} ({stream.replica.url})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ending = _Ending(Status.ERROR, "the relay was interrupted (gateway stopping)", "5xx")
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            ending = await cancel_on_disconnect(receive, self._relay(send), "the end of the stream")
        except (ClientDisconnected, OSError):  # OSError: servers that raise on sending to a closed client
            relayed = self.stream.events.count if self.stream.events else 0
            message = f"client closed the stream after {relayed} events"
            ending = _Ending(Status.CANCELLED, message, CANCELLED_STATUS_CLASS)
        finally:
            self._finish(ending)

    async def _relay(self, send: Send) -> _Ending:
        """Relay until the upstream is done or fails; a failure ends with an error event for the client."""
        ending = await self._pump(send)
        if ending.code is not None and ending.message is not None:
            body = error_event(ending.message, ending.error_type, ending.code)
            await send({"type": "http.response.body", "body": body, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return ending

    async def _pump(self, send: Send) -> _Ending:
        events = self.stream.events
        assert events is not None
        while True:
            try:
                raw = await anext(events)
            except StopAsyncIteration:
                return self._failed("truncated", f"ended the stream without [DONE] after {events.count} events")
            except TimeoutError:
                return self._failed("timeout", f"sent nothing for too long after {events.count} events", 504)
            except ResponseTooLarge as exc:
                return self._failed("too_large", f"sent {exc} after {events.count} events")
            except (aiohttp.ClientError, OSError) as exc:
                name = type(exc).__name__
                return self._failed("broken", f"broke off the stream after {events.count} events ({name})")
            event = read_event(raw)
            if event.problem is not None:
                return self._failed("malformed", f"sent {event.problem} after {events.count - 1} events")
            if self._note(event):
                await send({"type": "http.response.body", "body": raw, "more_body": True})
            for obj in event.objects:
                if (message := upstream_error(obj)) is not None:  # relayed as sent: the client raises on it
                    return _Ending(Status.ERROR, f"{self.where} sent an error event: {message}", "5xx")
            if event.done:
                return _Ending(Status.OK)

    def _failed(self, kind: str, what: str, status: int = 502) -> _Ending:
        """An upstream failure after the first byte: recorded, counted as 5xx, told to the client."""
        message = f"{self.where} {what}; the answer is incomplete"
        error_type = "timeout" if status == 504 else "upstream_error"
        return _Ending(Status.ERROR, message, f"{status // 100}xx", f"upstream_stream_{kind}", error_type)

    def _note(self, event: Event) -> bool:
        """Note tokens and usage; False for the usage chunk the client did not ask for."""
        keep = True
        for obj in event.objects:
            choices = obj.get("choices") or []
            if obj.get("usage"):
                self.usage = obj["usage"]
                if not choices and not self.client_wants_usage:
                    keep = False
            for choice in choices:
                if not isinstance(choice, dict):
                    continue
                piece = (choice.get("delta") or {}).get("content") if "delta" in choice else choice.get("text")
                if piece and isinstance(piece, str):
                    now = time.perf_counter()
                    self.first_token_at = self.first_token_at or now
                    self.last_token_at = now
                    if self.call.config.log_content:
                        self.text.append(piece)
        return keep

    def _finish(self, ending: _Ending) -> None:
        """Release the upstream, record the stream once (through the pipeline), count it once, settle the caller."""
        call, stream = self.call, self.stream
        if ending.status is Status.OK:
            stream.response.release()
            self.backend.finish_stream(stream, ok=True)
        else:
            stream.response.close()  # unread rest: the connection cannot be reused
            if ending.status is Status.CANCELLED:
                self.backend.abandon_stream(stream)
            else:
                self.backend.finish_stream(stream, ok=False)
        out_tokens = int_or_none(self.usage.get("completion_tokens"))
        ttft = None if self.first_token_at is None else self.first_token_at - call.started
        tpot = None
        if self.first_token_at is not None and self.last_token_at is not None and out_tokens and out_tokens > 1:
            tpot = (self.last_token_at - self.first_token_at) / (out_tokens - 1)
        answer = Answer(200, stream.replica.url, stream.attempts, media_type="text/event-stream")
        row = self.api.row(call, self.usage, "".join(self.text) if call.config.log_content else None)
        pipeline = self.api.pipeline
        cancelled = ending.status is Status.CANCELLED
        pipeline.record(call, self.candidate, [row], answer, ending.message, cancelled, ttft_s=ttft, tpot_s=tpot)
        pipeline.relay_ended(call, self.version, ending.status_class)


def int_or_none(value: Any) -> int | None:
    """A token count as sent (a non-negative int), or None for anything else."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
