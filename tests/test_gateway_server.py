"""The gateway's HTTP server against raw sockets: header size limit (431), header deadline (408),
a prompt SIGTERM with partial and idle connections open, and `aisre serve` refusing a bad config
before it prints anything."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from aisre.testing.openai_server import openai_app
from aisre.testing.server import free_port, serve_in_subprocess, serve_in_thread
from aisre.testing.settings import MockSettings

from .gateway_helpers import RunningGateway, gateway_config

CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 4}


@pytest.fixture
def upstream():
    server = serve_in_thread(openai_app(MockSettings(completion_tokens=4)))
    yield server
    server.stop()


def _gateway(tmp_path: Path, upstream, **gateway) -> RunningGateway:
    models = {"chat": {"protocol": "openai", "versions": {"v1": {"replicas": [f"{upstream.url}/v1"]}}}}
    cfg = gateway_config(tmp_path, models, gateway={"health_checks": {"enabled": False}, **gateway})
    return RunningGateway(cfg)


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def _read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (a reset counts as a close)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def _read_reply(sock: socket.socket) -> bytes:
    """One whole response with a content-length, the connection left open."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(
        next(v for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")) if k.lower() == b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def _status_and_body(reply: bytes) -> tuple[int, dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def _get(path: str, headers: bytes = b"") -> bytes:
    return b"GET " + path.encode() + b" HTTP/1.1\r\nhost: gw\r\n" + headers + b"\r\n"


# -- header size ----------------------------------------------------------------------------------


def test_headers_over_the_limit_get_431_naming_the_limit_and_the_connection_closes(tmp_path, upstream):
    with _gateway(tmp_path, upstream, max_header_bytes=4096) as gw, _connect(gw.port) as sock:
        sock.sendall(_get("/v1/models", b"x-big: " + b"a" * 5000 + b"\r\n"))
        reply = _read_until_closed(sock)
        status, body = _status_and_body(reply)
        assert status == 431 and b"connection: close" in reply.lower()
        assert "4096 bytes" in body["error"]["message"] and body["error"]["code"] == "request_header_fields_too_large"
        with _connect(gw.port) as oip:  # /v2 paths get the Open Inference Protocol's error shape
            oip.sendall(_get("/v2/health/ready", b"x-big: " + b"a" * 5000 + b"\r\n"))
            status, body = _status_and_body(_read_until_closed(oip))
        assert status == 431 and "4096 bytes" in body["error"]
        assert httpx.get(f"{gw.url}/healthz", headers={"x-ok": "a" * 3000}).status_code == 200


def test_a_32_mb_header_is_cut_off_long_before_it_is_all_sent(tmp_path, upstream):
    """The old server read all 32 MB (httptools buffers a header whole) and answered 200."""
    sent = 0
    with _gateway(tmp_path, upstream) as gw, _connect(gw.port) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: gw\r\nx-big: ")
        piece = b"a" * (1024 * 1024)
        try:
            for _ in range(32):
                sock.sendall(piece)
                sent += len(piece)
            sock.sendall(b"\r\n\r\n")
            reply = _read_until_closed(sock)
        except (BrokenPipeError, ConnectionResetError):
            reply = b""
        assert not reply.startswith(b"HTTP/1.1 200"), "a 32 MB header was accepted"
        assert sent < 16 * 1024 * 1024, f"the server kept reading: {sent} bytes were accepted"
        assert httpx.get(f"{gw.url}/healthz").status_code == 200


def test_a_small_head_with_a_large_body_in_one_write_is_not_mistaken_for_large_headers(tmp_path, upstream):
    body = json.dumps({**CHAT, "user": "u" * 20_000}).encode()
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
    head += b"x-pad: " + b"p" * 3000 + b"\r\ncontent-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    with _gateway(tmp_path, upstream, max_header_bytes=4096) as gw, _connect(gw.port) as sock:
        sock.sendall(head + body)  # one write: 3 KB of head, 20 KB of body
        status, reply = _status_and_body(_read_until_closed(sock))
    assert status == 200 and reply["object"] == "chat.completion"


def test_pipelined_requests_in_one_write_are_all_answered(tmp_path, upstream):
    with _gateway(tmp_path, upstream, max_header_bytes=1024) as gw, _connect(gw.port) as sock:
        sock.sendall(_get("/healthz") * 3 + _get("/healthz", b"connection: close\r\n"))
        replies = _read_until_closed(sock)
    assert replies.count(b"HTTP/1.1 200 OK") == 4


# -- header deadline ------------------------------------------------------------------------------


def test_headers_that_do_not_complete_in_time_get_408_and_the_connection_closes(tmp_path, upstream):
    with _gateway(tmp_path, upstream, header_timeout_s=0.5) as gw:
        with _connect(gw.port) as slow, _connect(gw.port) as silent:
            slow.sendall(b"GET /v1/models HTTP/1.1\r\nhost: gw\r\n")  # ...and never the blank line
            status, body = _status_and_body(_read_until_closed(slow))
            assert status == 408 and "0.5 s" in body["error"]["message"]
            assert _read_until_closed(silent) == b"", "a connection that sent nothing is closed without a reply"


def test_a_body_that_stops_arriving_gets_408_while_a_slow_steady_body_is_read(tmp_path, upstream):
    body = json.dumps(CHAT).encode()
    head = b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\n"
    head += b"content-length: %d\r\n\r\n" % len(body)
    with _gateway(tmp_path, upstream, body_timeout_s=0.5) as gw:
        with _connect(gw.port) as stalled:
            stalled.sendall(head + body[:10])  # ...and never the rest
            status, reply = _status_and_body(_read_reply(stalled))
            assert (
                status == 408 and "request body" in reply["error"]["message"] and "0.5 s" in reply["error"]["message"]
            )
        with _connect(gw.port) as steady:  # longer than 0.5 s in all, but never idle that long: read to the end
            steady.sendall(head)
            started = time.monotonic()
            for i in range(0, len(body), 5):
                steady.sendall(body[i : i + 5])
                time.sleep(0.05)
            assert time.monotonic() - started > 0.5
            status, reply = _status_and_body(_read_reply(steady))
            assert status == 200 and reply["choices"]


def test_a_keep_alive_connection_may_idle_and_send_its_headers_in_pieces_within_the_deadline(tmp_path, upstream):
    with _gateway(tmp_path, upstream, header_timeout_s=1.5) as gw, _connect(gw.port) as sock:
        for request in range(2):
            for piece in (b"GET /healthz HTTP/1.1\r\n", b"host: gw\r\n", b"x-n: %d\r\n" % request, b"\r\n"):
                sock.sendall(piece)
                time.sleep(0.2)
            assert _read_reply(sock).startswith(b"HTTP/1.1 200 OK")
            time.sleep(1.0)  # idle between requests: the keep-alive timeout's business, not the header deadline's


def test_a_slow_request_being_answered_is_not_cut_by_the_header_deadline(tmp_path):
    slow = serve_in_thread(openai_app(MockSettings(completion_tokens=4, latency_s=1.5)))
    try:
        with _gateway(tmp_path, slow, header_timeout_s=0.5) as gw:
            reply = httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT, timeout=10)
        assert reply.status_code == 200
    finally:
        slow.stop()


# -- shutdown -------------------------------------------------------------------------------------


def _start_serve(config: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "aisre", "serve", "-c", str(config), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return process
        except httpx.HTTPError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError(process.communicate()[1].decode()[-2000:]) from None
            time.sleep(0.1)


def test_sigterm_finishes_in_flight_requests_and_does_not_wait_for_partial_or_idle_connections(tmp_path):
    """Before: a request whose body never finished held the exit for the whole 30 s grace."""
    upstream = serve_in_subprocess("openai", completion_tokens=4, latency_s=2.0)
    config = tmp_path / "aisre.yaml"
    config.write_text(
        f"store: sqlite:///{tmp_path / 'aisre.db'}\ngateway: {{shutdown_grace_s: 30}}\n"
        f"models:\n  chat:\n    protocol: openai\n    versions:\n      v1: {{replicas: ['{upstream.url}/v1']}}\n"
    )
    port = free_port()
    process = _start_serve(config, port)
    sockets: list[socket.socket] = []
    try:
        in_flight: dict[str, int] = {}
        caller = threading.Thread(
            target=lambda: in_flight.update(
                status=httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=CHAT, timeout=20).status_code
            )
        )
        caller.start()
        for _ in range(3):  # headers that never finish
            sockets.append(_connect(port))
            sockets[-1].sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\n")
        sockets.append(_connect(port))  # a body that never finishes
        sockets[-1].sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-length: 500\r\n\r\n{")
        idle = _connect(port)  # a keep-alive connection between requests
        idle.sendall(_get("/healthz"))
        assert _read_reply(idle).startswith(b"HTTP/1.1 200")
        sockets.append(idle)
        time.sleep(0.5)  # the slow request is now waiting on its upstream
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        took = time.monotonic() - signalled
        caller.join(20)
        assert in_flight.get("status") == 200, "the request in flight was answered before exit"
        assert took < 20, f"exit took {took:.1f} s"  # was 32 s; a busy CI machine gets a wide margin
        leftovers = [_read_until_closed(s) for s in sockets]
        assert leftovers == [b""] * len(sockets), "partial and idle connections were closed"
        assert b"Traceback" not in process.stderr.read()
    finally:
        for s in sockets:
            s.close()
        if process.poll() is None:
            process.kill()
        upstream.stop()


# -- aisre serve and its config -------------------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 2])
def test_serve_refuses_a_bad_config_before_printing_its_banner(tmp_path, workers):
    config = tmp_path / "aisre.yaml"
    config.write_text(
        f"store: sqlite:///{tmp_path / 'aisre.db'}\n"
        "models:\n  m:\n    protocol: oip\n    versions:\n      v1: {sklearn: missing.joblib}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "aisre", "serve", "-c", str(config), "--port", str(free_port())]
        + ["--workers", str(workers)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "models.m.versions.v1.sklearn: no such file" in done.stderr
    assert "aisre gateway on" not in done.stdout and "Traceback" not in done.stderr


def test_serve_lists_every_problem_of_an_invalid_gateway_section(tmp_path):
    config = tmp_path / "aisre.yaml"
    config.write_text(
        "models:\n  m:\n    protocol: openai\n    versions:\n      v1: {replicas: ['http://127.0.0.1:9/v1']}\n"
        "gateway: {max_header_bytes: 10, header_timeout_s: 0}\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "aisre", "serve", "-c", str(config)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and "aisre gateway on" not in done.stdout and "Traceback" not in done.stderr
    assert "gateway.max_header_bytes" in done.stderr and "gateway.header_timeout_s" in done.stderr
