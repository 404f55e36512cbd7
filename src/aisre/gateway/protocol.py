"""The gateway's HTTP/1.1 server protocol: uvicorn's httptools protocol with the limits it lacks.

uvicorn's `HttpToolsProtocol` (the fast path: httptools' C parser on uvloop) has no limit on
the size of a request's headers and no deadline for receiving them: a client could send
32 MB of headers (httptools buffers a header by concatenation, so that is also quadratic
CPU), or hold a connection open forever by sending a byte now and then (slowloris). Its
graceful shutdown also waits for requests whose body has not finished arriving, which may
never happen. `GatewayHttpProtocol` adds, and changes, only this:

- **Header size.** Bytes are counted as they arrive, *before* the parser sees them, from
  the first byte of a request until its headers are complete (request line + headers).
  Over `max_header_bytes` the client gets 431 and the connection is closed.
- **Header deadline.** A request's headers must be complete within `header_timeout_s` of
  their first byte (of the connection, for a new one); otherwise 408 (or just a close if
  nothing was sent) and the connection is closed. No timer is armed when the headers
  arrive in one read, the usual case, so the fast path costs nothing.
- **Shutdown.** Connections that are idle, still sending headers, or still sending a
  body are closed at once; only requests fully received keep running (up to uvicorn's
  `timeout_graceful_shutdown`) and get `connection: close` on their response.

uvicorn instantiates the protocol class itself, so the limits travel as keyword arguments
of a `functools.partial` (see `http_protocol`), which also pickles into `--workers N`
processes.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from aisre.config.gateway import GatewayConfig


@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Limits on what a client may send before the gateway sees a request."""

    max_header_bytes: int = 64 * 1024
    header_timeout_s: float = 10.0

    @classmethod
    def from_config(cls, config: GatewayConfig) -> ServerLimits:
        return cls(config.max_header_bytes, config.header_timeout_s)


def http_protocol(config: GatewayConfig) -> Any:
    """What to pass as uvicorn's `http=`: the gateway protocol bound to the config's limits."""
    return functools.partial(GatewayHttpProtocol, limits=ServerLimits.from_config(config))


class GatewayHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus a header size limit, a header deadline and a prompt shutdown."""

    def __init__(self, *args: Any, limits: ServerLimits = ServerLimits(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        self._head_open = True  # the bytes arriving now belong to a request line or headers
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None

    # -- connection ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()  # a connection that never sends a byte is closed too

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._head_open:
            super().data_received(data)
        else:
            room = self.limits.max_header_bytes - self._head_bytes
            if len(data) > room:
                self._data_past_room(data, room)
                return
            self._head_bytes += len(data)
            super().data_received(data)
        if self._head_open and self._head_timer is None and self._head_bytes:
            self._arm_head_timer()  # headers left incomplete by this read: they get a deadline

    def _data_past_room(self, data: bytes, room: int) -> None:
        """More bytes than the head may still use: the parser gets only `room` of them; if its
        headers are still incomplete the request is refused, else the rest is read as usual."""
        self._head_bytes += room
        if room > 0:
            super().data_received(data[:room])
        if self._head_open:
            limit = self.limits.max_header_bytes
            self._refuse(431, f"request line and headers exceed the limit of {limit} bytes; send smaller headers")
        elif not self.transport.is_closing():
            self.data_received(data[room:])

    # -- parser callbacks ---------------------------------------------------------------
    def on_headers_complete(self) -> None:
        self._head_open = False
        if self._head_timer is not None:  # (inline: this runs once per request)
            self._cancel_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._head_open, self._head_bytes = True, 0
        super().on_message_complete()

    # -- header deadline ----------------------------------------------------------------
    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._head_timeout)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if not self._head_open or self.transport.is_closing():
            return
        if self._responding():  # a pipelined head arrives slowly while a response is written: wait for it
            self._arm_head_timer()
            return
        if not self._head_bytes:
            self.transport.close()  # nothing sent: nothing to answer
            return
        seconds = self.limits.header_timeout_s
        self._refuse(408, f"request headers were not complete within {seconds:g} s")

    # -- shutdown -----------------------------------------------------------------------
    def shutdown(self) -> None:
        """Close at once unless a fully received request is being answered (that one finishes)."""
        cycle = self.cycle
        if cycle is None or cycle.response_complete or cycle.more_body:
            self.transport.close()
        else:
            cycle.keep_alive = False

    # -- helpers ------------------------------------------------------------------------
    def _responding(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` with a JSON error in the protocol's shape, then close."""
        self._head_open = False
        self._cancel_head_timer()
        if self._responding():  # never write into the middle of another response
            self.transport.close()
            return
        body = _error_body(status, message, oip=getattr(self, "url", b"").startswith(b"/v2"))
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"content-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n" % len(body))
        self.transport.write(b"".join(head) + body)
        self.transport.close()


def _error_body(status: int, message: str, oip: bool) -> bytes:
    """OIP's {"error": ...} for /v2 paths, OpenAI's error object otherwise (as gateway.errors renders them)."""
    if oip:
        return orjson.dumps({"error": message})
    code = "request_header_fields_too_large" if status == 431 else "request_timeout"
    return orjson.dumps({"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}})
