"""The gateway's keep-alive HTTP/1.1 client against real sockets: reuse, chunked bodies,
Connection: close, garbage, silence, refused connections, a server that drops idle ones."""

from __future__ import annotations

import asyncio
import socket
import ssl

import pytest
import trustme

from aisre.errors import ResponseTooLarge
from aisre.gateway.http1 import (
    MAX_RESPONSE_HEAD_BYTES,
    ConnectFailed,
    ConnectionBroken,
    Http1Pool,
    Origin,
    ResponseTimeout,
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _serve(replies: list[bytes], seen: list[bytes], connections: list[int]):
    """A raw server: answers each request (read up to the blank line + content-length) with the next reply."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            while replies:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                seen.append(head + await reader.readexactly(length))
                reply = replies.pop(0)
                if reply == b"SILENCE":
                    await asyncio.sleep(5)
                    return
                writer.write(reply)
                await writer.drain()
                if b"connection: close" in reply.lower() or reply.startswith(b"HTTP/1.0"):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


def _ok(body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json; charset=utf-8\r\n"
        + extra
        + b"content-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


def run(coro):
    return asyncio.run(coro)


def test_keep_alive_reuses_one_connection_and_sends_a_well_formed_request() -> None:
    async def go():
        seen, conns = [], []
        server = await _serve([_ok(b'{"a":1}'), _ok(b'{"a":2}', b"x-upstream: yes\r\n")], seen, conns)
        port = server.sockets[0].getsockname()[1]
        pool = Http1Pool(1.0)
        origin = Origin.parse(f"http://127.0.0.1:{port}/v1")
        first = await pool.request(origin, "POST", "/chat/completions", {"content-type": "application/json"}, b"{}", 2)
        second = await pool.request(origin, "POST", "/chat/completions", {"traceparent": "00-ab-cd-01"}, b"[1]", 2)
        pool.close()
        server.close()
        return first, second, seen, conns, port

    first, second, seen, conns, port = run(go())
    assert (first.status, first.body, first.content_type) == (200, b'{"a":1}', "application/json")
    assert second.body == b'{"a":2}' and second.headers["x-upstream"] == "yes"
    assert len(conns) == 1, "the second request reused the keep-alive connection"
    assert seen[0].startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert f"host: 127.0.0.1:{port}\r\n".encode() in seen[0] and b"content-length: 2\r\n" in seen[0]
    assert seen[0].endswith(b"\r\n\r\n{}") and b"traceparent: 00-ab-cd-01\r\n" in seen[1]


def test_a_chunked_body_is_reassembled_and_connection_close_is_honoured() -> None:
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n"
    closing = b"HTTP/1.1 201 Created\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"

    async def go():
        seen, conns = [], []
        server = await _serve([chunked, closing, _ok(b"{}")], seen, conns)
        pool = Http1Pool(1.0)
        origin = Origin.parse(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        out = [await pool.request(origin, "GET", "/x", {}, b"", 2) for _ in range(3)]
        pool.close()
        server.close()
        return out, conns

    (a, b, c), conns = run(go())
    assert a.body == b"abcdefg" and (b.status, b.body) == (201, b"ok") and c.status == 200
    assert len(conns) == 2, "after `connection: close` the next request opened a new connection"


def test_a_body_without_length_or_chunks_ends_where_the_connection_does() -> None:
    until_close = b'HTTP/1.0 200 OK\r\ncontent-type: application/json\r\n\r\n{"a": 1}'

    async def go():
        replies, conns = [until_close, until_close], []
        server = await _serve(replies, [], conns)
        pool = Http1Pool(1.0)
        origin = Origin.parse(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        out = [await pool.request(origin, "POST", "/", {}, b"{}", 2) for _ in range(2)]
        pool.close()
        server.close()
        return out, conns

    out, conns = run(go())
    assert [r.body for r in out] == [b'{"a": 1}'] * 2 and len(conns) == 2


def test_garbage_silence_and_refusal_are_named_failures() -> None:
    async def go():
        seen, conns = [], []
        server = await _serve([b"NOT HTTP AT ALL\r\n\r\n", b"SILENCE"], seen, conns)
        pool = Http1Pool(0.5)
        origin = Origin.parse(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        with pytest.raises(ConnectionBroken, match="invalid HTTP response"):
            await pool.request(origin, "POST", "/", {}, b"{}", 2)
        with pytest.raises(ResponseTimeout, match="within 0.2 s"):
            await pool.request(origin, "POST", "/", {}, b"{}", 0.2)
        with pytest.raises(ConnectFailed, match="ConnectionRefusedError"):
            await pool.request(Origin.parse(f"http://127.0.0.1:{_free_port()}"), "POST", "/", {}, b"", 1)
        pool.close()
        server.close()

    run(go())


def test_a_server_that_drops_the_connection_mid_response_is_a_broken_response() -> None:
    truncated = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\nconnection: close\r\n\r\nonly part"

    async def go():
        server = await _serve([truncated], [], [])
        pool = Http1Pool(1.0)
        origin = Origin.parse(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        with pytest.raises(ConnectionBroken, match="closed before the response was complete"):
            await pool.request(origin, "POST", "/", {}, b"{}", 2)
        pool.close()
        server.close()

    run(go())


def test_an_idle_connection_the_server_closed_is_not_reused() -> None:
    async def go():
        replies, conns = [_ok(b"1")], []
        server = await _serve(replies, [], conns)  # with no reply left, it closes the connection
        pool = Http1Pool(1.0)
        origin = Origin.parse(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        first = await pool.request(origin, "GET", "/", {}, b"", 2)
        await asyncio.sleep(0.1)  # the close reaches the client's idle connection
        dead = list(pool._idle[origin])
        replies.append(_ok(b"2"))
        second = await pool.request(origin, "GET", "/", {}, b"", 2)
        pool.close()
        server.close()
        return first, second, dead, conns

    first, second, dead, conns = run(go())
    assert [c.closed for c in dead] == [True]
    assert (first.body, second.body) == (b"1", b"2") and len(conns) == 2


def test_an_idle_connection_older_than_the_ttl_is_replaced_before_the_server_closes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import aisre.gateway.http1 as http1

    monkeypatch.setattr(http1, "IDLE_TTL_S", 0.05)

    async def go():
        replies, conns = [_ok(b"1"), _ok(b"2"), _ok(b"3")], []
        server = await _serve(replies, [], conns)  # keeps connections open (serves replies in order)
        pool = Http1Pool(1.0)
        origin = Origin.parse(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        await pool.request(origin, "GET", "/", {}, b"", 2)
        await pool.request(origin, "GET", "/", {}, b"", 2)  # at once: the same connection again
        await asyncio.sleep(0.2)  # idle longer than the TTL: a new connection, the old one closed
        third = await pool.request(origin, "GET", "/", {}, b"", 2)
        pool.close()
        server.close()
        return third, conns

    third, conns = run(go())
    assert third.body == b"3" and len(conns) == 2


def test_https_replicas_are_verified_against_the_trusted_cas() -> None:
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)

    async def go():
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(_ok(b'{"tls": true}'))
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
        origin = Origin.parse(f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1")
        pool = Http1Pool(2.0, ssl_context=trusting)
        reply = await pool.request(origin, "POST", "/x", {}, b"{}", 2)
        untrusting = Http1Pool(2.0)  # the system CAs do not know this test CA
        with pytest.raises(ConnectFailed, match="SSLCertVerificationError"):
            await untrusting.request(origin, "POST", "/x", {}, b"{}", 2)
        pool.close()
        server.close()
        return reply

    assert run(go()).body == b'{"tls": true}'


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:9101/v1", ("127.0.0.1", 9101, False, "/v1", b"127.0.0.1:9101")),
        ("https://api.example.com/v1/", ("api.example.com", 443, True, "/v1", b"api.example.com")),
        ("http://[::1]:8000", ("::1", 8000, False, "", b"[::1]:8000")),
    ],
)
def test_origins_parse_host_port_scheme_and_prefix(url: str, expected: tuple) -> None:
    o = Origin.parse(url)
    assert (o.host, o.port, o.tls, o.prefix, o.host_header) == expected


def test_a_non_http_url_is_refused_with_the_expected_form() -> None:
    with pytest.raises(ValueError, match="expected an http"):
        Origin.parse("ftp://example.com")


async def _until_refused(pool: Http1Pool, origin: Origin) -> str:
    """The message of the ResponseTooLarge the next request gets."""
    with pytest.raises(ResponseTooLarge) as caught:
        await pool.request(origin, "GET", "/", {}, b"", 5)
    return str(caught.value)


def test_a_body_over_the_limit_is_refused_naming_the_limit_and_its_connection_dropped() -> None:
    chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + b"400\r\n" + b"x" * 1024 + b"\r\n"
    chunked = chunked[:-2] + (b"\r\n400\r\n" + b"x" * 1024) * 5 + b"\r\n0\r\n\r\n"
    until_close = b"HTTP/1.0 200 OK\r\n\r\n" + b"y" * 5000

    async def go():
        conns: list[int] = []
        server = await _serve([_ok(b"z" * 4096), chunked, _ok(b"ok"), until_close], [], conns)
        pool = Http1Pool(1.0, max_response_bytes=4096)
        origin = Origin.parse(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        exactly = await pool.request(origin, "GET", "/", {}, b"", 2)
        message = await _until_refused(pool, origin)
        after = await pool.request(origin, "GET", "/", {}, b"", 2)
        until_close_message = await _until_refused(pool, origin)
        pool.close()
        server.close()
        return exactly, message, after, until_close_message, conns

    exactly, message, after, until_close_message, conns = run(go())
    assert len(exactly.body) == 4096, "a body of exactly the limit is accepted"
    assert message == "the response body exceeds the limit of 4096 bytes" == until_close_message
    # The refused response's connection was dropped: `after` came on a second one (and the last on that too).
    assert after.body == b"ok" and len(conns) == 2


def test_a_declared_length_over_the_limit_is_refused_before_the_body_arrives() -> None:
    async def go():
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 1000000000\r\n\r\nstart")  # 1 GB promised, then silence
            await writer.drain()
            await asyncio.sleep(10)

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        pool = Http1Pool(1.0, max_response_bytes=1024)
        origin = Origin.parse(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        message = await _until_refused(pool, origin)  # the 5 s attempt timeout is not what ends it
        pool.close()
        server.close()
        return message

    assert run(go()) == "the response body is 1000000000 bytes; the limit is 1024 bytes"


def test_endless_response_headers_are_refused() -> None:
    async def go():
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\n")
            try:
                for i in range(10_000):  # 10,000 headers of 100 bytes, never a blank line
                    writer.write(b"x-h%d: " % i + b"v" * 90 + b"\r\n")
                    await writer.drain()
            except ConnectionError:
                pass

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        pool = Http1Pool(1.0)
        origin = Origin.parse(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}")
        message = await _until_refused(pool, origin)
        pool.close()
        server.close()
        return message

    assert run(go()) == f"the response's headers exceed {MAX_RESPONSE_HEAD_BYTES} bytes"
