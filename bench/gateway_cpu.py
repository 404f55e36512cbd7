"""The gateway's CPU time per request: a figure that a noisy, shared machine barely moves.

    .venv/bin/python bench/gateway_cpu.py [--requests 20000] [--rounds 3]

Wall-clock RPS on a 2-core VM shared with other work swings by ±25% between runs; the CPU
seconds the `aisre serve` process itself spends per request (user + system, read from
/proc/PID/stat before and after) swing far less, so they show whether a change made the
request path more expensive. One mock OpenAI upstream in a subprocess, one gateway worker,
sequential chat completions on one keep-alive connection after a warm-up. Run it with
`PYTHONPATH=OTHER_CHECKOUT/src` to measure another version of the code the same way.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from aisre.testing.server import free_port, serve_in_subprocess

BODY = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8})
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def send(conn: http.client.HTTPConnection, n: int) -> None:
    for _ in range(n):
        conn.request("POST", "/v1/chat/completions", BODY, {"content-type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise RuntimeError(f"gateway answered {response.status}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    upstream = serve_in_subprocess("openai", completion_tokens=8)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "aisre.yaml"
        config.write_text(
            f"store: sqlite:///{tmp}/aisre.db\nmodels:\n  chat:\n    protocol: openai\n"
            f"    versions:\n      v1: {{replicas: ['{upstream.url}/v1']}}\n"
        )
        port = free_port()
        gateway = subprocess.Popen(
            [sys.executable, "-m", "aisre", "serve", "-c", str(config), "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            deadline = time.monotonic() + 60
            while True:
                try:
                    send(conn, 1)
                    break
                except (OSError, http.client.HTTPException):
                    if time.monotonic() > deadline:
                        raise
                    conn.close()
                    time.sleep(0.2)
            send(conn, 2000)  # warm-up
            per_request = []
            for _ in range(args.rounds):
                before, wall = cpu_seconds(gateway.pid), time.perf_counter()
                send(conn, args.requests)
                cpu = cpu_seconds(gateway.pid) - before
                wall = time.perf_counter() - wall
                per_request.append(cpu / args.requests * 1e6)
                print(f"round: {cpu / args.requests * 1e6:7.1f} µs CPU per request ({args.requests / wall:,.0f} req/s)")
            print(
                f"median: {statistics.median(per_request):.1f} µs, min: {min(per_request):.1f} µs CPU per request"
                " in `aisre serve`"
            )
        finally:
            gateway.terminate()
            gateway.wait(30)
            upstream.stop()


if __name__ == "__main__":
    main()
