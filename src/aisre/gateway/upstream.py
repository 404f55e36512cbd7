"""Calling a version's HTTP replicas: pooled keep-alive connections, per-try timeouts
inside an overall deadline, retries to another replica within the retry budget.

Whole responses go through `http1.Http1Pool` (a small keep-alive client: the gateway's
hot path); streams through aiohttp, which was chosen over httpx by measurement
(bench/http_clients.py): 4x lower latency sequentially and ~16x the throughput at 32
concurrent requests on this machine.

A stream counts as answered once its first server-sent event has arrived and is well formed:
until then nothing has reached the client, so a stream that breaks off, stalls or sends
garbage before it is retried like a whole response (another replica, then the fallback chain).

Which failures are retried on another replica is the model's `retry_on` (config/gateway.py):
every failed try is classified as one of its kinds (`connect-failure`, `reset`, `502`, `503`,
`504`, `timeout`); a kind the model does not list ends the tries at once, so by default a
request that may have reached the model (a timeout, a broken connection) runs once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import aiohttp
from yarl import URL

from aisre.config.gateway import DEFAULT_RETRY_ON, GatewayConfig
from aisre.gateway.balancer import Balancer, Replica
from aisre.gateway.errors import GatewayError
from aisre.gateway.http1 import ConnectFailed, ConnectionBroken, Http1Pool, Origin, ResponseTimeout, ResponseTooLarge
from aisre.gateway.retry import RETRYABLE_STATUS, RetryBudget
from aisre.gateway.sse import SseEvents, first_event_problem

_DRAIN_MAX_BYTES = 64 * 1024  # a retryable error's body is read (to reuse its connection) only up to this

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "host",
        "content-encoding",
        "upgrade",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-authenticate",
        "authorization",
    }
)


@dataclass
class Reply:
    status: int
    body: bytes
    content_type: str
    replica: str
    latency_s: float
    attempts: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stream:
    """An upstream response whose headers arrived; for a 200, its first event too (still in
    `events`, unread; the rest of the body is read by the caller). Any other status comes with
    its whole `body` (read within `gateway.max_response_bytes`) and the response released."""

    response: aiohttp.ClientResponse
    replica: Replica
    started: float
    attempts: int
    events: SseEvents | None = None
    body: bytes = b""


class HttpVersion:
    """The replicas of one model version behind HTTP."""

    def __init__(
        self,
        name: str,
        balancer: Balancer,
        session: aiohttp.ClientSession,
        pool: Http1Pool,
        budget: RetryBudget,
        config: GatewayConfig,
        headers: Mapping[str, str] | None = None,
        try_timeout_s: float | None = None,
        retry_on: Iterable[str] = DEFAULT_RETRY_ON,
    ) -> None:
        self.name = name
        self.retry_on = frozenset(retry_on)
        self.balancer = balancer
        self.session = session
        self.pool = pool
        self._origins = {r.url: Origin.parse(r.url) for r in balancer.replicas}
        self.budget = budget
        self.config = config
        self.headers = dict(headers or {})
        self.try_timeout_s = try_timeout_s or config.try_timeout_s
        self._base_headers = {"content-type": "application/json", **self.headers}
        # The usual case (plenty of deadline left) reuses one timeout object.
        self._stream_timeout = self._make_stream_timeout(self.try_timeout_s)
        self._urls: dict[tuple[str, str], URL] = {}

    def _make_stream_timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        # A timer per read: a stalled stream is cut after `seconds` of silence.
        return aiohttp.ClientTimeout(sock_connect=self.config.connect_timeout_s, sock_read=seconds)

    def _url(self, base: str, path: str) -> URL:
        """Parsed once per replica and path: URL parsing is a visible cost per request."""
        key = (base, path)
        url = self._urls.get(key)
        if url is None:
            url = self._urls[key] = URL(base + path)
        return url

    def _timeout(self, remaining: float) -> aiohttp.ClientTimeout:
        if remaining >= self.try_timeout_s:
            return self._stream_timeout
        return self._make_stream_timeout(remaining)

    async def call(
        self, path: str, body: bytes, deadline: float, headers: Mapping[str, str] | None = None, method: str = "POST"
    ) -> Reply:
        """One request, retried on another replica for the failures the model's `retry_on` names."""
        stream = await self._attempts(path, body, deadline, headers, method, read_body=True)
        assert isinstance(stream, Reply)
        return stream

    async def open_stream(
        self, path: str, body: bytes, deadline: float, headers: Mapping[str, str] | None = None
    ) -> Stream:
        """Start a streaming request: retried until a first well-formed event arrives (or a
        non-retryable status: the caller reads that body)."""
        stream = await self._attempts(path, body, deadline, headers, "POST", read_body=False)
        assert isinstance(stream, Stream)
        return stream

    def finish_stream(self, stream: Stream, ok: bool) -> None:
        self.balancer.finished(stream.replica, time.perf_counter() - stream.started, ok)

    def abandon_stream(self, stream: Stream) -> None:
        """The client left mid-stream: the replica is neither credited nor blamed."""
        self.balancer.abandoned(stream.replica)

    async def _try(
        self,
        replica: Replica,
        path: str,
        body: bytes,
        headers: Mapping[str, str] | None,
        method: str,
        read_body: bool,
        remaining: float,
        started: float,
        attempt: int,
    ) -> Reply | Stream:
        """One attempt on one replica; raises _Failed for anything retryable."""
        send_headers = {**self._base_headers, **headers} if headers else self._base_headers
        if read_body:
            return await self._whole(replica, path, body, send_headers, method, remaining, started, attempt)
        timeout = self._timeout(remaining)
        url = replica.url
        try:
            response = await self.session.request(
                method, self._url(url, path), data=body, headers=send_headers, timeout=timeout, allow_redirects=False
            )
        except aiohttp.ConnectionTimeoutError:
            raise _Failed(502, f"cannot connect to {url} (connect timeout)", CONNECT_FAILURE) from None
        except TimeoutError:  # read timeouts (aiohttp's are TimeoutError subclasses)
            waited = timeout.sock_read or 0.0
            raise _Failed(504, f"{url} did not answer within {waited:.3g} s", TIMEOUT) from None
        except aiohttp.ClientConnectorError as exc:  # no connection was made: nothing was sent
            raise _Failed(502, f"cannot connect to {url}: {type(exc).__name__}", CONNECT_FAILURE) from None
        except (aiohttp.ClientConnectionError, OSError) as exc:  # connected, sent, then lost the connection
            raise _Failed(502, f"{url} broke off before answering: {type(exc).__name__}", RESET) from None
        if response.status in RETRYABLE_STATUS:
            await _drain(response)
            raise _Failed(502, f"{url} answered {response.status}", str(response.status))
        if response.status != 200:  # its body is the answer: read here, capped, and retried like one
            return Stream(response, replica, started, attempt, body=await self._error_body(response, url))
        try:
            events = await _first_event(response, url, timeout.sock_read or 0.0)
        except BaseException:
            response.close()  # half-read: the connection cannot be reused
            raise
        return Stream(response, replica, started, attempt, events)

    async def _error_body(self, response: aiohttp.ClientResponse, url: str) -> bytes:
        """The whole body of a non-200 answer to a stream request, at most `max_response_bytes`."""
        limit = self.config.max_response_bytes
        try:
            if (response.content_length or 0) > limit:
                raise ResponseTooLarge(
                    f"the response body is {response.content_length} bytes; the limit is {limit} bytes"
                )
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_any():
                size += len(chunk)
                if size > limit:
                    raise ResponseTooLarge(f"the response body exceeds the limit of {limit} bytes")
                chunks.append(chunk)
            return b"".join(chunks)
        except ResponseTooLarge as exc:
            response.close()
            raise _Failed(502, f"{url} sent too large a response: {exc}", final=True) from None
        except TimeoutError:
            response.close()
            raise _Failed(504, f"{url} stalled while sending its answer", TIMEOUT) from None
        except (aiohttp.ClientError, OSError) as exc:
            response.close()
            raise _Failed(502, f"{url} broke off its response: {type(exc).__name__}", RESET) from None
        finally:
            response.release()

    async def _whole(
        self,
        replica: Replica,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        method: str,
        remaining: float,
        started: float,
        attempt: int,
    ) -> Reply:
        url = replica.url
        seconds = min(self.try_timeout_s, remaining)
        try:
            response = await self.pool.request(self._origins[url], method, path, headers, body, seconds)
        except ConnectFailed as exc:
            raise _Failed(502, f"cannot connect to {url} ({exc})", CONNECT_FAILURE) from None
        except ResponseTimeout:
            raise _Failed(504, f"{url} did not answer within {seconds:.3g} s", TIMEOUT) from None
        except ResponseTooLarge as exc:
            raise _Failed(502, f"{url} sent too large a response: {exc}", final=True) from None
        except ConnectionBroken as exc:
            raise _Failed(502, f"{url} broke off its response: {exc}", RESET) from None
        if response.status in RETRYABLE_STATUS:
            raise _Failed(502, f"{url} answered {response.status}", str(response.status))
        latency = time.perf_counter() - started
        self.balancer.finished(replica, latency, ok=response.status < 500)
        kept = {k: v for k, v in response.headers.items() if k not in _HOP_BY_HOP}
        return Reply(response.status, response.body, response.content_type, url, latency, attempt, kept)

    async def _attempts(
        self, path: str, body: bytes, deadline: float, headers: Mapping[str, str] | None, method: str, read_body: bool
    ) -> Reply | Stream:
        tried: set[str] = set()
        self.budget.on_request()
        last_error = "no replica available"
        last_status = 502
        tries = 0
        for attempt in range(1, self.config.retries.attempts + 1):
            if attempt > 1 and not self.budget.try_spend():
                last_error += " (retry budget exhausted)"
                break
            replica = self.balancer.pick(tried)
            if replica is None:
                break
            tried.add(replica.url)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise GatewayError(504, f"deadline exceeded before calling {self.name} ({attempt - 1} tries)")
            self.balancer.started(replica)
            started = time.perf_counter()
            tries = attempt
            try:
                outcome = await self._try(replica, path, body, headers, method, read_body, remaining, started, attempt)
            except _Failed as failed:
                # A failed attempt counts against the replica, then the next replica is tried if the
                # model's `retry_on` names this kind of failure; a final one (the replica answered, but
                # no replica's answer would do) ends the tries without blaming it.
                self.balancer.finished(replica, time.perf_counter() - started, ok=failed.final)
                last_status, last_error = failed.status, failed.message
                if failed.final:
                    break
                if failed.kind not in self.retry_on:
                    last_error += f" (not retried: retry_on does not list {failed.kind})"
                    break
                continue
            except BaseException:  # cancelled (the client left): not the replica's doing
                self.balancer.abandoned(replica)
                raise
            return outcome
        after = f" after {tries} tries" if tries > 1 else ""
        raise GatewayError(last_status, f"upstream {self.name} failed{after}: {last_error}")


CONNECT_FAILURE, RESET, TIMEOUT = "connect-failure", "reset", "timeout"


class _Failed(Exception):
    """One attempt failed: the status to report if it was the last, and its `kind` (a `retry_on`
    value: retried elsewhere only if the model lists it). Never retried if `final` (e.g. a response
    over `gateway.max_response_bytes`: another replica's would be as large, and a caller asking for
    a huge answer must not get healthy replicas ejected)."""

    def __init__(self, status: int, message: str, kind: str = RESET, final: bool = False) -> None:
        self.status, self.message, self.kind, self.final = status, message, kind, final


async def _first_event(response: aiohttp.ClientResponse, url: str, read_timeout_s: float) -> SseEvents:
    """Wait for the stream's first event; `_Failed` if it breaks off, stalls or is not SSE."""
    events = SseEvents(response.content.iter_any())
    try:
        first = await anext(events)
    except StopAsyncIteration:
        raise _Failed(502, f"{url} ended its stream before the first event", RESET) from None
    except ResponseTooLarge as exc:  # as final as a whole response over the limit
        raise _Failed(502, f"{url} sent {exc}", final=True) from None
    except TimeoutError:
        raise _Failed(504, f"{url} sent no event within {read_timeout_s:.3g} s", TIMEOUT) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise _Failed(502, f"{url} broke off its stream before the first event: {type(exc).__name__}", RESET) from None
    problem = first_event_problem(first)
    if problem is not None:  # the model ran (a replica sent a 200): garbage is a broken answer
        raise _Failed(502, f"{url} {problem}", RESET)
    events.push_back(first)
    return events


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read a small error body so the connection can be reused; a large or unsized one is not
    read into memory at all (the connection is dropped instead)."""
    if response.content_length is None or response.content_length > _DRAIN_MAX_BYTES:
        response.close()
        return
    try:
        await response.read()
    except (TimeoutError, aiohttp.ClientError, OSError):
        pass
    finally:
        response.release()
