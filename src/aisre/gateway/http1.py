"""A small HTTP/1.1 keep-alive client for the gateway's whole-response upstream calls.

Why not aiohttp for these: profiling `aisre serve` under load put ~30% of the gateway's
time in aiohttp's ClientSession (request and response objects, timers, traces, cookie and
redirect handling the gateway never uses). A call here is one write of pre-built header
bytes, httptools (the parser uvicorn uses) fed from an asyncio Protocol, and one future;
idle connections are reused last-in first-out per origin. Streams (SSE relayed chunk by
chunk) and health checks still use aiohttp, which handles their long-lived reads well.

Failures map onto the gateway's retry rules (a model's `retry_on`): `ConnectFailed` (nothing was
sent; safe to try another replica, `connect-failure`), `ResponseTimeout` and `ConnectionBroken` (a
reply started or was expected and did not finish: the model may have run, so they are retried only
when `retry_on` lists `timeout` / `reset`), `ResponseTooLarge` (a body over the pool's `max_response_bytes`, or
headers over `MAX_RESPONSE_HEAD_BYTES`: reading stops there and the connection is dropped,
so a runaway replica cannot fill the gateway's memory).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httptools

from aisre.errors import ConnectFailed, ConnectionBroken, ResponseTimeout, ResponseTooLarge

#: Idle keep-alive connections kept per origin (more are closed after use).
MAX_IDLE_PER_ORIGIN = 256
#: An idle connection older than this is closed, not reused: below the keep-alive timeout of common
#: servers (uvicorn 5 s, nginx 75 s), so the server never closes a connection as a request goes out
#: on it (a request that then breaks is a `reset`, not retried by default: it may have reached the model).
IDLE_TTL_S = 4.0
#: Default cap on a response body, in bytes (`gateway.max_response_bytes`).
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Cap on a response's status line + headers, in bytes (what uvicorn and nginx accept from clients is less).
MAX_RESPONSE_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a replica lives, parsed once: scheme, host, port and the path prefix of its base URL."""

    host: str
    port: int
    tls: bool
    prefix: str
    host_header: bytes

    @classmethod
    def parse(cls, base_url: str) -> Origin:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http(s)://host[:port][/path] URL, got {base_url!r}")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        host = parts.hostname
        default_port = port == (443 if tls else 80)
        shown = f"[{host}]" if ":" in host else host
        host_header = (shown if default_port else f"{shown}:{port}").encode("idna")
        return cls(host, port, tls, parts.path.rstrip("/"), host_header)


@dataclass(slots=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-case ('' if absent), as aiohttp reports it."""
        return self.headers.get("content-type", "").split(";", 1)[0].strip().lower()


class _Connection(asyncio.Protocol):
    """One TCP connection; at most one request in flight on it."""

    def __init__(self, max_body_bytes: int = MAX_RESPONSE_BYTES) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.max_body_bytes = max_body_bytes
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[Response] | None = None
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._until_close = False
        self._head_done = False
        self._head_bytes = 0
        self._body_bytes = 0

    # -- asyncio.Protocol ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(ConnectionBroken(f"invalid HTTP response ({exc})"))
            self.close()
            return
        if not self._head_done:  # httptools holds an unfinished head in memory: bound it
            self._head_bytes += len(data)
            if self._head_bytes > MAX_RESPONSE_HEAD_BYTES:
                self._too_large(f"the response's headers exceed {MAX_RESPONSE_HEAD_BYTES} bytes")

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self._until_close and exc is None:  # HTTP/1.0-style: the body ends where the connection does
            self.on_message_complete()
        self._fail(ConnectionBroken("the connection closed before the response was complete"))

    # -- httptools callbacks ------------------------------------------------------------
    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        self._head_done = True
        # Neither a length nor chunks: the body runs until the server closes the connection.
        self._until_close = (
            "content-length" not in self._headers
            and "chunked" not in self._headers.get("transfer-encoding", "").lower()
        )
        declared = self._headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:  # refused before any of it is read
            self._too_large(f"the response body is {declared} bytes; the limit is {self.max_body_bytes} bytes")

    def on_body(self, body: bytes) -> None:
        self._body_bytes += len(body)
        if self._body_bytes > self.max_body_bytes:
            self._too_large(f"the response body exceeds the limit of {self.max_body_bytes} bytes")
            return
        self._body.append(body)

    def on_message_complete(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is None or waiter.done():
            return
        status = self._parser.get_status_code()
        waiter.set_result(Response(status, b"".join(self._body), self._headers))
        if not self._parser.should_keep_alive():
            self.close()

    # -- use ----------------------------------------------------------------------------
    def send(self, request: bytes) -> asyncio.Future[Response]:
        assert self.transport is not None
        self._headers, self._body, self._until_close = {}, [], False
        self._head_done, self._head_bytes, self._body_bytes = False, 0, 0
        self._waiter = asyncio.get_running_loop().create_future()
        self.transport.write(request)
        return self._waiter

    def _fail(self, exc: Exception) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _too_large(self, message: str) -> None:
        """Stop reading this response: the caller gets `ResponseTooLarge`, the connection is dropped."""
        self._body = []
        self._fail(ResponseTooLarge(message))
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Http1Pool:
    """Keep-alive connections per origin; `request` returns the whole response."""

    def __init__(
        self,
        connect_timeout_s: float,
        ssl_context: ssl.SSLContext | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        """`ssl_context`: for https replicas (default: the system's CAs, hostnames verified);
        `max_response_bytes`: the largest response body accepted (`ResponseTooLarge` beyond)."""
        self.connect_timeout_s = connect_timeout_s
        self.max_response_bytes = max_response_bytes
        self._idle: dict[Origin, list[_Connection]] = {}
        self._ssl = ssl_context

    async def request(
        self, origin: Origin, method: str, path: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> Response:
        """Send one request to `origin`; `timeout_s` bounds the whole attempt, connecting included
        (connecting alone is also bounded by the pool's connect timeout)."""
        loop = asyncio.get_running_loop()
        ends = loop.time() + timeout_s
        conn = await self._connection(origin, timeout_s)
        head = [f"{method} {origin.prefix}{path} HTTP/1.1\r\nhost: ".encode(), origin.host_header]
        head.append(f"\r\ncontent-length: {len(body)}\r\n".encode())
        for name, value in headers.items():
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        head.append(b"\r\n")
        head.append(body)
        waiter = conn.send(b"".join(head))
        timer = loop.call_at(ends, _expire, waiter, timeout_s)
        try:
            response = await waiter
        except BaseException:
            conn.close()  # a half-read response cannot be reused
            raise
        finally:
            timer.cancel()
        self._release(origin, conn)
        return response

    async def _connection(self, origin: Origin, timeout_s: float) -> _Connection:
        loop = asyncio.get_running_loop()
        idle = self._idle.get(origin)
        while idle:
            conn = idle.pop()
            if conn.closed:
                continue
            if loop.time() - conn.idle_since > IDLE_TTL_S:  # the server may be closing it right now
                conn.close()
                continue
            return conn
        context = self._context() if origin.tls else None
        limit = min(self.connect_timeout_s, timeout_s)  # the attempt's own time may run out first
        try:
            async with asyncio.timeout(limit):
                _, conn = await loop.create_connection(
                    functools.partial(_Connection, self.max_response_bytes),
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context else None,
                )
        except TimeoutError:
            raise ConnectFailed(f"connect timeout after {limit:.3g} s") from None
        except OSError as exc:
            raise ConnectFailed(f"{type(exc).__name__}: {exc.strerror or exc}") from None
        return conn

    def _release(self, origin: Origin, conn: _Connection) -> None:
        if conn.closed:
            return
        idle = self._idle.setdefault(origin, [])
        if len(idle) < MAX_IDLE_PER_ORIGIN:
            conn.idle_since = asyncio.get_running_loop().time()
            idle.append(conn)
        else:
            conn.close()

    def _context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def close(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()


def _expire(waiter: asyncio.Future[Response], timeout_s: float) -> None:
    if not waiter.done():
        waiter.set_exception(ResponseTimeout(f"no complete response within {timeout_s:.3g} s"))
