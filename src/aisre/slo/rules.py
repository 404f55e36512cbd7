"""Prometheus recording and alerting rules for `slos:`, with Sloth's rule names and labels.

The output is what `sloth generate` writes for the same SLO (same groups, record names, labels
and alert expression shape), so Sloth's published Grafana dashboards work on aisre's rules.
For each SLO, with `E` = error budget = 1 - objective and `P` = the period (e.g. 30d):

- SLI, one rule per window W (5m, 30m, 1h, 2h, 6h, 1d, 3d always, plus every `long` and `short`
  of the SLO's page/ticket alerts), labels sloth_id/sloth_service/sloth_slo/sloth_window:
  ``slo:sli_error:ratio_rate<W> = rate(bad events[W]) / rate(all events[W])``
- the period window, from the shortest page window S (5m by default), as Sloth computes it:
  ``slo:sli_error:ratio_rate<P> = sum_over_time(ratio_rate<S>[P]) / count_over_time(ratio_rate<S>[P])``
- metadata: ``slo:objective:ratio``, ``slo:error_budget:ratio = 1 - objective``,
  ``slo:time_period:days``, ``slo:current_burn_rate:ratio = ratio_rate<S> / E``,
  ``slo:period_burn_rate:ratio = ratio_rate<P> / E``,
  ``slo:period_error_budget_remaining:ratio = 1 - period_burn_rate``, ``sloth_slo_info``.
- alerts (SRE workbook multi-window multi-burn-rate), one for `page` and one for `ticket`
  (label ``sloth_severity``): fire when, for any of its windows, both
  ``ratio_rate<short> > f x E`` and ``ratio_rate<long> > f x E``, where the burn-rate factor
  ``f = budget_percent/100 x P / long`` (14.4 for 2% over 1h of 30d) unless `burn_rate` is set.
  Like Sloth's, the alerts have no `for`: the short window already stops a spike from paging.

Where the events come from:

- availability: ``aisre_gateway_requests_total`` (gateway), bad = ``status_class="5xx"``, all =
  every answered request except those whose client hung up (``status_class="499"``).
- latency / ttft / tpot (without `percentile`): the histograms ``aisre_inference_duration_seconds``,
  ``aisre_time_to_first_token_seconds``, ``aisre_time_per_output_token_seconds``; bad =
  ``_count - _bucket{le="<threshold_s>"}``, so `threshold_s` must be one of the buckets.
- every other SLI (correctness, quality, drift, fairness, freshness, LLM quality, percentile
  latency, and anything budgeted by timeslices): the counter
  ``aisre_slo_events_total{slo="<name>", outcome="good"|"bad"}``, one event per judged event or
  timeslice. The embedded evaluator is to export it; it does not exist yet, so until it does
  these rules evaluate to no data (never to a false alert).

An SLO whose SLI is raw PromQL (read from OpenSLO by `aisre.slo.openslo`) goes through the same
`slo_rule_groups`, with its queries as `RatioSLI` templates over Sloth's `{{.window}}`; a good/total
ratio is written as Sloth writes it, ``1 - (good / total)``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import yaml
from prometheus_client.utils import floatToGoString

from aisre.config.slo import AlertingConfig, SLOConfig, parse_duration
from aisre.slo.budget import period_alert_factor
from aisre.telemetry.metrics import LATENCY_BUCKETS_S, TPOT_BUCKETS_S, TTFT_BUCKETS_S

#: Windows Sloth always records (its default 30-day alert windows), in seconds.
SLOTH_WINDOWS_S = (300, 1800, 3600, 7200, 21600, 86400, 259200)
#: The counter quality SLIs are judged from (exported by the embedded evaluator).
SLO_EVENTS_METRIC = "aisre_slo_events_total"
REQUESTS_METRIC = "aisre_gateway_requests_total"
HISTOGRAMS = {
    "latency": ("aisre_inference_duration_seconds", LATENCY_BUCKETS_S),
    "ttft": ("aisre_time_to_first_token_seconds", TTFT_BUCKETS_S),
    "tpot": ("aisre_time_per_output_token_seconds", TPOT_BUCKETS_S),
}
_ERROR = "slo:sli_error:ratio_rate"
#: Sloth's window placeholder in SLI query templates (a Go template action; spaces allowed inside).
WINDOW = "{{.window}}"
WINDOW_PATTERN = re.compile(r"\{\{\s*\.window\s*\}\}")


@dataclass(frozen=True)
class RatioSLI:
    """An SLI as PromQL event rates with the `{{.window}}` placeholder: `bad` or `good` events over `total`.

    `error_ratio(window)` is the expression of ``slo:sli_error:ratio_rate<window>``: ``(bad) / (total)``,
    or for good events Sloth's own rendering of OpenSLO ratios, ``1 - ((good) / (total))``.
    """

    total: str
    bad: str | None = None
    good: str | None = None

    def __post_init__(self) -> None:
        if (self.bad is None) == (self.good is None):
            raise ValueError("a ratio SLI needs exactly one of bad and good (and total)")

    def error_ratio(self, window: str) -> str:
        total = WINDOW_PATTERN.sub(window, self.total)
        if self.bad is not None:
            return f"({WINDOW_PATTERN.sub(window, self.bad)})\n/\n({total})\n"
        good = WINDOW_PATTERN.sub(window, self.good or "")
        return f"(\n  1 - (\n    (\n      {good}\n    )\n    /\n    (\n      {total}\n    )\n  )\n)"


def rules(slos: list[SLOConfig], service: str = "aisre", labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A Prometheus rule file (as a dict to dump as YAML): three groups per SLO, as Sloth writes.

    `labels` are added to every recording rule (Sloth's `--extra-labels`).
    ValueError (naming the SLO) when an SLO cannot be computed from Prometheus metrics: a latency
    threshold that is not a histogram bucket, or a `where` filter on request metrics.
    """
    groups: list[dict[str, Any]] = []
    for slo in slos:
        groups.extend(aisre_slo_groups(slo, service, labels))
    return {"groups": groups}


def dump(document: dict[str, Any]) -> str:
    """The rule file as YAML, multi-line expressions as literal blocks (as Sloth writes them)."""

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|" if "\n" in value else None)

    Dumper.add_representer(str, text)
    header = "# Generated by aisre (aisre slo rules): Sloth-compatible SLO rules. DO NOT EDIT.\n"
    return header + yaml.dump(document, Dumper=Dumper, sort_keys=False, width=1000)


def prom_duration(seconds: float) -> str:
    """Seconds as Prometheus writes a duration (Go's model.Duration.String): 2592000 -> '30d', 28d -> '4w'."""
    ms = round(seconds * 1000)
    if ms == 0:
        return "0s"
    out = ""
    for unit, mult, exact in (
        ("y", 31_536_000_000, True),
        ("w", 604_800_000, True),
        ("d", 86_400_000, False),
        ("h", 3_600_000, False),
        ("m", 60_000, False),
        ("s", 1000, False),
        ("ms", 1, False),
    ):
        if exact and ms % mult:
            continue
        if value := ms // mult:
            out += f"{value}{unit}"
            ms -= value * mult
    return out


def sli_queries(slo: SLOConfig) -> tuple[str, str]:
    """(bad, all) event-rate queries with Sloth's `{{.window}}` placeholder (see the module docstring)."""
    kind = slo.sli.kind
    request_sli = slo.budgeting_mode == "events" and kind in ("availability", *HISTOGRAMS)
    if not request_sli:
        sel = _selector({"slo": slo.name})
        bad = _selector({"slo": slo.name, "outcome": "bad"})
        return f"sum(rate({SLO_EVENTS_METRIC}{bad}[{WINDOW}]))", f"sum(rate({SLO_EVENTS_METRIC}{sel}[{WINDOW}]))"
    if slo.sli.where:
        raise ValueError(
            f"SLO {slo.name!r}: sli.where ({', '.join(slo.sli.where)}) cannot filter Prometheus request metrics "
            "(their labels are model, version and status_class/route): drop it or budget by timeslices"
        )
    labels = {"model": slo.model} | ({"version": slo.version} if slo.version else {})
    if kind == "availability":
        bad = _selector(labels | {"status_class": "5xx"})
        everything = _selector(labels, {"status_class": "499"})
        return f"sum(rate({REQUESTS_METRIC}{bad}[{WINDOW}]))", f"sum(rate({REQUESTS_METRIC}{everything}[{WINDOW}]))"
    metric, buckets = HISTOGRAMS[kind]
    threshold = slo.sli.threshold_s
    assert threshold is not None  # SLIConfig requires it for these kinds
    le = next((b for b in buckets if math.isclose(b, threshold, rel_tol=1e-9)), None)
    if le is None:
        raise ValueError(
            f"SLO {slo.name!r}: sli.threshold_s {threshold:g} is not a bucket bound of {metric} "
            f"(buckets: {', '.join(f'{b:g}' for b in buckets)}): choose one of them"
        )
    count = f"sum(rate({metric}_count{_selector(labels)}[{WINDOW}]))"
    good = f"sum(rate({metric}_bucket{_selector(labels | {'le': floatToGoString(le)})}[{WINDOW}]))"
    return f"({count} - {good})", count


def aisre_slo_groups(slo: SLOConfig, service: str, labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The rule groups of one aisre SLO (its SLI as `sli_queries`)."""
    bad, everything = sli_queries(slo)
    return slo_rule_groups(
        slo.name,
        service,
        slo.objective,
        slo.period_s,
        RatioSLI(total=everything, bad=bad),
        slo.alerting,
        labels=labels,
        summary=f"SLO {slo.name!r} of model {slo.model!r} burns its error budget",
    )


def slo_rule_groups(
    name: str,
    service: str,
    objective: float,
    period_s: float,
    sli: RatioSLI,
    alerting: AlertingConfig,
    *,
    labels: dict[str, str] | None = None,
    info: dict[str, str] | None = None,
    summary: str | None = None,
) -> list[dict[str, Any]]:
    """Sloth's three groups (SLI recordings, metadata, alerts) for one SLO of any origin.

    `labels` go on every recording rule; `info` replaces the `sloth_mode`/`sloth_spec` labels of
    `sloth_slo_info`; `summary` is the alerts' summary annotation.
    """
    sloth_id = f"{service}-{name}"
    ids = (labels or {}) | {"sloth_id": sloth_id, "sloth_service": service, "sloth_slo": name}
    flt = _selector({"sloth_id": sloth_id, "sloth_service": service, "sloth_slo": name}, sep=", ")
    short_s = min((parse_duration(w.short) for w in alerting.page), default=300.0)  # Sloth's PageQuick short
    period = prom_duration(period_s)
    windows: set[float] = set(SLOTH_WINDOWS_S)
    for w in [*alerting.page, *alerting.ticket]:
        windows |= {parse_duration(w.long), parse_duration(w.short)}
    windows.discard(period_s)

    sli_rules: list[dict[str, Any]] = []
    for seconds in sorted(windows):
        window = prom_duration(seconds)
        sli_rules.append(
            {"record": f"{_ERROR}{window}", "expr": sli.error_ratio(window), "labels": ids | {"sloth_window": window}}
        )
    source = f"{_ERROR}{prom_duration(short_s)}{flt}"
    sli_rules.append(
        {
            "record": f"{_ERROR}{period}",
            "expr": f"sum_over_time({source}[{period}])\n/ ignoring (sloth_window)\n"
            f"count_over_time({source}[{period}])\n",
            # Sloth sets only sloth_window here; the ids too keep promtool's duplicate-rule lint quiet with many SLOs
            "labels": ids | {"sloth_window": period},
        }
    )

    objective_text = _num(objective)
    per_budget = "/ on(sloth_id, sloth_slo, sloth_service) group_left\n" + f"slo:error_budget:ratio{flt}\n"
    meta = [
        ("slo:objective:ratio", f"vector({objective_text})"),
        ("slo:error_budget:ratio", f"vector(1-{objective_text})"),
        ("slo:time_period:days", f"vector({_num(period_s / 86400)})"),
        ("slo:current_burn_rate:ratio", f"{source}\n{per_budget}"),
        ("slo:period_burn_rate:ratio", f"{_ERROR}{period}{flt}\n{per_budget}"),
        ("slo:period_error_budget_remaining:ratio", f"1 - slo:period_burn_rate:ratio{flt}"),
    ]
    meta_rules = [{"record": record, "expr": expr, "labels": dict(ids)} for record, expr in meta]
    info = (info or {"sloth_mode": "cli-gen-prom", "sloth_spec": "aisre/v1"}) | {
        "sloth_objective": _num(objective * 100)
    }
    meta_rules.append({"record": "sloth_slo_info", "expr": "vector(1)", "labels": ids | info})

    groups = [
        {"name": f"sloth-slo-sli-recordings-{sloth_id}", "rules": sli_rules},
        {"name": f"sloth-slo-meta-recordings-{sloth_id}", "rules": meta_rules},
    ]
    if alerting.enabled:
        summary = summary or f"SLO {name!r} of service {service!r} burns its error budget"
        alerts = [
            _alert(name, objective, period_s, alerting, sev, flt, summary)
            for sev in ("page", "ticket")
            if getattr(alerting, sev)
        ]
        if alerts:
            groups.append({"name": f"sloth-slo-alerts-{sloth_id}", "rules": alerts})
    return groups


def _alert(
    name: str, objective: float, period_s: float, alerting: AlertingConfig, severity: str, flt: str, summary: str
) -> dict[str, Any]:
    budget = _num(1.0 - objective)
    clauses = []
    for w in getattr(alerting, severity):
        factor = _num(period_alert_factor(w, period_s))
        short, long = (prom_duration(parse_duration(d)) for d in (w.short, w.long))
        clauses.append(  # Sloth's shape: the alert keeps no sloth_window, so its identity never changes
            "(\n"
            f"    max({_ERROR}{short}{flt} > ({factor} * {budget})) without (sloth_window)\n"
            "    and\n"
            f"    max({_ERROR}{long}{flt} > ({factor} * {budget})) without (sloth_window)\n"
            ")"
        )
    labels = "{{$labels.sloth_service}} {{$labels.sloth_slo}}"
    title = f"({severity}) {labels} SLO error budget burn rate is too fast."
    return {
        "alert": alert_name(name),
        "expr": "\nor\n".join(clauses) + "\n",
        "labels": alerting.labels | {"sloth_severity": severity},
        "annotations": {"title": title, "summary": summary} | alerting.annotations,
    }


def alert_name(slo_name: str) -> str:
    """'fraud-latency' -> 'FraudLatencySLO' (Sloth names the page and the ticket alert alike)."""
    return "".join(part.capitalize() for part in re.split(r"[-_]", slo_name) if part) + "SLO"


def _selector(equal: dict[str, str], not_equal: dict[str, str] | None = None, sep: str = ",") -> str:
    pairs = [f"{k}={_quote(v)}" for k, v in equal.items()]
    pairs += [f"{k}!={_quote(v)}" for k, v in (not_equal or {}).items()]
    return "{" + sep.join(pairs) + "}"


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _num(x: float) -> str:
    """A number as PromQL reads it, without float noise: 0.999, 14.4, 6, 0.001."""
    return f"{x:.12g}"
