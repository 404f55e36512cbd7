"""Which async HTTP client the gateway uses for upstream calls: aiohttp vs httpx.

    .venv/bin/python bench/http_clients.py [--requests 3000]

Both clients call the same mock OpenAI upstream (in a child process), first sequentially
(p50/p99 latency), then with 32 concurrent requests (RPS). Prints ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp
import httpx
import uvloop

from aisre.testing.server import serve_in_subprocess

PAYLOAD = b'{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4}'
HEADERS = {"content-type": "application/json"}


async def sequential(kind: str, url: str, n: int) -> list[float]:
    latencies = []
    if kind == "aiohttp":
        async with aiohttp.ClientSession() as session:
            for _ in range(n):
                t = time.perf_counter()
                async with session.post(url, data=PAYLOAD, headers=HEADERS) as r:
                    await r.read()
                latencies.append(time.perf_counter() - t)
    else:
        async with httpx.AsyncClient() as client:
            for _ in range(n):
                t = time.perf_counter()
                (await client.post(url, content=PAYLOAD, headers=HEADERS)).read()
                latencies.append(time.perf_counter() - t)
    return sorted(latencies)


async def concurrent(kind: str, url: str, total: int, concurrency: int = 32) -> float:
    if kind == "aiohttp":
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))

        async def one() -> None:
            async with session.post(url, data=PAYLOAD, headers=HEADERS) as r:
                await r.read()

        close = session.close
    else:
        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=100))

        async def one() -> None:
            (await client.post(url, content=PAYLOAD, headers=HEADERS)).read()

        close = client.aclose
    todo = iter(range(total))

    async def worker() -> None:
        for _ in todo:
            await one()

    started = time.perf_counter()
    await asyncio.gather(*[worker() for _ in range(concurrency)])
    elapsed = time.perf_counter() - started
    await close()
    return total / elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    with serve_in_subprocess("openai") as upstream:
        url = f"{upstream.url}/v1/chat/completions"
        rows = {}
        for kind in ("aiohttp", "httpx"):
            lat = uvloop.run(sequential(kind, url, args.requests))
            rps = uvloop.run(concurrent(kind, url, args.requests * 2))
            rows[kind] = (lat[len(lat) // 2], lat[int(len(lat) * 0.99)], rps)
            print(
                f"{kind:8s} sequential p50 {rows[kind][0] * 1e3:.3f} ms  p99 {rows[kind][1] * 1e3:.3f} ms  "
                f"32 concurrent: {rps:,.0f} RPS"
            )
        a, h = rows["aiohttp"], rows["httpx"]
        print(f"aiohttp vs httpx: {h[0] / a[0]:.1f}x lower p50, {a[2] / h[2]:.1f}x the RPS")


if __name__ == "__main__":
    main()
