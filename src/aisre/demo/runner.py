"""Runs the demo: the embedded story on the drill engine, paced, drawn live, served on a real port.

The drill engine does the work (the real gateway app in-process on an accelerated `ManualClock`, real mock
upstreams, a real store, monitors, SLO judge, playbooks, breakers, faults); `DemoHooks` adds what a visitor
needs: prices and the stable model's columns (`models`), the same app served by uvicorn on 127.0.0.1 in the
drill's event loop from the start (`started`), a snapshot, the live view, narration and pacing after each
step (`stepped`), then, unless `exit_after`, serving on with the clock moving on in real time from the
story's end and the judges running every few seconds (`finished`), until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.live import Live

from aisre.demo import snapshot as snap_mod
from aisre.demo.options import DemoOptions
from aisre.demo.story import Story, train_stable
from aisre.demo.view import clock_text, explain, headlines, render
from aisre.drills.engine import DrillContext, DrillHooks, StepInfo

JUDGE_EVERY_S = 10.0  # real seconds between the judges' runs while serving after the story


class DemoHooks(DrillHooks):
    def __init__(self, story: Story, options: DemoOptions, sock: socket.socket, console: Console) -> None:
        self.story = story
        self.options = options
        self.sock = sock
        self.console = console
        self.live: Live | None = None
        self.server: Any = None
        self.server_task: asyncio.Task[None] | None = None
        self.narration: list[str] = []
        self.said = 0  # narration lines of the story file already said
        self.seen_events = 0
        self.lines: list[tuple[float, str, str]] = []
        self.last_step_at = 0.0
        self.last: snap_mod.Snapshot | None = None
        self.totals: dict[str, Any] = {}
        self.models_doc: dict[str, Any] = {}
        self.recent: list[dict[str, int]] = []  # each step's response counts
        s = story.scenario
        self.steps = int(-(-s.clock.duration_s // s.clock.step_s))
        self.t0 = s.clock.start
        # Wall time per step: the quiet steps before the first fault take half as long as the others.
        first = min((f.at_s for f in s.faults), default=s.clock.duration_s)
        weights = [0.5 if k * s.clock.step_s < first else 1.0 for k in range(self.steps)]
        scale = 0.0 if options.fast else story.pace_s / sum(weights)
        self.step_wall = [w * scale for w in weights]

    # -- the drill's hooks ---------------------------------------------------------------------------------
    def models(self, models: dict[str, Any]) -> dict[str, Any]:
        s = self.story.scenario
        stable = models[s.model]["versions"][s.stable]
        if self.story.stable_features_prefix and "sklearn" in stable:
            train_stable(s, self.story.stable_features_prefix, Path(stable["sklearn"]))
        for model, price in self.story.prices.items():
            for version in (models.get(model) or {}).get("versions", {}).values():
                version["price"] = dict(price)
        if self.options.llm_url is not None and s.llm is not None:
            models[s.llm.model]["versions"][s.llm.version]["replicas"] = [self.options.llm_url]
        self.models_doc = copy.deepcopy(models)
        return models

    def llm_request(self, model: str, i: int) -> tuple[str, dict[str, Any]]:
        if self.options.llm_url is None:
            return super().llm_request(model, i)
        # The real small LLM is a base model: completions work, chat returns empty text.
        prompt = f"Q: In one sentence, what does a circuit breaker do in software? (#{i})\nA:"
        return "/v1/completions", {"model": model, "prompt": prompt, "max_tokens": 24, "temperature": 0}

    async def started(self, ctx: DrillContext) -> None:
        import random

        import uvicorn

        # Which requests probe a half-open breaker is a random draw: seeded, so the story replays the same.
        breakers = getattr(ctx.gateway, "breakers", None)
        for i, breaker in enumerate(getattr(breakers, "breakers", {}).values()):
            breaker.rng = random.Random(ctx.run.scenario.seed * 1000 + i)

        config = uvicorn.Config(ctx.app, lifespan="off", log_level="warning", access_log=False)
        self.server = uvicorn.Server(config)
        # Ctrl-C is the demo's to handle (it stops the story and the server together), not uvicorn's.
        self.server.capture_signals = contextlib.nullcontext
        self.server_task = asyncio.create_task(self.server.serve(sockets=[self.sock]))
        base = self.base_url
        self.say(f"Serving the gateway at {base} (dashboard: {base}/dashboard/) while the story runs.")
        if self.console.is_terminal:
            self.live = Live(console=self.console, refresh_per_second=4, transient=False)
            self.live.start()
        self.last_step_at = time.perf_counter()

    async def stepped(self, ctx: DrillContext, step: StepInfo) -> None:
        for line in self.story.narration[self.said :]:
            if line.at_s > step.t:
                break
            self.say(f"{clock_text(self.t0, line.at_s)} {line.say}" if line.at_s else line.say)
            self.said += 1
        new = ctx.run.events[self.seen_events :]
        self.seen_events = len(ctx.run.events)
        llm = ctx.run.scenario.llm.model if ctx.run.scenario.llm else None
        for t, kind, text in headlines(new):
            self.lines.append((t, kind, text))
            if self.live is None:
                self.console.print(f"{clock_text(self.t0, t)} [{kind}] {text}", highlight=False, markup=False)
        for e in new:
            why = explain(e, llm)
            if why:
                self.say(why)
        self.recent.append(step.counts)
        hour = max(1, int(3600 // ctx.run.scenario.clock.step_s))
        last_hour: Counter[str] = Counter()
        for counts in self.recent[-hour:]:
            last_hour.update(counts)
        snap = await asyncio.to_thread(
            snap_mod.take, ctx, step.t, step.k, self.steps, step.counts, step.reports, dict(last_hour)
        )
        self.last = snap
        if self.live is not None:
            self.live.update(render(snap, self.lines, self.narration, self.t0, self.console.size.height))
        wait = self.step_wall[min(step.k, self.steps - 1)] - (time.perf_counter() - self.last_step_at)
        if wait > 0:
            await asyncio.sleep(wait)
        self.last_step_at = time.perf_counter()

    async def finished(self, ctx: DrillContext) -> None:
        try:
            if self.live is not None:
                self.live.stop()
                self.live = None
            totals = await asyncio.to_thread(_totals, ctx)
            self.totals = totals
            if self.options.json_out is not None:
                self.write_json(ctx, totals)
            self.write_config()
            self.summary(totals)
            if self.options.exit_after:
                return
            self.write_example_request()
            self.explore_help()
            await self.serve_on(ctx)
        finally:
            await self.stop_server()

    def close(self) -> None:
        """After the run, however it ended (Ctrl-C mid-story included): give the terminal back."""
        if self.live is not None:
            self.live.stop()
            self.live = None

    # -- helpers -------------------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://{self.options.host}:{self.options.port}"

    def say(self, text: str) -> None:
        self.narration.append(text)
        if self.live is None:
            self.console.print(f"> {text}", style="italic", highlight=False, markup=False)

    async def serve_on(self, ctx: DrillContext) -> None:
        """Serve until cancelled: the simulated clock moves on in real time from the story's end (records of
        what the visitor sends get sensible times; the dashboard's "now" moves) and the judges run."""
        clock = ctx.gateway.clock
        clock.advance(max(0.0, time.time() - clock.now()))  # the story ends within the hour before now
        last = time.perf_counter()
        judged = last
        while True:
            await asyncio.sleep(1.0)
            now = time.perf_counter()
            clock.advance(now - last)
            last = now
            if now - judged >= JUDGE_EVERY_S:
                judged = now
                await asyncio.to_thread(ctx.gateway.recorder.flush)
                await ctx.judge_now()

    async def stop_server(self) -> None:
        if self.server is not None and self.server_task is not None:
            self.server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self.server_task), timeout=5)
            self.server_task.cancel()
        with contextlib.suppress(OSError):
            self.sock.close()

    def write_json(self, ctx: DrillContext, totals: dict[str, Any]) -> None:
        from aisre.drills import judge, to_json

        doc = to_json(ctx.run, judge(ctx.run), 0.0)
        doc["demo"] = {"url": self.base_url, "store": f"sqlite:///{self.options.workdir / 'aisre.db'}", **totals}
        assert self.options.json_out is not None
        self.options.json_out.write_text(json.dumps(doc, indent=2, default=str))

    def summary(self, totals: dict[str, Any]) -> None:
        c = self.console
        c.rule("the story, in order")
        for t, kind, text in self.lines:
            c.print(f"{clock_text(self.t0, t)} [{kind}] {text}", highlight=False, markup=False)
        c.print(
            f"{totals['requests']:,} requests recorded, {totals['labels']:,} late labels, "
            f"{totals['incidents']} incidents, LLM tokens {totals['llm_tokens']:,} costing "
            f"${totals['llm_cost_usd']:.4f} (all models ${totals['cost_usd']:.4f})",
            highlight=False,
        )

    def write_config(self) -> None:
        """WORKDIR/aisre.yaml: the configuration the story ran (the drill builds it in memory), so `aisre slo
        status -c`, `aisre dashboard -c` and `aisre incidents` work on the store after the demo."""
        from aisre.drills.engine import _with_warmup_reference

        s = self.story.scenario
        doc: dict[str, Any] = {"store": {"url": f"sqlite:///{self.options.workdir / 'aisre.db'}"}}
        doc["models"] = self.models_doc
        doc.update(_with_warmup_reference(s.aisre, s.clock.start, s.clock.start + s.clock.warmup_s))
        head = (
            "# The configuration `aisre demo` ran (written at the story's end). The upstream URLs are the demo's\n"
            "# mock servers, gone once it ends; the store, the SLOs and the monitors stay usable:\n"
            "#   aisre slo status -c aisre.yaml    aisre dashboard -c aisre.yaml\n"
        )
        self.config_file.write_text(head + yaml.safe_dump(doc, sort_keys=False))

    @property
    def config_file(self) -> Path:
        return self.options.workdir / "aisre.yaml"

    @property
    def example_request(self) -> Path:
        return self.options.workdir / "fraud-request.json"

    def write_example_request(self) -> None:
        """One real row of the data set as an OIP request (the model takes all 31 inputs), for curl -d @file."""
        from aisre.drills.traffic import ReferenceData, oip_request

        s = self.story.scenario
        data = ReferenceData(s.traffic.dataset, s.traffic.group_feature, s.seed)
        row = {str(k): float(v) for k, v in data.X.iloc[0].items()}
        self.example_request.write_text(json.dumps(oip_request(row)))

    def explore_help(self) -> None:
        s = self.story.scenario
        store = f"sqlite:///{self.options.workdir / 'aisre.db'}"
        base = self.base_url
        llm = s.llm.model if s.llm else "assistant"
        self.console.rule("explore (Ctrl-C to stop)")
        for line in (
            f"dashboard   {base}/dashboard/",
            f"health      curl -s {base}/v2/health/ready",
            f"metrics     curl -s {base}/metrics | grep aisre_breaker",
            f"OIP         curl -s {base}/v2/models/{s.model}/infer -H 'content-type: application/json' "
            f"-d @{self.example_request}",
            f"OpenAI      curl -s {base}/v1/chat/completions -H 'content-type: application/json' "
            f"""-d '{{"model":"{llm}","messages":[{{"role":"user","content":"hi"}}]}}'""",
            f"            python -c \"import openai; c = openai.OpenAI(base_url='{base}/v1', api_key='x'); "
            f"print(c.chat.completions.create(model='{llm}', messages=[{{'role':'user','content':'hi'}}]))\"",
            f"store       {self.options.workdir / 'aisre.db'}",
            f"            aisre log stats --store {store}",
            f"            aisre incidents list --store {store}",
            f"config      {self.config_file}  (aisre slo status -c {self.config_file})",
            "the gateway's clock now follows the real time; the monitors, SLO judge and breakers run every "
            f"{JUDGE_EVERY_S:.0f} s",
        ):
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)


def _totals(ctx: DrillContext) -> dict[str, Any]:
    from aisre.respond.incidents import Incidents
    from aisre.store import RecordFilter

    store = ctx.store
    s = ctx.run.scenario
    requests, cost = 0, 0.0
    llm_tokens, llm_cost = 0, 0.0
    for _key, model, _status, c, i, o in store.key_rows(RecordFilter()):
        requests += 1
        cost += float(c or 0.0)
        if s.llm is not None and model == s.llm.model:
            llm_tokens += int(i or 0) + int(o or 0)
            llm_cost += float(c or 0.0)
    incidents = Incidents(store, clock=ctx.gateway.clock).list()
    return {
        "requests": requests,
        "labels": store.label_count(),
        "cost_usd": round(cost, 6),
        "llm_tokens": llm_tokens,
        "llm_cost_usd": round(llm_cost, 6),
        "incidents": len(incidents),
        "incident_titles": [i.title for i in incidents],
    }
