"""What the gateway's HTTP protocol costs over uvicorn's own httptools protocol.

    .venv/bin/python bench/http_protocol.py [--rounds 4] [--requests 5000] [--duration 5]

Two uvicorn servers (uvloop, one worker each, in subprocesses) serve the same minimal ASGI app
(a fixed 200 JSON reply): one with `http="httptools"`, one with `aisre.gateway.protocol`'s
`GatewayHttpProtocol` (header limit, header deadline). Rounds alternate between them so that
machine noise hits both alike: sequential latency on one keep-alive connection (stdlib
http.client, p50/p99), `wrk -t2 -c32` requests/s, and the server process's CPU time per request
under wrk (user + system, from /proc: the steadiest number on a shared machine). Prints
per-round numbers and the medians' ratio (gateway / httptools).
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from aisre.testing import free_port

SERVER = """
import sys, uvicorn
from aisre.config.gateway import GatewayConfig
from aisre.gateway.protocol import http_protocol

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"11")]})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})

http = http_protocol(GatewayConfig()) if sys.argv[2] == "gateway" else "httptools"
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http=http, log_level="warning",
            access_log=False, lifespan="off")
"""


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def server(kind: str) -> Iterator[tuple[int, int]]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port), kind])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/")
                conn.getresponse().read()
                conn.close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(30)


def sequential_ms(port: int, requests: int) -> tuple[float, float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(200):  # warm-up
        conn.request("GET", "/v1/models", headers={"authorization": "Bearer sk-x"})
        conn.getresponse().read()
    took = []
    for _ in range(requests):
        start = time.perf_counter()
        conn.request("GET", "/v1/models", headers={"authorization": "Bearer sk-x"})
        conn.getresponse().read()
        took.append((time.perf_counter() - start) * 1000)
    conn.close()
    took.sort()
    return took[len(took) // 2], took[int(len(took) * 0.99)]


def wrk_load(port: int, pid: int, duration_s: int) -> tuple[float, float]:
    """Requests/s under wrk, and the server's CPU microseconds per request meanwhile."""
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    argv = [wrk, "-t2", "-c32", f"-d{duration_s}s", f"http://127.0.0.1:{port}/"]
    before = cpu_s(pid)
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    used = cpu_s(pid) - before
    rps = float(next(line for line in out.splitlines() if line.startswith("Requests/sec:")).split()[1])
    done = int(next(line for line in out.splitlines() if " requests in " in line).split()[0])
    return rps, used / done * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--duration", type=int, default=5, help="wrk seconds per round (0: skip wrk)")
    args = parser.parse_args()
    results: dict[str, list[tuple[float, ...]]] = {"httptools": [], "gateway": []}
    with server("httptools") as plain, server("gateway") as gateway:
        servers = {"httptools": plain, "gateway": gateway}
        for round_ in range(args.rounds):
            for kind in ("httptools", "gateway") if round_ % 2 == 0 else ("gateway", "httptools"):
                port, pid = servers[kind]
                p50, p99 = sequential_ms(port, args.requests)
                rps, cpu_us = wrk_load(port, pid, args.duration) if args.duration else (float("nan"),) * 2
                results[kind].append((p50, p99, rps, cpu_us))
                print(
                    f"round {round_ + 1} {kind:>9}: p50 {p50:.3f} ms  p99 {p99:.3f} ms  {rps:,.0f} RPS  "
                    f"{cpu_us:.1f} us CPU/request",
                    flush=True,
                )
    medians = {k: [statistics.median(r[i] for r in v) for i in range(4)] for k, v in results.items()}
    for kind, (p50, p99, rps, cpu_us) in medians.items():
        print(f"medians {kind:>9}: p50 {p50:.3f} ms  p99 {p99:.3f} ms  {rps:,.0f} RPS  {cpu_us:.1f} us CPU/request")
    a, b = medians["httptools"], medians["gateway"]
    print(
        f"gateway / httptools: p50 {b[0] / a[0]:.3f}x  p99 {b[1] / a[1]:.3f}x  RPS {b[2] / a[2]:.3f}x  "
        f"CPU/request {b[3] / a[3]:.3f}x"
    )


if __name__ == "__main__":
    main()
