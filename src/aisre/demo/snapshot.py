"""What the live view shows after a step, read from the running parts (never made up): the routing's weights,
the registry's statuses, the breakers' states, the SLO reports of the judge, the newest monitoring signals and
the store's token and cost totals.

Per-version accuracy is the correctness SLO's good/total over its 1h window: 1 - burn_rate(1h) x (1 - objective),
the same late labels the judge pages on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aisre.store import RecordFilter


@dataclass
class VersionRow:
    model: str
    version: str
    status: str
    weight: float
    requests: int  # in the last step
    fallbacks: int  # of those, answered by the breaker's fallback
    errors: int
    accuracy_1h: float | None
    breaker: str | None


@dataclass
class SLORow:
    name: str
    objective: float
    budget_remaining: float | None
    burn_1h: float | None
    page: str
    problem: str | None


@dataclass
class Snapshot:
    t: float  # seconds from the story's start
    now: float  # the simulated clock
    step: int
    steps: int
    versions: list[VersionRow] = field(default_factory=list)
    slos: list[SLORow] = field(default_factory=list)
    drift: dict[str, Any] = field(default_factory=dict)  # newest dataset_drift of the watched version
    llm: dict[str, Any] = field(default_factory=dict)  # refusal rate, tokens, cost


def take(
    ctx: Any, t: float, k: int, steps: int, counts: dict[str, int], reports: list[Any], last_hour: dict[str, int]
) -> Snapshot:
    """Read the parts (in a worker thread: the store is read). `last_hour`: the drill's response counts summed
    over the last hour of steps (a version without requests then has no accuracy to show, not 100%)."""
    s = ctx.run.scenario
    gateway = ctx.gateway
    now = float(gateway.clock.now())
    snap = Snapshot(t, now, k, steps)
    by_slo = {r.name: r for r in reports}
    for r in reports:
        budget = r.budget
        snap.slos.append(
            SLORow(
                r.name,
                r.objective,
                None if budget is None else float(budget.remaining),
                r.burn_rates.get("1h"),
                r.alerts.get("page", "inactive"),
                r.problem,
            )
        )
    statuses = {v.version: v.status for v in ctx.registry.list(s.model)}
    llm_name, llm_version = (s.llm.model, s.llm.version) if s.llm else (None, "")
    served = _served(counts, s.model, llm_name, llm_version)
    recent = _served(last_hour, s.model, llm_name, llm_version)
    models = [(s.model, list(s.versions))] + ([(s.llm.model, [s.llm.version])] if s.llm else [])
    for model, versions in models:
        route = gateway.routing.models.get(model)
        for v in versions:
            ok, fb, err = served.get((model, v), (0, 0, 0))
            acc = None
            for slo in ctx.judges.judge.slos:
                if slo.model == model and slo.version == v and slo.sli.kind == "correctness":
                    rep = by_slo.get(slo.name)
                    burn = None if rep is None else rep.burn_rates.get("1h")
                    had_traffic = sum(recent.get((model, v), (0, 0, 0))) > 0
                    if burn is not None and rep is not None and rep.problem is None and had_traffic:
                        acc = max(0.0, 1.0 - burn * (1.0 - rep.objective))
            breaker = getattr(gateway, "breakers", None)
            b = breaker.breakers.get((model, v)) if breaker else None
            snap.versions.append(
                VersionRow(
                    model,
                    v,
                    statuses.get(v, "served") if model == s.model else "served",
                    float(route.weights.get(v, 0.0)) if route else 0.0,
                    ok + fb + err,
                    fb,
                    err,
                    acc,
                    None if b is None else str(b.state.value),
                )
            )
    store = gateway.recorder.store
    drift = _newest(store, s.model, "dataset_drift", now)
    share = _newest(store, s.model, "data_drift_share", now)
    if drift is not None:
        snap.drift = {
            "version": drift.version,
            "breached": bool(drift.breached),
            "share": None if share is None else share.value,
            "features": _drifted_features(store, s.model, drift, now),
        }
    if s.llm is not None:
        refusal = _newest(store, s.llm.model, "llm_refusal_rate", now)
        tokens, cost, n = 0, 0.0, 0
        for _key, _model, _status, c, i, o in store.key_rows(RecordFilter(model=s.llm.model)):
            n += 1
            tokens += int(i or 0) + int(o or 0)
            cost += float(c or 0.0)
        snap.llm = {
            "refusal_rate": None if refusal is None else refusal.value,
            "refusal_breached": bool(refusal.breached) if refusal is not None else False,
            "requests": n,
            "tokens": tokens,
            "cost_usd": cost,
        }
    return snap


def _served(
    counts: dict[str, int], tabular: str, llm: str | None, llm_version: str = ""
) -> dict[tuple[str, str], tuple[int, int, int]]:
    """(model, version) -> (primary, fallback, errors) from the drill's `version/route/status` counts (OIP) and
    `model/version/status` counts (the LLM's: a fallback rule's answer carries `rule:...` as its version)."""
    out: dict[tuple[str, str], list[int]] = {}
    for key, n in counts.items():
        a, b, status = key.split("/", 2)
        if llm is not None and a == llm:  # a fallback rule's answer names the rule as its version
            model, version, route = llm, llm_version, "fallback" if b.startswith("rule:") else "primary"
        else:
            model, version, route = tabular, a, b
        row = out.setdefault((model, version), [0, 0, 0])
        if not status.startswith("2"):
            row[2] += n
        elif route == "fallback":
            row[1] += n
        else:
            row[0] += n
    return {key: (ok, fb, err) for key, (ok, fb, err) in out.items()}


def _newest(store: Any, model: str, name: str, now: float) -> Any:
    rows = store.signals(model=model, name=name, since=now - 86_400.0)
    if not rows:
        return None
    return max(rows, key=lambda row: (row[1].window_end or row[0], row[0]))[1]


def _drifted_features(store: Any, model: str, drift: Any, now: float) -> int:
    rows = store.signals(model=model, name="data_drift_score", since=now - 86_400.0)
    return sum(1 for _ts, sig in rows if sig.window_end == drift.window_end and sig.breached)
