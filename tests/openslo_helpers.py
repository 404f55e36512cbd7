"""Shared OpenSLO test inputs: Sloth's example, a foreign openslo/v1 file, aisre SLOs to export."""

from __future__ import annotations

from pathlib import Path

import yaml

from aisre.config.slo import SLOConfig

ROOT = Path(__file__).resolve().parents[1]
SLOTH = ROOT / "tests" / "golden" / "sloth"
GETTING_STARTED = (SLOTH / "openslo-getting-started.yml").read_text()


def counter_values(total_per_min: list[float], bad_per_min: list[float]) -> tuple[str, str]:
    """promtool input values (cumulative good, cumulative bad) for per-minute totals and bad counts."""
    good, bad, g, b = [], [], 0.0, 0.0
    for t, e in zip(total_per_min, bad_per_min, strict=True):
        g, b = g + t - e, b + e
        good.append(f"{g:g}")
        bad.append(f"{b:g}")
    return " ".join(good), " ".join(bad)


def example_slos() -> list[SLOConfig]:
    raw = yaml.safe_load((ROOT / "examples" / "slos.yaml").read_text())["slos"]
    return [SLOConfig.model_validate(s) for s in raw]


def variants() -> list[SLOConfig]:
    base = {"model": "fraud", "objective": 0.995, "sli": {"kind": "availability"}}
    return [
        SLOConfig.model_validate(spec)
        for spec in (
            base | {"name": "fraud_avail", "version": "v2", "description": "requests that did not fail"},
            base
            | {
                "name": "fraud-custom-alerts",
                "period": "7d",
                "alerting": {
                    "page": [{"long": "90m", "short": "10m", "budget_percent": 3}],
                    "ticket": [{"long": "1d", "short": "2h", "budget_percent": 10, "burn_rate": 2.5}],
                    "labels": {"team": "risk"},
                    "notify": ["oncall", "ML_team"],
                    "annotations": {"runbook": "https://runbooks.example/fraud"},
                },
            },
            base | {"name": "fraud-quiet", "alerting": {"enabled": False}},
            {
                "name": "fraud-correct",
                "model": "fraud",
                "objective": 0.99,
                "budgeting": "timeslices",
                "timeslice": "10m",
                "sli": {"kind": "correctness"},
            },
            {"name": "chat-ttft", "model": "chat", "objective": 0.99, "sli": {"kind": "ttft", "threshold_s": 0.5}},
        )
    ]


FOREIGN_V1 = """
apiVersion: openslo/v1
kind: SLI
metadata: {name: checkout-errors}
spec:
  ratioMetric:
    counter: true
    good:
      metricSource:
        type: Prometheus
        spec: {query: 'http_requests_total{job="checkout",code!~"5.."}'}
    total:
      metricSource:
        type: Prometheus
        spec: {query: 'http_requests_total{job="checkout"}'}
---
apiVersion: openslo/v1
kind: SLO
metadata: {name: checkout-availability}
spec:
  service: checkout
  indicatorRef: checkout-errors
  budgetingMethod: Occurrences
  timeWindow: [{duration: 4w, isRolling: true}]
  objectives: [{targetPercent: 99.5}]
  alertPolicies:
    - kind: AlertPolicy
      metadata: {name: fast-burn}
      spec:
        conditions:
          - kind: AlertCondition
            metadata: {name: fast-burn}
            spec:
              severity: page
              condition: {kind: burnrate, op: gte, threshold: 14.4, lookbackWindow: 1h}
        notificationTargets: [{targetRef: pager}]
    - alertPolicyRef: slow-burn
---
apiVersion: openslo/v1
kind: AlertPolicy
metadata: {name: slow-burn}
spec:
  conditions: [{conditionRef: slow-burn}]
  notificationTargets: [{targetRef: pager}]
---
apiVersion: openslo/v1
kind: AlertCondition
metadata: {name: slow-burn}
spec:
  severity: warning
  condition: {kind: burnrate, op: gt, threshold: 1, lookbackWindow: 3d, alertAfter: 6h}
"""
