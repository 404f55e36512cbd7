"""Soak: a long wrk run through a real `aisre serve` process, its resident memory read at every checkpoint.

    .venv/bin/python bench/soak.py [--requests 200000] [--warmup 20000] [--connections 16]

The test suite's soak (tests/test_gateway_soak.py) runs a shorter version of the same thing with a pass/fail
bound; this one runs as long as you like and prints the RSS curve (requests, RSS MB, growth since the warm-up,
bytes per request since the warm-up), so a slow leak shows as a slope rather than a single number.
Needs wrk (Debian package); the upstream is aisre's OpenAI mock server.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from aisre.testing.server import free_port, serve_in_subprocess

LUA = Path(__file__).resolve().parent / "wrk" / "chat.lua"
BODY = '{"model":"chat","messages":[{"role":"user","content":"hello there"}],"max_tokens":8}'


def rss_bytes(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match, status
    return int(match.group(1)) * 1024


def wrk(url: str, seconds: int, connections: int) -> tuple[int, int]:
    """(requests completed, non-2xx responses + socket errors) for one wrk run."""
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", "--timeout", "10s", f"-d{seconds}s", "-s", str(LUA), url],
        capture_output=True,
        text=True,
        env={**os.environ, "WRK_BODY": BODY},
        timeout=seconds + 30,
    ).stdout
    done = re.search(r"(\d+) requests in", out)
    assert done, out
    bad = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses: (\d+)", out))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return int(done.group(1)), bad + (sum(int(g) for g in errors.groups()) if errors else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000, help="total requests, warm-up included")
    parser.add_argument("--warmup", type=int, default=20_000, help="requests before the reference RSS is read")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--step-s", type=int, default=10, help="seconds of wrk between RSS readings")
    args = parser.parse_args()
    upstream = serve_in_subprocess("openai", completion_tokens=8)
    tmp = Path(tempfile.mkdtemp(prefix="aisre-soak-"))
    config = tmp / "aisre.yaml"
    config.write_text(
        f"store: sqlite:///{tmp / 'aisre.db'}\nmodels:\n  chat:\n    protocol: openai\n"
        f"    versions:\n      v1: {{replicas: ['{upstream.url}/v1']}}\n"
    )
    port = free_port()
    cmd = [sys.executable, "-m", "aisre", "serve", "-c", str(config), "--port", str(port)]
    gateway = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        served = failed = 0
        started = time.perf_counter()
        while served < args.warmup:
            done, bad = wrk(url, 5, args.connections)
            served, failed = served + done, failed + bad
        before = rss_bytes(gateway.pid)
        measured_from = served
        print(f"{'requests':>10} {'RSS MB':>8} {'growth':>8} {'B/request':>10} {'failed':>7}")
        print(f"{served:>10,} {before / 2**20:>8.1f} {'':>8} {'':>10} {failed:>7}")
        while served < args.requests:
            done, bad = wrk(url, args.step_s, args.connections)
            served, failed = served + done, failed + bad
            rss = rss_bytes(gateway.pid)
            growth, per_request = (rss - before) / before, (rss - before) / (served - measured_from)
            print(f"{served:>10,} {rss / 2**20:>8.1f} {growth:>+8.2%} {per_request:>10.1f} {failed:>7}")
        wall = time.perf_counter() - started
        print(f"{served:,} requests in {wall:.0f} s ({served / wall:,.0f}/s), {failed} failed")
    finally:
        gateway.terminate()
        gateway.wait(30)
        upstream.stop()


if __name__ == "__main__":
    main()
