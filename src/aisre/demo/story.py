"""The embedded story: `story.yaml` (package data) read into a drill `Scenario` and the demo's own settings
(prices, the stable model's columns, pace, narration), and the stable model trained on its columns.

Why the stable model reads fewer columns: the story's drift hits columns only the canary reads (a new
feature service's unit bug), so the rollback to v1 really recovers, as it would in production; a drift of
every input would hurt every version alike and no rollback could help.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from aisre.config.slo import parse_duration
from aisre.drills.scenario import Scenario, scenario_from_dict
from aisre.errors import ConfigError

STORY = "story.yaml"


@dataclass(frozen=True)
class Line:
    """A narration line shown when the story reaches `at_s` (seconds from its start)."""

    at_s: float
    say: str
    mock_llm_only: bool = False  # about a fault injected into the mock LLM (not said with --real-llm)


@dataclass
class Story:
    scenario: Scenario
    prices: dict[str, dict[str, float]] = field(default_factory=dict)
    stable_features_prefix: str | None = None
    pace_s: float = 120.0
    narration: list[Line] = field(default_factory=list)


def load_story(seed: int | None = None, text: str | None = None) -> Story:
    """The shipped story (or `text`, a story document), with `seed` overriding the scenario's."""
    source = "aisre/demo/story.yaml"
    if text is None:
        text = resources.files("aisre.demo").joinpath(STORY).read_text()
    doc = yaml.safe_load(text)
    if not isinstance(doc, dict) or not isinstance(doc.get("scenario"), dict):
        raise ConfigError(["expected a mapping with scenario: (a drill scenario) and demo:"], source)
    scenario = scenario_from_dict(doc["scenario"], source)
    if seed is not None:
        scenario = scenario.model_copy(update={"seed": seed})
    demo = doc.get("demo") or {}
    try:
        lines = [
            Line(_seconds(n["at"]), str(n["say"]), bool(n.get("mock_llm_only", False)))
            for n in demo.get("narration", [])
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError([f"demo.narration: expected {{at: DURATION, say: TEXT}} items ({exc})"], source) from None
    return Story(
        scenario=scenario,
        prices=dict(demo.get("prices") or {}),
        stable_features_prefix=demo.get("stable_features_prefix"),
        pace_s=float(demo.get("pace_s", 120.0)),
        narration=sorted(lines, key=lambda line: line.at_s),
    )


def story_start(scenario: Scenario, now: float) -> Scenario:
    """The scenario with its clock starting on the hour, its duration before `now`: the story ends at about the
    real time, so what reads the store on the real clock (`aisre log stats --since 1d`, `aisre dashboard`) sees
    it as recent. On the hour, as the drills' default start is, so the epoch-aligned monitoring windows and
    SLO minute buckets fall the same way on every run (the story replays the same)."""
    start = (now - scenario.clock.duration_s) // 3600 * 3600
    return scenario.model_copy(update={"clock": scenario.clock.model_copy(update={"start": start})})


def with_real_llm(story: Story, llm_requests_per_step: int = 2) -> Story:
    """The story for a real LLM upstream: no fault is injected into a real model (the refusal storm acts on
    the mock's knobs), so that fault, its expectations and its narration go; fewer LLM requests a step (a
    small model on CPU answers a few a second)."""
    s = story.scenario
    storms = {f.name for f in s.faults if f.kind == "refusal_storm"}
    llm = s.llm.model if s.llm else None
    expect = [
        e
        for e in s.expect
        if e.after not in storms
        and not (e.breaker and e.breaker.get("model") == llm)
        and e.signal != "llm_refusal_rate"
    ]
    traffic = s.traffic.model_copy(update={"llm_requests_per_step": llm_requests_per_step})
    scenario = s.model_copy(
        update={"faults": [f for f in s.faults if f.name not in storms], "expect": expect, "traffic": traffic}
    )
    lines = [line for line in story.narration if not line.mock_llm_only]
    return Story(scenario, story.prices, story.stable_features_prefix, story.pace_s, lines)


def _seconds(value: Any) -> float:
    return parse_duration(value) if isinstance(value, str) else float(value)


def train_stable(scenario: Scenario, prefix: str, out: Path) -> tuple[Any, float]:
    """Refit the stable version on the columns starting with `prefix` (the same bootstrap as the drill's,
    seeded), saved over the drill's file: a pipeline that keeps those columns, scales and classifies. It
    still takes every input in the data set's order (the gateway sends them all). (estimator, accuracy)."""
    import joblib
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from aisre.drills.traffic import ReferenceData

    data = ReferenceData(scenario.traffic.dataset, scenario.traffic.group_feature, scenario.seed)
    keep = [i for i, c in enumerate(data.X.columns) if str(c).startswith(prefix)]
    if not keep:
        raise ConfigError([f"demo.stable_features_prefix: no column starts with {prefix!r}"], "aisre/demo/story.yaml")
    rng = np.random.default_rng(scenario.seed * 100)
    idx = rng.integers(0, len(data.X), len(data.X))
    model = make_pipeline(
        ColumnTransformer([("kept", "passthrough", keep)]), StandardScaler(), LogisticRegression(max_iter=2000)
    )
    model.fit(data.X.iloc[idx], data.y[idx])
    joblib.dump(model, out)
    return model, float(model.score(data.X, data.y))
