"""Writes aisre-overview.json, the Grafana dashboard over aisre's Prometheus metrics.

The JSON is committed (import it as is); this script is its source. After changing it run
`python deploy/grafana/generate.py` and commit both; tests/test_grafana.py checks they agree, that
every query parses (promtool) and that every metric exists on a live `aisre serve`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUT = Path(__file__).with_name("aisre-overview.json")
DS = {"type": "prometheus", "uid": "${datasource}"}
MV = 'model=~"$model", version=~"$version"'  # the model/version template variables
RATE = "$__rate_interval"


class Layout:
    """Places panels left to right on Grafana's 24-column grid, rows below each other; ids count up."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = self.y = self.row_h = 0
        self.next_id = 1

    def row(self, title: str) -> None:
        self._newline()
        self.panels.append(self._base("row", title, 24, 1) | {"collapsed": False, "panels": []})
        self.y += 1

    def add(self, kind: str, title: str, targets: list[tuple[str, str]], w: int = 8, h: int = 8, **extra: Any) -> None:
        if self.x + w > 24:
            self._newline()
        panel = self._base(kind, title, w, h) | {"datasource": DS, "targets": _targets(targets)}
        panel.update(extra)
        self.panels.append(panel)
        self.x += w
        self.row_h = max(self.row_h, h)

    def _base(self, kind: str, title: str, w: int, h: int) -> dict[str, Any]:
        panel = {
            "id": self.next_id,
            "type": kind,
            "title": title,
            "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
        }
        self.next_id += 1
        return panel

    def _newline(self) -> None:
        self.y += self.row_h
        self.x = self.row_h = 0


def _targets(targets: list[tuple[str, str]]) -> list[dict[str, Any]]:
    return [
        {"datasource": DS, "refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend, "range": True}
        for i, (expr, legend) in enumerate(targets)
    ]


def unit(u: str, **defaults: Any) -> dict[str, Any]:
    return {"fieldConfig": {"defaults": {"unit": u, **defaults}, "overrides": []}}


def quantiles(metric: str, by: str = "model, version", selector: str = MV) -> list[tuple[str, str]]:
    legend = " ".join("{{" + label.strip() + "}}" for label in by.split(","))
    return [
        (
            f"histogram_quantile({q}, sum by (le, {by}) (rate({metric}_bucket{{{selector}}}[{RATE}])))",
            f"p{name} {legend}",
        )
        for q, name in ((0.5, "50"), (0.95, "95"), (0.99, "99"))
    ]


BREAKER_STATES = {
    "type": "value",
    "options": {
        "0": {"text": "closed", "color": "green", "index": 0},
        "1": {"text": "half-open", "color": "yellow", "index": 1},
        "2": {"text": "open", "color": "red", "index": 2},
    },
}


def panels() -> list[dict[str, Any]]:
    p = Layout()
    p.row("Traffic")
    p.add(
        "timeseries",
        "Requests/s by model, version and status",
        [
            (
                f"sum by (model, version, status_class) (rate(aisre_gateway_requests_total{{{MV}}}[{RATE}]))",
                "{{model}}/{{version}} {{status_class}}",
            )
        ],
        **unit("reqps"),
    )
    p.add(
        "timeseries",
        "Inferences/s by route",
        [
            (
                f"sum by (model, version, route) (rate(aisre_predictions_total{{{MV}}}[{RATE}]))",
                "{{model}}/{{version}} {{route}}",
            )
        ],
        **unit("ops"),
        description="route: primary, canary, shadow or fallback (who answered).",
    )
    p.add(
        "timeseries",
        "Error ratio (5xx among answered requests)",
        [
            (
                f'sum by (model, version) (rate(aisre_gateway_requests_total{{{MV}, status_class="5xx"}}[{RATE}]))\n'
                f'/ sum by (model, version) (rate(aisre_gateway_requests_total{{{MV}, status_class!="499"}}[{RATE}]))',
                "{{model}}/{{version}}",
            ),
            (
                f"sum by (model, version) (rate(aisre_inference_errors_total{{{MV}}}[{RATE}]))\n"
                f"/ sum by (model, version) (rate(aisre_predictions_total{{{MV}}}[{RATE}]))",
                "{{model}}/{{version}} inference errors",
            ),
        ],
        **unit("percentunit", min=0),
        description="499 (the client left first) is neither good nor bad, as in the availability SLI.",
    )
    p.add(
        "timeseries",
        "In-flight requests",
        [('sum by (model) (aisre_gateway_in_flight_requests{model=~"$model"})', "{{model}}")],
        **unit("short"),
    )
    p.add(
        "timeseries",
        "Rejected before any upstream call",
        [(f"sum by (reason) (rate(aisre_gateway_rejected_requests_total[{RATE}]))", "{{reason}}")],
        **unit("reqps"),
    )
    p.add(
        "timeseries",
        "Failed upstream attempts",
        [
            (
                f"sum by (model, version, kind) (rate(aisre_upstream_errors_total{{{MV}}}[{RATE}]))",
                "{{model}}/{{version}} {{kind}}",
            )
        ],
        **unit("reqps"),
    )

    p.row("Latency")
    p.add("timeseries", "Inference latency p50 / p95 / p99", quantiles("aisre_inference_duration_seconds"), **unit("s"))
    p.add("timeseries", "Time to first token", quantiles("aisre_time_to_first_token_seconds"), **unit("s"))
    p.add("timeseries", "Time per output token", quantiles("aisre_time_per_output_token_seconds"), **unit("s"))
    p.add(
        "timeseries",
        "Gateway overhead (total minus upstream)",
        quantiles("aisre_gateway_overhead_seconds", by="model", selector='model=~"$model"'),
        w=12,
        **unit("s"),
    )
    p.add(
        "timeseries",
        "Mean latency",
        [
            (
                f"sum by (model, version) (rate(aisre_inference_duration_seconds_sum{{{MV}}}[{RATE}]))\n"
                f"/ sum by (model, version) (rate(aisre_inference_duration_seconds_count{{{MV}}}[{RATE}]))",
                "{{model}}/{{version}}",
            )
        ],
        w=12,
        **unit("s"),
    )

    p.row("Tokens and cost")
    p.add(
        "timeseries",
        "Tokens/s",
        [
            (
                f"sum by (model, version, direction) (rate(aisre_tokens_total{{{MV}}}[{RATE}]))",
                "{{model}}/{{version}} {{direction}}",
            )
        ],
        **unit("short"),
    )
    p.add(
        "timeseries",
        "Cost (USD per hour)",
        [(f"3600 * sum by (model, version) (rate(aisre_cost_usd_total{{{MV}}}[{RATE}]))", "{{model}}/{{version}}")],
        **unit("currencyUSD"),
    )
    p.add(
        "bargauge",
        "Budget left this period (USD)",
        [("aisre_budget_remaining_usd", "{{subject}}")],
        **unit("currencyUSD", min=0),
        description="subject model:<model> or key:<key id>; a budget's period is daily or monthly.",
    )
    p.add(
        "table",
        "Spend by key and model (time range)",
        [('sum by (key, model) (increase(aisre_spend_usd_total{model=~"$model"}[$__range]))', "")],
        w=24,
        h=6,
        **unit("currencyUSD"),
        description="key is the key id ('' without auth).",
    )
    p.panels[-1]["targets"][0] |= {"instant": True, "range": False, "format": "table"}

    p.row("Resilience: breakers, fallbacks, replicas")
    p.add(
        "state-timeline",
        "Breaker state",
        [(f"max by (model, version) (aisre_breaker_state{{{MV}}})", "{{model}}/{{version}}")],
        w=12,
        fieldConfig={"defaults": {"mappings": [BREAKER_STATES], "min": 0, "max": 2}, "overrides": []},
    )
    p.add(
        "timeseries",
        "Breaker transitions",
        [
            (
                f"sum by (model, version, to) (increase(aisre_breaker_transitions_total{{{MV}}}[$__interval]))",
                "{{model}}/{{version}} -> {{to}}",
            )
        ],
        w=12,
        **unit("short"),
        interval="1m",
    )
    p.add(
        "timeseries",
        "Requests served by a fallback",
        [(f"sum by (model, version) (rate(aisre_fallbacks_total{{{MV}}}[{RATE}]))", "{{model}}/{{version}}")],
        **unit("reqps"),
    )
    p.add(
        "timeseries",
        "Replicas ejected",
        [(f"sum by (model, version) (aisre_replicas_ejected{{{MV}}})", "{{model}}/{{version}}")],
        **unit("short"),
    )
    p.add(
        "stat",
        "Shared state (Redis) up",
        [("min(aisre_state_up)", "up")],
        fieldConfig={
            "defaults": {
                "mappings": [
                    {
                        "type": "value",
                        "options": {"0": {"text": "down", "color": "red"}, "1": {"text": "up", "color": "green"}},
                    }
                ]
            },
            "overrides": [],
        },
        description="Only with state.url (several replicas share limits, weights and breakers through Redis).",
    )

    p.row("Model quality: monitoring signals")
    signals = f"{MV}"
    p.add(
        "timeseries",
        "Data drift score per feature",
        [(f"aisre_data_drift_score{{{signals}}}", "{{model}}/{{version}} {{feature}} ({{method}})")],
        w=12,
        description="p-value or distance per input feature (per the method); see *_breached for the verdict.",
    )
    p.add(
        "timeseries",
        "Dataset drift and drifted share",
        [
            (f"aisre_dataset_drift{{{signals}}}", "{{model}}/{{version}} dataset drift"),
            (f"aisre_data_drift_share{{{signals}}}", "{{model}}/{{version}} drifted share"),
        ],
        w=12,
        **unit("percentunit", min=0, max=1),
    )
    p.add(
        "timeseries",
        "Prediction drift",
        [(f"aisre_prediction_drift_score{{{signals}}}", "{{model}}/{{version}} {{output}} ({{method}})")],
    )
    p.add(
        "timeseries",
        "Accuracy: realised and estimated (CBPE)",
        [
            (f"aisre_accuracy{{{signals}}}", "{{model}}/{{version}} realised"),
            (f"aisre_estimated_accuracy{{{signals}}}", "{{model}}/{{version}} estimated"),
        ],
        **unit("percentunit"),
        description="Realised from late labels; estimated without labels (CBPE).",
    )
    p.add(
        "timeseries",
        "Fairness: demographic parity difference",
        [(f"aisre_demographic_parity_difference{{{signals}}}", "{{model}}/{{version}} {{sensitive_feature}}")],
    )
    p.add(
        "timeseries",
        "LLM quality rates",
        [
            (f"aisre_llm_refusal_rate{{{signals}}}", "{{model}}/{{version}} refusals"),
            (f"aisre_llm_json_invalid_rate{{{signals}}}", "{{model}}/{{version}} invalid JSON"),
            (f"aisre_llm_empty_rate{{{signals}}}", "{{model}}/{{version}} empty"),
        ],
        w=12,
        **unit("percentunit", min=0),
    )
    p.add(
        "table",
        "Signals past their threshold now",
        [(f'{{__name__=~"aisre_.+_breached", {MV}}} == 1', "")],
        w=12,
        description="Every aisre_<signal>_breached gauge at 1 (what a breaker's signal condition reads).",
    )
    p.panels[-1]["targets"][0] |= {"instant": True, "range": False, "format": "table"}

    p.row("SLOs (the embedded judge)")
    p.add(
        "bargauge",
        "Error budget remaining",
        [('aisre_slo_error_budget_remaining_ratio{slo=~"$slo"}', "{{slo}}")],
        **unit("percentunit", max=1),
    )
    p.add(
        "timeseries",
        "Burn rate by window",
        [('aisre_slo_burn_rate{slo=~"$slo"}', "{{slo}} {{window}}")],
        **unit("short", min=0),
        description="1 spends the budget exactly over the period; a page fires above 14.4 (1h) by default.",
    )
    p.add(
        "state-timeline",
        "Alert state",
        [('max by (slo, severity, state) (aisre_slo_alert_state{slo=~"$slo"}) == 1', "{{slo}} {{severity}} {{state}}")],
    )
    p.add(
        "timeseries",
        "SLI and objective",
        [
            ('aisre_slo_sli_ratio{slo=~"$slo"}', "{{slo}} SLI"),
            ('aisre_slo_objective_ratio{slo=~"$slo"}', "{{slo}} objective"),
        ],
        **unit("percentunit"),
    )
    p.add(
        "timeseries",
        "Judged events",
        [(f'sum by (slo, outcome) (rate(aisre_slo_events_total{{slo=~"$slo"}}[{RATE}]))', "{{slo}} {{outcome}}")],
        **unit("ops"),
        description="The counter the Prometheus rules of every SLI but the request ones read.",
    )
    p.add(
        "table",
        "Judge status",
        [
            ('aisre_slo_evaluable{slo=~"$slo"}', "evaluable"),
            ('aisre_slo_time_to_exhaustion_seconds{slo=~"$slo"}', "time to exhaustion"),
            ('time() - aisre_slo_last_evaluation_timestamp_seconds{slo=~"$slo"}', "seconds since judged"),
        ],
    )
    for target in p.panels[-1]["targets"]:
        target |= {"instant": True, "range": False, "format": "table"}

    p.row("Record pipeline (the store writer)")
    p.add(
        "timeseries",
        "Records written, dropped, rejected",
        [
            (f"sum(rate(aisre_records_written_total[{RATE}]))", "written"),
            (f"sum(rate(aisre_records_dropped_total[{RATE}]))", "dropped"),
            (f"sum(rate(aisre_records_rejected_total[{RATE}]))", "rejected"),
        ],
        **unit("ops"),
    )
    p.add(
        "timeseries",
        "Writer queue",
        [("sum(aisre_record_queue_depth)", "depth"), ("sum(aisre_record_queue_capacity)", "capacity")],
        **unit("short"),
    )
    p.add(
        "timeseries",
        "Store commits",
        [
            (
                f"sum(rate(aisre_store_write_seconds_total[{RATE}])) / sum(rate(aisre_store_batches_total[{RATE}]))",
                "mean commit time",
            ),
            (f"sum(rate(aisre_store_write_errors_total[{RATE}]))", "failed batch writes/s"),
        ],
        **unit("s"),
    )
    return p.panels


def variable(name: str, query: str, label: str, include_all: bool = True) -> dict[str, Any]:
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DS,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "refresh": 2,
        "includeAll": include_all,
        "multi": True,
        "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
        "options": [],
        "hide": 0,
    }


def dashboard() -> dict[str, Any]:
    return {
        "uid": "aisre-overview",
        "title": "aisre overview",
        "description": "aisre: traffic, latency, tokens and cost, breakers, monitoring signals, SLOs.",
        "tags": ["aisre", "ml", "llm", "slo"],
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "links": [],
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                    "hide": 0,
                    "options": [],
                    "refresh": 1,
                },
                variable("model", "label_values(aisre_predictions_total, model)", "Model"),
                variable("version", 'label_values(aisre_predictions_total{model=~"$model"}, version)', "Version"),
                variable("slo", "label_values(aisre_slo_objective_ratio, slo)", "SLO"),
            ]
        },
        "panels": panels(),
    }


def render() -> str:
    return json.dumps(dashboard(), indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render())
    print(f"wrote {OUT}")
