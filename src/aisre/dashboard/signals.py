"""Monitoring signals (one row per window) grouped into the dashboard's series, by kind.

A signal's kind follows from its name (and, for fairness, its labels), as the monitors name them:
`data_drift_score`/`dataset_drift`/`prediction_drift*`/multivariate scores are drift, `estimated_*` CBPE,
`llm_*` LLM quality, `shadow_*` shadow comparisons, `feature_importance_*`/`drift_impact` importance,
the fairness gaps and per-group rates fairness, and the realised metrics (labels `metric` + `task`)
performance. Bookkeeping signals (`window_rows`, freshness marks, job errors) only show with `all`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

KINDS = ("all", "drift", "performance", "estimated", "fairness", "importance", "llm", "shadow")
_MULTIVARIATE = ("multivariate_drift_auc", "reconstruction_error", "mmd")
_FAIRNESS_RATES = ("selection_rate", "true_positive_rate", "false_positive_rate")


def kind_of(name: str, labels: dict[str, Any]) -> str:
    """The dashboard kind of one signal (`other` for bookkeeping)."""
    if name.startswith("llm_"):
        return "llm"
    if name.startswith("shadow_"):
        return "shadow"
    if name.startswith("estimated_"):
        return "estimated"
    if "importance" in name or name == "drift_impact":
        return "importance"
    if "sensitive_feature" in labels or name in _FAIRNESS_RATES:
        return "fairness"
    if "drift" in name or name in _MULTIVARIATE:
        return "drift"
    if "metric" in labels and "task" in labels:
        return "performance"
    return "other"


def _names(conn: sqlite3.Connection, model: str) -> list[str]:
    """The signal names of `model`: one seek of the (model, name, ts) index per name."""
    out: list[str] = []
    row = conn.execute("SELECT name FROM signals WHERE model = ? ORDER BY name LIMIT 1", (model,)).fetchone()
    while row is not None:
        out.append(row[0])
        row = conn.execute(
            "SELECT name FROM signals WHERE model = ? AND name > ? ORDER BY name LIMIT 1", (model, row[0])
        ).fetchone()
    return out


def series(
    conn: sqlite3.Connection, model: str, kind: str, since: float, until: float, version: str | None = None
) -> list[dict[str, Any]]:
    """One series per (name, version, labels), points ordered by window end (the computed-at time when a
    signal has no window), for windows ending in [since, until)."""
    # `ts >= since` lets the (model, name, ts) index bound the read: a signal is computed at or after its
    # window's end, so no window ending after `since` was computed before it.
    where = "model = ? AND ts >= ? AND coalesce(window_end, ts) >= ? AND coalesce(window_end, ts) < ?"
    args: list[Any] = [model, since, since, until]
    if kind != "all":
        names = [n for n in _names(conn, model) if kind_of(n, {}) in (kind, "other")]
        if not names:
            return []
        where += f" AND name IN ({', '.join('?' * len(names))})"
        args += names
    if version is not None:
        where += " AND version = ?"
        args.append(version)
    grouped: dict[tuple[str, str, str], dict[str, Any]] = {}
    kinds: dict[tuple[str, str], str] = {}
    for ts, ver, name, labels_text, ws, we, value, threshold, breached in conn.execute(
        "SELECT ts, version, name, labels, window_start, window_end, value, threshold, breached FROM signals"
        f" WHERE {where} ORDER BY coalesce(window_end, ts), seq",
        args,
    ):
        key = (name, ver, labels_text)
        entry = grouped.get(key)
        if entry is None:
            labels = orjson.loads(labels_text)
            k = kinds.setdefault((name, labels_text), kind_of(name, labels))
            if kind != "all" and k != kind:
                grouped[key] = entry = {"skip": True}
            else:
                entry = grouped[key] = {
                    "name": name,
                    "version": ver,
                    "kind": k,
                    "labels": labels,
                    "t": [],
                    "window_start": [],
                    "value": [],
                    "threshold": [],
                    "breached": [],
                }
        if "skip" in entry:
            continue
        entry["t"].append(ts if we is None else we)
        entry["window_start"].append(ws)
        entry["value"].append(value)
        entry["threshold"].append(threshold)
        entry["breached"].append(bool(breached))
    return sorted(
        (e for e in grouped.values() if "skip" not in e),
        key=lambda e: (e["kind"], e["name"], e["version"], sorted(e["labels"].items())),
    )
