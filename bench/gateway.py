"""Gateway benchmark harness: one mock upstream, peers in front of it (direct, nginx, LiteLLM, ...), latency and RPS.

    .venv/bin/python bench/gateway.py [--targets direct,nginx,aisre,litellm] [--requests 2000]
                                            [--duration 10] [--connections 32] [--threads 2] [--json OUT.json]

One OpenAI-compatible mock upstream (`python -m aisre.testing openai`, one uvicorn worker, in a
subprocess) serves every target in the same run. For each target the harness measures
(a) sequential latency: `--requests` chat completions one after another on one keep-alive
connection (stdlib http.client, after a warm-up), p50/p99 in ms, and the added latency vs
direct; (b) throughput: `wrk -t2 -c32 -d10s` with bench/wrk/chat.lua POSTing a chat completion
(non-streaming); requests/s, wrk's p50/p99 and non-2xx count. Every peer runs one worker.

A target is one context-manager function `(upstream_url) -> base URL`, registered in TARGETS:
`start_nginx`, `start_litellm`, `start_aisre`. Peers: nginx (Debian, `apt-get install nginx
wrk`), LiteLLM proxy in bench/.venvs/litellm (see docs/benchmarks-gateway.md).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from aisre.testing import free_port, serve_in_subprocess

REPO = Path(__file__).resolve().parent.parent
LUA = REPO / "bench" / "wrk" / "chat.lua"
LITELLM = REPO / "bench" / ".venvs" / "litellm" / "bin" / "litellm"
AISRE = Path(sys.executable).parent / "aisre"
MODEL = "mock-model"
CHAT_PATH = "/v1/chat/completions"
BODY = json.dumps(
    {"model": MODEL, "messages": [{"role": "user", "content": "hello there, how are you today?"}], "max_tokens": 16}
).encode()


# --- processes --------------------------------------------------------------------------------------


def _spawn(argv: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start `argv` in its own process group (so its workers can be signalled with it), output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """SIGTERM the process group we created (by its id), SIGKILL it if it has not exited in time."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    _stop(process)
    raise RuntimeError(f"{url} not ready after {timeout_s} s; log {log}:\n{log.read_text(errors='replace')[-3000:]}")


# --- targets: each yields the base URL clients should call ------------------------------------------


@contextmanager
def start_direct(upstream_url: str) -> Iterator[str]:
    yield upstream_url


NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {prefix}/tmp/body;
    proxy_temp_path {prefix}/tmp/proxy;
    fastcgi_temp_path {prefix}/tmp/fastcgi;
    uwsgi_temp_path {prefix}/tmp/uwsgi;
    scgi_temp_path {prefix}/tmp/scgi;
    upstream mock {{
        server {upstream};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://mock;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }}
    }}
}}
"""


@contextmanager
def start_nginx(upstream_url: str) -> Iterator[str]:
    """nginx as a plain keep-alive reverse proxy (one worker, no buffering) in a temp prefix."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as prefix:
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (Path(prefix) / "tmp" / sub).mkdir(parents=True)
        os.chmod(prefix, 0o755)
        conf = Path(prefix) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=prefix, port=port, upstream=urlsplit(upstream_url).netloc))
        log = Path(prefix) / "stdout.log"
        process = _spawn([nginx, "-c", str(conf), "-p", prefix], log)
        try:
            _wait_ready(f"http://127.0.0.1:{port}/health", process, log, timeout_s=10)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(process)


LITELLM_CONF = """\
model_list:
  - model_name: {model}
    litellm_params:
      model: openai/{model}
      api_base: {upstream}/v1
      api_key: unused
litellm_settings:
  drop_params: true
"""


@contextmanager
def start_litellm(upstream_url: str) -> Iterator[str]:
    """LiteLLM proxy (its own venv), one uvicorn worker, no master key, local model cost map (offline)."""
    if not LITELLM.exists():
        raise RuntimeError(
            f"{LITELLM} missing: python3 -m venv bench/.venvs/litellm && "
            "bench/.venvs/litellm/bin/pip install 'litellm[proxy]'"
        )
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-litellm-") as tmp:
        conf = Path(tmp) / "config.yaml"
        conf.write_text(LITELLM_CONF.format(model=MODEL, upstream=upstream_url))
        log = Path(tmp) / "litellm.log"
        env = {"LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
        process = _spawn(
            [str(LITELLM), "--config", str(conf), "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
            log,
            env,
        )
        try:
            _wait_ready(f"http://127.0.0.1:{port}/health/liveliness", process, log, timeout_s=180)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(process)


AISRE_CONF = """\
store: sqlite:///{db}
models:
  {model}:
    protocol: openai
    versions:
      v1:
        replicas: ["{upstream}/v1"]
    route: {{v1: 100}}
"""


@contextmanager
def start_aisre(upstream_url: str, workers: int = 1) -> Iterator[str]:
    """`aisre serve` (`workers` processes) with one model whose only replica is the upstream; records to temp SQLite."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="bench-aisre-") as tmp:
        conf = Path(tmp) / "aisre.yaml"
        conf.write_text(AISRE_CONF.format(db=Path(tmp) / "aisre.db", model=MODEL, upstream=upstream_url))
        log = Path(tmp) / "aisre.log"
        process = _spawn(
            [
                str(AISRE),
                "serve",
                "-c",
                str(conf),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            log,
        )
        try:
            _wait_ready(f"http://127.0.0.1:{port}/v1/models", process, log, timeout_s=60)
            yield f"http://127.0.0.1:{port}"
        finally:
            _stop(process)


TARGETS: dict[str, Callable[[str], AbstractContextManager[str]]] = {
    "direct": start_direct,
    "nginx": start_nginx,
    "litellm": start_litellm,
    "aisre": start_aisre,
}


# --- load ------------------------------------------------------------------------------------------


def sequential_latency_ms(base_url: str, requests: int, warmup: int) -> tuple[np.ndarray, int]:
    """Latencies (ms) of `requests` sequential chat completions on one keep-alive connection, and the failures."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    headers = {"Content-Type": "application/json", "Authorization": "Bearer unused"}
    latencies = np.empty(requests)
    failures = 0
    try:
        for i in range(warmup + requests):
            started = time.perf_counter()
            connection.request("POST", CHAT_PATH, BODY, headers)
            response = connection.getresponse()
            response.read()
            elapsed = time.perf_counter() - started
            if i >= warmup:
                latencies[i - warmup] = elapsed * 1000
                failures += response.status != 200
    finally:
        connection.close()
    return latencies, failures


@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx: int
    socket_errors: int


_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS_MS[unit]


def parse_wrk(output: str) -> WrkResult:
    """Requests/sec, latency percentiles (`--latency`), request count and errors from wrk's text output."""
    percentiles = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+(\S+)", output, re.M))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    return WrkResult(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),  # type: ignore[union-attr]
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        requests=int(re.search(r"(\d+) requests in", output).group(1)),  # type: ignore[union-attr]
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def run_wrk(base_url: str, connections: int, threads: int, duration_s: int) -> WrkResult:
    wrk = shutil.which("wrk") or "/usr/bin/wrk"
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        base_url + CHAT_PATH,
    ]
    done = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=duration_s + 60)
    return parse_wrk(done.stdout)


@dataclass
class Measurement:
    target: str
    seq_p50_ms: float
    seq_p99_ms: float
    seq_failures: int
    wrk: WrkResult | None


def measure(name: str, base_url: str, args: argparse.Namespace) -> Measurement:
    latencies, failures = sequential_latency_ms(base_url, args.requests, args.warmup)
    wrk = run_wrk(base_url, args.connections, args.threads, args.duration) if args.duration > 0 else None
    return Measurement(name, float(np.percentile(latencies, 50)), float(np.percentile(latencies, 99)), failures, wrk)


def table(results: list[Measurement], connections: int) -> str:
    direct = next((r for r in results if r.target == "direct"), None)
    head = (
        f"{'target':<9} {'seq p50 ms':>10} {'seq p99 ms':>10} {'added p50':>9} {'added p99':>9} "
        f"{f'RPS c{connections}':>9} {'vs direct':>9} {'wrk p50':>8} {'wrk p99':>8} {'errors':>7}"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        added50 = r.seq_p50_ms - direct.seq_p50_ms if direct else float("nan")
        added99 = r.seq_p99_ms - direct.seq_p99_ms if direct else float("nan")
        w = r.wrk
        ratio = w.rps / direct.wrk.rps if w and direct and direct.wrk else float("nan")
        errors = r.seq_failures + (w.non_2xx + w.socket_errors if w else 0)
        lines.append(
            f"{r.target:<9} {r.seq_p50_ms:>10.3f} {r.seq_p99_ms:>10.3f} {added50:>9.3f} {added99:>9.3f} "
            f"{(w.rps if w else float('nan')):>9.0f} {ratio:>9.3f} "
            f"{(w.p50_ms if w else float('nan')):>8.2f} {(w.p99_ms if w else float('nan')):>8.2f} "
            f"{errors:>7}"
        )
    by_name = {r.target: r for r in results}
    aisre = by_name.get("aisre")
    if aisre is not None and aisre.wrk is not None:
        lines.append("")
        for peer in ("nginx", "litellm"):
            other = by_name.get(peer)
            if other is not None and other.wrk is not None and other.wrk.rps:
                lines.append(f"aisre / {peer}: {aisre.wrk.rps / other.wrk.rps:.3f}x the RPS at c{connections}")
        if direct is not None:
            lines.append(
                f"aisre added latency (sequential): p50 {aisre.seq_p50_ms - direct.seq_p50_ms:.3f} ms "
                f"(target <= 0.5), p99 {aisre.seq_p99_ms - direct.seq_p99_ms:.3f} ms (target <= 2)"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--targets", default="direct,nginx,aisre,litellm", help=f"comma-separated: {', '.join(TARGETS)}"
    )
    parser.add_argument("--requests", type=int, default=2000, help="sequential requests per target")
    parser.add_argument("--aisre-workers", type=int, default=1, help="worker processes of `aisre serve`")
    parser.add_argument("--warmup", type=int, default=200, help="sequential warm-up requests, not measured")
    parser.add_argument("--duration", type=int, default=10, help="wrk seconds per target (0: skip wrk)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--upstream-latency-s", type=float, default=0.0, help="mock latency before each reply")
    parser.add_argument("--json", type=Path, help="write the measurements here")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.targets.split(",") if n.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown:
        parser.error(f"--targets: unknown {', '.join(unknown)} (known: {', '.join(TARGETS)})")

    results = []
    with serve_in_subprocess("openai", completion_tokens=16, latency_s=args.upstream_latency_s) as upstream:
        print(f"upstream mock: {upstream.url} (pid {upstream.pid})", flush=True)
        for name in names:
            start = TARGETS[name] if name != "aisre" else functools.partial(start_aisre, workers=args.aisre_workers)
            with start(upstream.url) as base_url:
                print(f"{name}: {base_url} ...", flush=True)
                results.append(measure(name, base_url, args))
    print()
    print(table(results, args.connections))
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
