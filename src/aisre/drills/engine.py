"""Runs a drill: the real gateway app, a real SQLite store, real mock upstreams, one accelerated clock.

Why in-process (httpx's ASGI transport) and not over a socket: the gateway stamps each record with its
clock, and the monitors, the SLO judge, the playbooks and the registry follower must see the same
simulated instant; in one process every part shares one `ManualClock` and the drill decides exactly when
each step's traffic is sent, when labels arrive and when the judges run, so a run is reproducible and a
day takes seconds. The request still goes through the whole gateway (the ASGI app, its protocol adapter,
the pipeline, routing, fallback, the recorder and the store); only the client socket is skipped. The
upstreams a fault acts on (OIP replicas, the OpenAI mock) are real servers on 127.0.0.1, so latency is
real latency and a killed replica is a closed port.

Each step: the clock moves to the step's time; the serving faults whose window opens or closes turn the
mocks' knobs; the step's rows (data faults applied) are sent, one row a request, `concurrency` at a time;
records are flushed; labels that are due are posted (`label_delay` after their request); the monitoring
jobs run (`MonitorRunner.run_due`), then the SLO judge and the playbooks (`SLOService.tick`, in a worker
thread so the playbooks' actuator can reach the gateway's event loop), then the registry follower applies
registry changes to the routing. What each part did becomes a timeline event.

`DrillHooks` lets a caller (the demo) watch and extend a run without changing what a drill does: adjust the
`models:` section it serves (prices, another upstream), choose the LLM requests, and be called once the
gateway is up (`started`: e.g. serve the same app on a real port with uvicorn), after each step (`stepped`:
a live view, pacing) and after the last step while the gateway is still up (`finished`: keep serving).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from aisre.clock import ManualClock
from aisre.config.loader import config_from_dict
from aisre.drills.faults import Replicas, ServingFaults, apply_data_faults
from aisre.drills.scenario import Scenario
from aisre.drills.timeline import DrillRun, Event, Watcher
from aisre.drills.traffic import Batch, ReferenceData, chat_request, oip_request
from aisre.errors import ConfigError
from aisre.records import Label

log = logging.getLogger("aisre.drills")
WARM_UP_BEFORE_S = 86_400.0  # when the warm-up requests are sent, before the drill's start (seconds)


@dataclass
class DrillContext:
    """What a hook can reach while the drill runs: the ASGI app (serve it elsewhere too), the gateway, the
    store, the registry, the judges (monitors, SLO judge, follower) and the timeline so far."""

    app: Any
    gateway: Any
    store: Any
    registry: Any
    judges: _Judges
    run: DrillRun

    async def judge_now(self) -> None:
        """Run the monitors, the SLO judge, the follower and the breakers' quality conditions at the clock's
        current time, as a step does, and add what they did to the timeline (for a caller that keeps the
        gateway up after the steps)."""
        signals = await asyncio.to_thread(self.judges.monitors.run_due)
        reports = await asyncio.to_thread(self.judges.judge.tick)
        await self.judges.follower.poll()
        await _judge_breakers(self.gateway, self.judges.judge.slos)
        self.judges.watcher.collect(self.gateway.clock.now() - self.run.scenario.clock.start, signals, reports)


@dataclass
class StepInfo:
    """One finished step: its time (seconds from the start), index, responses counted by
    version/route/status, the signals the monitors wrote and the SLO reports of the judge."""

    t: float
    k: int
    counts: dict[str, int]
    signals: list[Any]
    reports: list[Any]


class DrillHooks:
    """No-op hooks: a plain drill. Subclass and override what you need (see the module docstring)."""

    def models(self, models: dict[str, Any]) -> dict[str, Any]:
        """The `models:` section the drill serves (the mocks' URLs, the trained files): returned, maybe changed."""
        return models

    def llm_request(self, model: str, i: int) -> tuple[str, dict[str, Any]]:
        """The path and body of the LLM's i-th request."""
        return "/v1/chat/completions", chat_request(model, i)

    async def started(self, ctx: DrillContext) -> None:
        """The gateway is up, the versions registered, the warm-up sent; no step has run."""

    async def stepped(self, ctx: DrillContext, step: StepInfo) -> None:
        """A step has run (its traffic, labels and judges); the next one starts when this returns."""

    async def finished(self, ctx: DrillContext) -> None:
        """The last step has run; the gateway stays up until this returns."""


class Drill:
    """`Drill(scenario, workdir).run()` -> DrillRun. `workdir` holds the store and the trained models."""

    def __init__(self, scenario: Scenario, workdir: Path, hooks: DrillHooks | None = None) -> None:
        self.scenario = scenario
        self.workdir = Path(workdir)
        self.hooks = hooks or DrillHooks()
        s = scenario
        self.data = ReferenceData(s.traffic.dataset, s.traffic.group_feature, s.seed)
        for i, f in enumerate(s.faults):
            if f.features:
                self.data.check_features(f.features, f"faults.{i}.features")
        # The clock starts a day early: the untimed warm-up requests (cold connections, first predictions) are
        # recorded then, outside every alert window and monitoring reference of the drill.
        self.clock = ManualClock(s.clock.start - WARM_UP_BEFORE_S)
        self.run_ = DrillRun(s)
        self.replicas: dict[str, Replicas] = {}
        self.llm: Replicas | None = None

    def run(self) -> DrillRun:
        import warnings

        try:
            with warnings.catch_warnings():  # the OIP mocks hand their estimators bare arrays
                warnings.filterwarnings("ignore", message="X does not have valid feature names")
                return asyncio.run(self._run())
        finally:
            for r in [*self.replicas.values(), *([self.llm] if self.llm else [])]:
                r.stop()

    # -- set-up ------------------------------------------------------------------------------------------
    def _serve(self) -> dict[str, Any]:
        """Train every version, start the mock upstreams; the `models:` section serving them."""
        from aisre.testing.oip_model import OipModel
        from aisre.testing.oip_server import oip_app
        from aisre.testing.openai_server import openai_app
        from aisre.testing.server import serve_in_thread
        from aisre.testing.settings import MockSettings

        s = self.scenario
        versions: dict[str, Any] = {}
        for i, (name, spec) in enumerate(s.versions.items()):
            seed = spec.seed if spec.seed is not None else s.seed * 100 + i
            path, estimator, accuracy = self.data.train(seed, self.workdir / "models" / f"{s.model}-{name}.joblib")
            self.run_.trained[name] = accuracy
            if spec.serve == "inprocess":
                versions[name] = {"sklearn": str(path)}
                continue
            replicas = self.replicas[name] = Replicas()
            for k in range(spec.replicas):
                app = oip_app(MockSettings(model=s.model, seed=seed + k), OipModel.from_estimator(estimator))
                replicas.add(serve_in_thread(app), app)
            versions[name] = {"replicas": [srv.url for srv in replicas.servers]}
        others = {v: spec.weight for v, spec in s.versions.items() if spec.status in ("canary", "candidate")}
        # The stable version first: on a tie the gateway (and the registry's plan) take the first as primary.
        weights = {s.stable: max(0.0, 100.0 - sum(others.values())), **others}
        models: dict[str, Any] = {s.model: {"protocol": "oip", "versions": versions, "route": weights}}
        if s.llm is not None:
            app = openai_app(MockSettings(model=s.llm.model, completion_tokens=8, seed=s.seed))
            self.llm = Replicas()
            self.llm.add(serve_in_thread(app), app)
            url = f"{self.llm.servers[0].url}/v1"
            models[s.llm.model] = {
                "protocol": "openai",
                "log_content": True,
                "versions": {s.llm.version: {"replicas": [url]}},
            }
        return self.hooks.models(models)

    def _config(self, models: dict[str, Any]) -> Any:
        s = self.scenario
        sections = _with_warmup_reference(s.aisre, s.clock.start, s.clock.start + s.clock.warmup_s)
        doc = {"store": {"url": f"sqlite:///{self.workdir / 'aisre.db'}", "durability": "fast"}, "models": models}
        doc.update(sections)
        try:
            return config_from_dict(doc, "scenario")
        except ConfigError as exc:  # the drill made store and models; the rest is the scenario's `aisre:` block
            problems = [p if p.startswith(("models", "store")) else f"aisre.{p}" for p in exc.problems]
            raise ConfigError(problems, "scenario") from None

    def _register(self, store: Any) -> None:
        from aisre.respond.registry import Registry

        s = self.scenario
        registry = Registry(store, clock=self.clock)
        for name in s.versions:
            registry.register(
                s.model, name, actor="drill", artifact=str(self.workdir / "models" / f"{s.model}-{name}.joblib")
            )
        registry.promote(s.model, s.stable, "stable", actor="drill", reason="drill set-up")
        for name, spec in s.versions.items():
            if spec.status in ("canary", "shadow"):
                registry.promote(s.model, name, spec.status, actor="drill", reason="drill set-up")

    # -- the run -----------------------------------------------------------------------------------------
    async def _run(self) -> DrillRun:
        from aisre.gateway.app import create_app
        from aisre.gateway.registry_sync import RegistryFollower
        from aisre.monitor.jobs.runner import MonitorRunner
        from aisre.respond.incidents import Incidents
        from aisre.respond.playbooks import GatewayActuator
        from aisre.respond.registry import Registry
        from aisre.slo.service import SLOService

        s = self.scenario
        config = self._config(self._serve())
        # The drill runs the monitors and the judge itself, on its clock: the gateway must not start its own.
        gateway_config = config.model_copy(
            # (the gateway's breakers judge their quality conditions every slo_evaluation.interval of real time:
            # a day, so only the drill's steps do, on the drill's clock; see _judge_breakers)
            update={
                "monitors": [],
                "slo_evaluation": config.slo_evaluation.model_copy(update={"enabled": False, "interval": "1d"}),
            }
        )
        app = create_app(gateway_config, clock=self.clock)
        starlette = app.app
        async with starlette.router.lifespan_context(starlette):
            gateway = starlette.state.gateway
            # The split between versions is drawn from the routing's RNG: seeded, so a drill replays the same.
            gateway.routing.rng = random.Random(s.seed)
            store = gateway.recorder.store
            metrics = gateway.recorder.metrics
            await asyncio.to_thread(self._register, store)
            registry = Registry(store, clock=self.clock)
            follower = RegistryFollower(gateway, registry)
            await follower.poll()
            setup_history = len(registry.history(s.model))
            monitors = MonitorRunner(config, store, self.clock, metrics)
            judge = SLOService(config, store, self.clock, metrics, GatewayActuator(gateway, asyncio.get_running_loop()))
            incidents = Incidents(store, clock=self.clock)
            watcher = Watcher(self.run_, gateway, registry, incidents, judge, setup_history)
            parts = _Judges(monitors, judge, follower, watcher)
            serving = ServingFaults(s.faults, self.replicas, self.llm, s.stable)
            transport = httpx.ASGITransport(app=app)
            ctx = DrillContext(app, gateway, store, registry, parts, self.run_)
            try:
                async with httpx.AsyncClient(transport=transport, base_url="http://drill", timeout=30) as client:
                    await self._send(client, self.data.draw(s.traffic.concurrency), -1, [])  # warm-up
                    await asyncio.to_thread(gateway.recorder.flush)
                    await self.hooks.started(ctx)
                    await self._steps(client, ctx, serving)
                    await self.hooks.finished(ctx)
            finally:
                judge.close()
        return self.run_

    async def _steps(self, client: httpx.AsyncClient, ctx: DrillContext, serving: ServingFaults) -> None:
        s = self.scenario
        gateway, parts = ctx.gateway, ctx.judges
        step, end = s.clock.step_s, s.clock.duration_s
        pending: list[tuple[float, str, int]] = []  # (due ts, record id, label)
        data_faults = [f for f in s.faults if f.kind in ("covariate_drift", "concept_drift", "bias_spike")]
        data_on: set[str] = set()
        k = 0
        while k * step < end:
            t = k * step
            self.clock.advance(s.clock.start + t - self.clock.now())
            for text in await asyncio.to_thread(serving.step, t):
                self.run_.events.append(Event(t, "fault", text))
            for f in data_faults:
                if f.active(t) != (f.name in data_on):
                    data_on.symmetric_difference_update({f.name})
                    verb = "starts" if f.active(t) else "ends"
                    self.run_.events.append(Event(t, "fault", f"{f.name}: {f.kind} {verb}"))
            batch = apply_data_faults(s.faults, t, self.data.draw(s.traffic.requests_per_step), self.data)
            counts = await self._send(client, batch, k, pending)
            await asyncio.to_thread(gateway.recorder.flush)
            now = self.clock.now()
            due = [p for p in pending if p[0] <= now]
            if due:
                pending[:] = [p for p in pending if p[0] > now]
                await asyncio.to_thread(gateway.recorder.store.add_labels, [Label(r, y, ts=ts) for ts, r, y in due])
            # A job loads its stored reference on its first run: not before the warm-up range is complete.
            signals = await asyncio.to_thread(parts.monitors.run_due) if t >= s.clock.warmup_s else []
            reports = await asyncio.to_thread(parts.judge.tick)
            await parts.follower.poll()
            await _judge_breakers(gateway, parts.judge.slos)
            parts.watcher.collect(t, signals, reports)
            self.run_.steps.append({"t_s": t, "requests": dict(sorted(counts.items()))})
            await self.hooks.stepped(ctx, StepInfo(t, k, dict(counts), signals, reports))
            k += 1

    async def _send(
        self, client: httpx.AsyncClient, batch: Batch, k: int, pending: list[tuple[float, str, int]]
    ) -> Counter[str]:
        """One step's requests, `concurrency` at a time: a row a request (its record id gets its label later)
        and the LLM's chats. Returns the responses counted by version/route/status."""
        s = self.scenario
        limit = asyncio.Semaphore(s.traffic.concurrency)
        counts: Counter[str] = Counter()
        delay = s.traffic.label_delay_s

        async def one(row: dict[str, Any], label: int) -> None:
            async with limit:
                r = await client.post(f"/v2/models/{s.model}/infer", json=oip_request(row))
            h = r.headers
            counts[f"{h.get('x-aisre-version', '-')}/{h.get('x-aisre-route', '-')}/{r.status_code}"] += 1
            rid = h.get("x-aisre-record-id")
            if rid and delay is not None:
                pending.append((self.clock.now() + delay, rid, label))

        async def chat(model: str, i: int) -> None:
            path, body = self.hooks.llm_request(model, i)
            async with limit:
                r = await client.post(path, json=body)
            counts[f"{model}/{r.headers.get('x-aisre-version', '-')}/{r.status_code}"] += 1

        rows: list[dict[str, Any]] = [{str(c): v for c, v in r.items()} for r in batch.X.to_dict("records")]
        jobs = [one(row, int(y)) for row, y in zip(rows, batch.y, strict=True)]
        if s.llm is not None:
            jobs += [chat(s.llm.model, k * 1000 + i) for i in range(s.traffic.llm_requests_per_step)]
        await asyncio.gather(*jobs)
        return counts


@dataclass
class _Judges:
    """What runs after each step's traffic, on the drill's clock."""

    monitors: Any
    judge: Any
    follower: Any
    watcher: Watcher


async def _judge_breakers(gateway: Any, slos: list[Any]) -> None:
    """The AI breakers' quality conditions (signals, SLO burn rates) judged at the clock's time, as the
    gateway's own loop does every interval; their error and latency conditions see every answer."""
    breakers = getattr(gateway, "breakers", None)
    if not breakers or not hasattr(breakers, "quality_verdicts"):
        return
    store = gateway.recorder.store
    verdicts = await asyncio.to_thread(breakers.quality_verdicts, store, slos, gateway.clock.now())
    breakers.apply(verdicts)


def _with_warmup_reference(sections: dict[str, Any], since: float, until: float) -> dict[str, Any]:
    """`reference: warmup` in a monitor means the drill's clean first hours (a stored range)."""
    out = dict(sections)
    monitors = out.get("monitors")
    if isinstance(monitors, list):
        out["monitors"] = [
            {**m, "reference": {"since": since, "until": until}}
            if isinstance(m, dict) and m.get("reference") == "warmup"
            else m
            for m in monitors
        ]
    return out
