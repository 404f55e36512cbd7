"""Stores for the monitoring-job tests: hourly windows of a binary classifier and of a chat model, each
hour healthy or degraded in one named way, with labels kept aside so a test decides when they arrive."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from aisre import Monitor
from aisre.config import AisreConfig
from aisre.records import Label
from aisre.store.sqlite import SQLiteStore

HOUR = 3600.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
PER_HOUR = 600


def fill_classifier(
    db: Path, hours: list[str], seed: int = 11, calibrated: bool = False
) -> dict[int, list[tuple[str, Any]]]:
    """One hour per entry of `hours` (model credit/v1): "ok", "wrong" (45% of predictions wrong),
    "unfair" (group a selected 80%, b 20%), "lean_x3" (the model's predictions follow x3, not x1) or
    "uncertain" (scores near 0.5). Inputs x1, x2, x3 (standard normal) and group; predictions follow
    2*x1 + x2 + 0.3*x3 when healthy. `calibrated`: the truth is drawn with the score's probability
    (what CBPE assumes), else 4% of predictions are wrong. Returns the true labels per hour,
    [(record id, truth)], not yet stored."""
    rng = np.random.default_rng(seed)
    mon = Monitor("credit", "v1", store=f"sqlite:///{db}", durability="durable")
    truths: dict[int, list[tuple[str, Any]]] = {}
    for h, kind in enumerate(hours):
        truths[h] = []
        for i in range(PER_HOUR):
            x1, x2, x3 = (float(v) for v in rng.normal(size=3))
            group = "a" if i % 2 else "b"
            signal = 2 * x3 + x2 + 0.3 * x1 if kind == "lean_x3" else 2 * x1 + x2 + 0.3 * x3
            p1 = 1 / (1 + math.exp(-(0.3 if kind == "uncertain" else 3) * signal))
            if kind == "unfair":
                p1 = 0.8 if group == "a" else 0.2
                pred = int(rng.random() < p1)
            else:
                pred = int(p1 >= 0.5)
            wrong = rng.random() < (0.45 if kind == "wrong" else 0.04)
            rid = mon.record(
                {"x1": x1, "x2": x2, "x3": x3, "group": group},
                prediction=pred,
                scores={"0": 1 - p1, "1": p1},
                ts=T0 + h * HOUR + i * (HOUR / PER_HOUR),
            )
            truth = int(rng.random() < p1) if calibrated else (1 - pred if wrong else pred)
            truths[h].append((rid, truth))
    mon.recorder.close()
    return truths


def add_labels(db: Path, pairs: list[tuple[str, Any]], at: float) -> None:
    SQLiteStore(db).add_labels([Label(rid, value, at) for rid, value in pairs])


def fill_chat(db: Path, hours: list[str], per_hour: int = 200, seed: int = 5) -> None:
    """Chat records (model assistant/v1) answering in JSON; a "refusing" hour refuses 30% of the time."""
    rng = np.random.default_rng(seed)
    mon = Monitor("assistant", "v1", store=f"sqlite:///{db}", durability="durable")
    for h, kind in enumerate(hours):
        for i in range(per_hour):
            refuse = kind == "refusing" and rng.random() < 0.3
            text = "I'm sorry, but I can't help with that." if refuse else json.dumps({"answer": int(rng.integers(9))})
            mon.record(
                {"prompt": f"question {i}"},
                output_text=text,
                operation="chat",
                output_tokens=len(text) // 4,
                ts=T0 + h * HOUR + i * (HOUR / per_hour),
            )
    mon.recorder.close()


def job_config(db: Path, **job: Any) -> AisreConfig:
    base = {
        "name": "credit-watch",
        "model": "credit",
        "version": "v1",
        "reference": {"since": T0, "until": T0 + 2 * HOUR},
        "window": "1h",
    }
    return AisreConfig.model_validate({"store": f"sqlite:///{db}", "monitors": [{**base, **job}]})


def by_window(store: SQLiteStore, name: str, job: str = "credit-watch", **labels: str) -> dict[int, Any]:
    """The newest signal `name` of each window (hour index from T0) written by `job`."""
    out = {}
    for _, s in store.signals(name=name):
        if s.labels.get("monitor") == job and all(s.labels.get(k) == v for k, v in labels.items()):
            out[int((s.window_start - T0) // HOUR)] = s
    return out
