"""The dashboard with 30 days of data: the latency of each JSON API endpoint for since=30d.

    .venv/bin/python bench/dashboard.py [--records 5000000] [--days 30] [--repeat 5] [--db PATH]

1. Fills a fresh SQLite store with `--records` records over `--days` days in batches of 50k through
   `SQLiteStore.write_batch` (so the traffic rollup and the SLO buckets are kept as records commit):
   a classical model `fraud` (v1 stable, v2 canary from day 20; 0.2% errors, log-normal latency)
   and an LLM `chat` (a tenth of the records: TTFT, TPOT, tokens, cost); labels on 10% of fraud's;
   hourly drift signals of a 30-feature monitoring job for both fraud versions; 60 incidents with
   timelines; a registry with a rollback. Prints the write rate.
2. Serves `dashboard_app` with uvicorn on 127.0.0.1 (the dashboard alone, on a ManualClock at the
   end of the data) and times every endpoint over real HTTP: median and worst of `--repeat`, after
   one warm-up call. Target (issue #11): each < 1 s for since=30d.

Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import uvicorn

from aisre.clock import ManualClock
from aisre.config import parse_config
from aisre.dashboard import slos
from aisre.dashboard.app import Prefixed, dashboard_app
from aisre.records import InferenceRecord, Label, Route, Signal, Status
from aisre.respond.incidents import Incidents
from aisre.respond.registry import Registry
from aisre.slo.evaluate import evaluate
from aisre.store import SQLiteStore

T0 = 1_767_225_600.0
BATCH = 50_000
FEATURES = [f"f{k}" for k in range(30)]
CONFIG = """
models:
  fraud: {protocol: oip, versions: {v1: {replicas: ["http://127.0.0.1:1"]}, v2: {replicas: ["http://127.0.0.1:2"]}},
          route: {v1: 90, v2: 10}}
  chat: {protocol: openai, versions: {small: {replicas: ["http://127.0.0.1:3"]}}}
slos:
  - {name: fraud-availability, model: fraud, objective: 0.999, sli: {kind: availability}}
  - {name: fraud-latency, model: fraud, objective: 0.99, sli: {kind: latency, threshold_s: 0.2}}
  - {name: fraud-correctness, model: fraud, objective: 0.95, sli: {kind: correctness}}
  - {name: chat-ttft, model: chat, objective: 0.99, sli: {kind: ttft, threshold_s: 1.0}}
breakers:
  - {model: fraud, version: v2, fallback: {version: v1}, open_when: [{slo: fraud-correctness, alert: page}]}
"""


def fill(store: SQLiteStore, n: int, days: float, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    span = days * 86_400
    spent = 0.0
    for start in range(0, n, BATCH):
        m = min(BATCH, n - start)
        ts = np.sort(rng.uniform(T0 + span * start / n, T0 + span * (start + m) / n, m))
        latency = rng.lognormal(np.log(0.03), 0.7, m)
        errors = rng.random(m) < 0.002
        llm = rng.random(m) < 0.1
        canary = (ts > T0 + span * 2 / 3) & (rng.random(m) < 0.1)
        truth = rng.integers(0, 2, m)
        x = rng.normal(size=(m, 4))
        batch = []
        for i in range(m):
            if llm[i]:
                batch.append(
                    InferenceRecord(
                        model="chat",
                        version="small",
                        inputs={"prompt_chars": int(x[i, 0] * 100 + 500)},
                        prediction=None,
                        output_text="ok",
                        status=Status.ERROR if errors[i] else Status.OK,
                        latency_s=float(latency[i] * 20),
                        ttft_s=float(latency[i] * 5),
                        tpot_s=float(latency[i] / 10),
                        input_tokens=int(200 + 50 * abs(x[i, 1])),
                        output_tokens=int(100 + 40 * abs(x[i, 2])),
                        cost_usd=0.0004,
                        ts=float(ts[i]),
                        id=f"r{start + i}",
                    )
                )
            else:
                batch.append(
                    InferenceRecord(
                        model="fraud",
                        version="v2" if canary[i] else "v1",
                        inputs={"amount": float(x[i, 0]), "age": float(x[i, 1]), "merchant": int(i % 40)},
                        prediction=int(truth[i]),
                        route=Route.CANARY if canary[i] else Route.PRIMARY,
                        status=Status.ERROR if errors[i] else Status.OK,
                        latency_s=float(latency[i]),
                        ts=float(ts[i]),
                        id=f"r{start + i}",
                    )
                )
        labelled = [i for i in np.flatnonzero(rng.random(m) < 0.1) if not llm[i]]
        labels = [Label(f"r{start + i}", int(truth[i] ^ (rng.random() < 0.03)), float(ts[i]) + 600) for i in labelled]
        started = time.perf_counter()
        store.write_batch(batch)
        store.add_labels(labels)
        spent += time.perf_counter() - started
    return spent


def signals(store: SQLiteStore, days: float, seed: int = 1) -> int:
    """Hourly drift windows of a 30-feature job for both fraud versions (what a monitoring job writes)."""
    rng = np.random.default_rng(seed)
    written = 0
    for hour in range(int(days * 24)):
        start, end = T0 + hour * 3600, T0 + (hour + 1) * 3600
        batch = []
        for version in ("v1", "v2"):
            scores = rng.uniform(0, 1, len(FEATURES))
            for feature, p in zip(FEATURES, scores, strict=True):
                labels = {"feature": feature, "method": "ks", "monitor": f"fraud-{version}-drift"}
                batch.append(Signal("fraud", version, "data_drift_score", float(p), 0.05, p < 0.05, labels, start, end))
            share = float(np.mean(scores < 0.05))
            batch.append(Signal("fraud", version, "data_drift_share", share, 0.5, share > 0.5, {}, start, end))
            batch.append(
                Signal(
                    "fraud", version, "accuracy", 0.95, 0.9, False, {"metric": "accuracy", "task": "binary"}, start, end
                )
            )
        store.write_signals(batch, end + 60)
        written += len(batch)
    return written


def incidents_and_registry(store: SQLiteStore, clock: ManualClock, days: float) -> None:
    incidents = Incidents(store, clock=clock)
    for k in range(60):
        clock._now = T0 + k * days * 86_400 / 60  # noqa: SLF001 - the bench sets the time of each incident
        opened = incidents.open(f"drift on fraud v1 ({k})", actor="playbook:bench", model="fraud", version="v1")
        for j in range(8):
            incidents.add_event(opened.incident.id, "evidence", f"window {j} drifted", actor="monitor")
        if k < 57:
            incidents.resolve(opened.incident.id, actor="bench")
    registry = Registry(store, clock=clock)
    registry.register("fraud", "v1", actor="bench")
    registry.register("fraud", "v2", actor="bench")
    registry.promote("fraud", "v1", "stable", actor="bench")
    registry.promote("fraud", "v2", "canary", actor="bench")


def serve(app: object) -> tuple[uvicorn.Server, str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))  # type: ignore[arg-type]
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.01)
    return server, f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=5_000_000)
    parser.add_argument("--days", type=float, default=30)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", type=Path, default=None, help="reuse (or create) this store")
    args = parser.parse_args()
    db = args.db or Path(tempfile.mkdtemp()) / "dashboard.db"
    end = T0 + args.days * 86_400
    config = parse_config(CONFIG)
    fresh = not db.exists()
    store = SQLiteStore(db)
    if fresh:
        evaluate(config.slos, store, ManualClock(T0))  # registers the SLO buckets, kept as records commit
        spent = fill(store, args.records, args.days)
        print(f"wrote {args.records:,} records in {spent:.0f} s ({args.records / spent:,.0f} records/s with labels)")
        print(f"wrote {signals(store, args.days):,} signals")
        incidents_and_registry(store, ManualClock(T0), args.days)
    clock = ManualClock(end)
    slos.SUMMARY_TTL_S = 0.0  # time every call's own work: no reuse of the SLO summaries between calls
    server, url = serve(Prefixed(dashboard_app(config, store, clock)))
    api = f"{url}/dashboard/api/v1"
    last_incident = httpx.get(f"{api}/incidents?limit=1").json()["incidents"][0]["id"]
    endpoints = [
        "/overview",
        "/models/fraud/traffic?since=30d",
        "/models/fraud/traffic?since=30d&step=5m",
        "/models/chat/traffic?since=30d",
        "/models/fraud/signals?kind=drift&since=30d",
        "/models/fraud/signals?since=30d",
        "/slos",
        "/slos/fraud-latency?since=30d",
        "/slos/fraud-correctness?since=30d",
        "/incidents",
        f"/incidents/{last_incident}",
        "/models/fraud/registry",
    ]
    title = f"endpoint (since=30d, {args.records:,} records)"
    print(f"\n{title:<60} {'median':>9} {'worst':>9} {'size':>9}")
    worst_all = 0.0
    with httpx.Client(timeout=120) as client:
        for path in endpoints:
            response = client.get(api + path)
            assert response.status_code == 200, (path, response.text[:300])
            times = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = client.get(api + path)
                times.append(time.perf_counter() - started)
            worst_all = max(worst_all, max(times))
            size = f"{len(response.content) / 1024:.0f} KB"
            print(f"{path:<60} {statistics.median(times) * 1e3:>7.0f} ms {max(times) * 1e3:>6.0f} ms {size:>9}")
    print(f"\nslowest call: {worst_all * 1e3:.0f} ms (target: each endpoint < 1000 ms)")
    server.should_exit = True


if __name__ == "__main__":
    main()
