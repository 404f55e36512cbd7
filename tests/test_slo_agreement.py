"""The embedded SLO evaluator and the Prometheus rules agree on the same synthetic traffic (issue #9).

One traffic pattern, four hours of one model at a constant 997 requests a minute: clean for 1h,
5 bad a minute (0.5%) for 1h, 30 bad (3%) for 30m, clean for 90m. It is fed (a) as a `MinuteSeries` to
`burn_rate` and to `AlertEvaluator` ticking on a `ManualClock`, and (b) as counters sampled
every minute to the real `promtool test rules` on `rules.rules([slo])`. The values promtool
must record and the alerts it must fire are computed *from the embedded evaluator*, so any
difference between the two semantics fails the test.

Why the definitions coincide here (docs/decisions.md, "SLO budgets"): Prometheus 2.x's range
`[w]` at a whole minute T holds the samples at T-w ... T, so `rate()` sees exactly the w
one-minute buckets the embedded `MinuteSeries.counts` sums, with nothing to extrapolate (and
before T = w every counter starts at 0, so the zero clamp leaves nothing to extrapolate either).
The period ratio (event-weighted here, a mean of 5m ratios in Sloth) and `BudgetStatus`'s 1h
current burn rate are the known differences and are not compared; `slo:current_burn_rate:ratio`
is compared with `burn_rate` over 5m, which is what it records.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aisre.clock import ManualClock
from aisre.config.slo import SLOConfig, parse_duration
from aisre.slo.alerts import SEVERITIES, AlertEvaluator, check_windows
from aisre.slo.budget import MinuteSeries, burn_rate, error_ratio
from aisre.slo.rules import prom_duration, rules

from .test_slo_rules import needs_promtool, promtool_test

# Requests a minute, every minute (the condition under which both definitions agree); not 1000, with which
# some cumulative ratios land exactly on a threshold (75 bad of 75000 = 1x), where float rounding decides `>`.
RATE = 997
PHASES = [(60, 0), (60, 5), (30, 30), (90, 0)]  # (minutes, bad requests a minute)
MINUTES = sum(m for m, _ in PHASES)
SERVICE = "aisre"


def traffic() -> tuple[np.ndarray, np.ndarray]:
    """(good, total) per minute of the one model."""
    bad = np.concatenate([np.full(m, float(b)) for m, b in PHASES])
    total = np.full(MINUTES, float(RATE))
    return total - bad, total


def counter(per_minute: np.ndarray) -> str:
    """promtool's input notation for a counter sampled every minute from 0 (one value per sample)."""
    return " ".join(repr(float(v)) for v in np.concatenate(([0.0], np.cumsum(per_minute))))


def availability_series(good: np.ndarray, total: np.ndarray) -> list[dict[str, str]]:
    """The gateway's counter: 5xx is bad, 2xx and 4xx good; 499s and another model's 5xx are ignored."""
    bad = total - good
    series = 'aisre_gateway_requests_total{{model="{}",version="v1",status_class="{}"}}'
    return [
        {"series": series.format("fraud", "2xx"), "values": counter(good - 10)},
        {"series": series.format("fraud", "4xx"), "values": counter(np.full(MINUTES, 10.0))},
        {"series": series.format("fraud", "5xx"), "values": counter(bad)},
        {"series": series.format("fraud", "499"), "values": counter(np.full(MINUTES, 300.0))},
        {"series": series.format("chat", "5xx"), "values": counter(np.full(MINUTES, 500.0))},
    ]


def latency_series(good: np.ndarray, total: np.ndarray) -> list[dict[str, str]]:
    """The latency histogram: a request is good when it took <= 0.2 s (the `le="0.2"` bucket)."""
    name = "aisre_inference_duration_seconds"
    labels = 'model="fraud",version="v1"'
    return [
        {"series": f'{name}_bucket{{{labels},le="0.1"}}', "values": counter(good / 2)},
        {"series": f'{name}_bucket{{{labels},le="0.2"}}', "values": counter(good)},
        {"series": f'{name}_bucket{{{labels},le="+Inf"}}', "values": counter(total)},
        {"series": f"{name}_count{{{labels}}}", "values": counter(total)},
        {"series": f'{name}_count{{model="chat",version="v1"}}', "values": counter(np.full(MINUTES, 500.0))},
    ]


SLIS = {
    "availability": ({"kind": "availability"}, availability_series),
    "latency": ({"kind": "latency", "threshold_s": 0.2}, latency_series),
}


def make_slo(kind: str) -> SLOConfig:
    return SLOConfig.model_validate(
        {"name": f"fraud-{kind}", "model": "fraud", "objective": 0.999, "sli": SLIS[kind][0]}
    )


def sli_windows(slo: SLOConfig) -> list[str]:
    """Every window the rules record a ratio for, except the period (a mean of 5m ratios in Sloth)."""
    period = prom_duration(slo.period_s)
    windows = [r["labels"]["sloth_window"] for r in rules([slo], SERVICE)["groups"][0]["rules"]]
    return [w for w in windows if w != period]


def embedded_alerts(slo: SLOConfig, series: MinuteSeries) -> dict[int, list[str]]:
    """Minute -> severities firing, from the embedded evaluator ticking once a minute on a manual clock."""
    clock = ManualClock(start=series.start_s)
    evaluator = AlertEvaluator(slo, clock, service=SERVICE)
    firing = {}
    for minute in range(1, MINUTES + 1):
        clock.advance(60)
        evaluator.tick(series)
        firing[minute] = [s for s in SEVERITIES if evaluator.alerts[s].state == "firing"]
    return firing


def expected_alert(slo: SLOConfig, severity: str, labels: dict[str, str]) -> dict[str, Any]:
    """promtool's exp_alerts entry: the embedded alert's labels (promtool adds alertname itself) and the
    rule's annotations with its two templates expanded."""
    [rule] = [r for r in rules([slo], SERVICE)["groups"][2]["rules"] if r["labels"]["sloth_severity"] == severity]
    annotations = {
        k: v.replace("{{$labels.sloth_service}}", SERVICE).replace("{{$labels.sloth_slo}}", slo.name)
        for k, v in rule["annotations"].items()
    }
    return {"exp_labels": {k: v for k, v in labels.items() if k != "alertname"}, "exp_annotations": annotations}


def minutes(m: int) -> str:
    return prom_duration(m * 60)


@needs_promtool
@pytest.mark.parametrize("kind", sorted(SLIS))
def test_promtool_records_and_fires_exactly_what_the_embedded_evaluator_computes(tmp_path: Path, kind: str):
    slo = make_slo(kind)
    good, total = traffic()
    start = 1_767_225_600.0  # any whole minute: the embedded side is in Unix seconds, promtool's from 0
    series = MinuteSeries(start, good, total)
    ids = f'sloth_id="{SERVICE}-{slo.name}", sloth_service="{SERVICE}", sloth_slo="{slo.name}"'

    # Hand check of one value first: at 2h20m the 1h window holds 40 min of 5 bad and 20 of 30 bad.
    assert error_ratio(series, start + 140 * 60, 3600) == pytest.approx((40 * 5 + 20 * 30) / (60 * RATE), rel=1e-12)

    # No judged burn rate may sit on its factor, where float rounding (not semantics) would decide `>`.
    for minute in range(1, MINUTES + 1):
        for check in check_windows(slo, series, start + minute * 60):
            for rate in (check.long_burn_rate, check.short_burn_rate):
                assert not math.isclose(rate, check.factor, rel_tol=1e-6), (minute, check)

    samples = []
    for minute in range(1, MINUTES + 1):
        at = start + minute * 60
        for window in sli_windows(slo):
            record = f"slo:sli_error:ratio_rate{window}"
            value = error_ratio(series, at, parse_duration(window))
            samples.append((record, minute, value, window))
        samples.append(("slo:current_burn_rate:ratio", minute, burn_rate(slo, series, at, 300), "5m"))
    # promtool 2.42 compares sample values exactly; Go and numpy sum in different orders (1e-14 apart), so
    # PromQL checks the relative difference itself: 1 when within 1e-9 (0 and a missing series both fail).
    promql_tests = [
        {
            "expr": f"abs({record}{{{ids}}} - {value!r}) <= bool {value * 1e-9!r}",
            "eval_time": minutes(minute),
            "exp_samples": [{"labels": f'{{{ids}, sloth_window="{window}"}}', "value": 1}],
        }
        for record, minute, value, window in samples
    ]

    firing = embedded_alerts(slo, series)
    evaluator = AlertEvaluator(slo, ManualClock(start), service=SERVICE)
    alerts = {s: expected_alert(slo, s, evaluator.alerts[s].labels) for s in SEVERITIES}
    # The pattern must exercise both alerts, their firing and the page's resolving, or agreement proves little.
    assert any(firing[m] == ["page", "ticket"] for m in firing) and any(firing[m] == ["ticket"] for m in firing)
    assert any(firing[m] == [] for m in firing) and firing[MINUTES] == ["ticket"]
    alert_tests = [
        {
            "eval_time": minutes(minute),
            "alertname": evaluator.alerts["page"].labels["alertname"],
            "exp_alerts": [alerts[s] for s in severities],
        }
        for minute, severities in firing.items()
    ]

    test = {
        "interval": "1m",
        "input_series": SLIS[kind][1](good, total),
        "promql_expr_test": promql_tests,
        "alert_rule_test": alert_tests,
    }
    promtool_test(tmp_path, [slo], test)
