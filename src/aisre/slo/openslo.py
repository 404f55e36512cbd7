"""Read OpenSLO files (`openslo/v1alpha` as Sloth reads it, and `openslo/v1`) into SLOs with PromQL ratio SLIs.

Each SLO objective becomes one `OpenSLO` (as Sloth does: an OpenSLO SLO with several objectives is
several SLOs), with its SLI as a `RatioSLI` over Sloth's `{{.window}}` placeholder, its rolling
period, its budgeting method and its burn-rate alerts as aisre's page/ticket `AlertingConfig`.
`openslo_rules` writes them as Prometheus rules in Sloth's shape (`aisre slo rules --openslo`).

What is read, and how it maps, is documented in docs/openslo.md. Anything else is refused with a
`ConfigError` naming the document, the key path and what is supported.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aisre.config.slo import AlertingConfig, AlertWindow, parse_duration
from aisre.errors import ConfigError
from aisre.slo.rules import WINDOW, WINDOW_PATTERN, RatioSLI, slo_rule_groups

V1ALPHA = "openslo/v1alpha"
V1 = "openslo/v1"
#: v1alpha `timeWindows[].unit` values that name a fixed length (calendar units do not).
_V1ALPHA_UNITS = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}
#: v1 duration shorthand units (OpenSLO's go-sdk: M = 30 days, Q = 90 days, Y = 365 days).
_V1_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "Q": 7776000, "Y": 31536000}
_SHORTHAND = re.compile(r"^(\d+)([mhdwMQY])$")
_BARE_SELECTOR = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^{}]*\})?$")
#: Alert severities aisre knows, and the common names that mean the same.
SEVERITIES = {"page": "page", "critical": "page", "ticket": "ticket", "warning": "ticket"}


class Unsupported(Exception):
    """One problem in one document: `path` is the key path, `message` says what is supported."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")


@dataclass(frozen=True)
class OpenSLO:
    """One SLO objective read from OpenSLO, ready for Sloth-shaped rules (or for `aisre.slo.openslo_aisre`)."""

    name: str
    service: str
    objective: float
    period: str  # as aisre writes a duration: "30d"
    sli: RatioSLI
    alerting: AlertingConfig
    api_version: str
    budgeting: str = "events"  # or "timeslices"
    timeslice: str | None = None
    timeslice_target: float | None = None
    description: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    origin: str = ""  # "document 2 (SLO 'x')", for messages

    @property
    def period_s(self) -> float:
        return parse_duration(self.period)


def read_openslo(path: str | Path) -> list[OpenSLO]:
    """Every SLO objective in the OpenSLO file; ConfigError listing every unsupported construct."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror or exc}"], source=f"OpenSLO file {path}") from None
    return parse_openslo(text, source=f"OpenSLO file {path}")


def parse_openslo(text: str, source: str = "OpenSLO document") -> list[OpenSLO]:
    """`read_openslo` for text already read."""
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise ConfigError([f"not YAML: {exc}"], source=source) from None
    problems: list[str] = []
    index: dict[tuple[str, str], dict[str, Any]] = {}
    for i, doc in enumerate(docs, 1):
        if not isinstance(doc, dict) or doc.get("apiVersion") not in (V1ALPHA, V1):
            version = doc.get("apiVersion") if isinstance(doc, dict) else None
            problems.append(f"document {i}: apiVersion: expected {V1ALPHA} or {V1}, got {version!r}")
            continue
        name = doc["metadata"].get("name") if isinstance(doc.get("metadata"), dict) else None
        if doc["apiVersion"] == V1 and isinstance(name, str):
            index[(str(doc.get("kind")), name)] = doc
    slos: list[OpenSLO] = []
    for i, doc in enumerate(docs, 1):
        if not isinstance(doc, dict) or doc.get("apiVersion") not in (V1ALPHA, V1) or doc.get("kind") != "SLO":
            continue
        meta = doc.get("metadata")
        origin = f"document {i} (SLO {meta.get('name') if isinstance(meta, dict) else None!r})"
        try:
            read = _v1alpha if doc["apiVersion"] == V1ALPHA else _v1
            slos.extend(_with_origin(s, origin) for s in read(doc, index))
        except Unsupported as exc:
            problems.append(f"{origin}: {exc}")
    if not slos and not problems:
        problems.append("no SLO document (kind: SLO) found")
    seen: dict[tuple[str, str], str] = {}
    for s in slos:
        if (s.service, s.name) in seen:
            problems.append(
                f"{s.origin}: SLO {s.name!r} of service {s.service!r} is also in {seen[(s.service, s.name)]}"
            )
        seen[(s.service, s.name)] = s.origin
    if problems:
        raise ConfigError(problems, source=source)
    return slos


def openslo_rules(slos: list[OpenSLO], labels: dict[str, str] | None = None) -> dict[str, Any]:
    """The Prometheus rule file Sloth writes for these SLOs (as a dict; `rules.dump` writes it).

    An SLO on aisre's own metrics (as `aisre slo export` writes them) gets exactly the rules of
    `aisre slo rules -c`; any other is rendered from its PromQL queries. ConfigError when an SLO
    cannot be: a Timeslices SLO on arbitrary PromQL (Sloth's rules count events).
    """
    from aisre.slo.openslo_aisre import to_aisre  # the aisre mapping needs this module's types
    from aisre.slo.rules import aisre_slo_groups

    groups: list[dict[str, Any]] = []
    problems = []
    for s in slos:
        mapped = to_aisre(s)
        if not isinstance(mapped, str):
            groups.extend(aisre_slo_groups(mapped, s.service, labels))
            continue
        if s.budgeting != "events":
            problems.append(
                f"{s.origin}: spec.budgetingMethod: Timeslices over arbitrary PromQL cannot be written as Sloth's "
                "rules (they count events); supported: Occurrences, or Timeslices on aisre's SLIs (aisre slo export)"
            )
            continue
        info = {"sloth_mode": "cli-gen-openslo", "sloth_spec": s.api_version}
        groups.extend(
            slo_rule_groups(s.name, s.service, s.objective, s.period_s, s.sli, s.alerting, labels=labels, info=info)
        )
    if problems:
        raise ConfigError(problems, source="OpenSLO SLOs")
    return {"groups": groups}


def _with_origin(s: OpenSLO, origin: str) -> OpenSLO:
    return OpenSLO(**{**s.__dict__, "origin": origin})


# --- openslo/v1alpha (Sloth's subset) -------------------------------------------------------------------


def _v1alpha(doc: dict[str, Any], _index: dict[tuple[str, str], dict[str, Any]]) -> list[OpenSLO]:
    meta = _mapping(doc, "metadata", "metadata")
    name = _string(meta, "name", "metadata.name")
    spec = _mapping(doc, "spec", "spec")
    _known(spec, "spec", {"service", "description", "objectives", "timeWindows", "budgetingMethod", "indicator"})
    if "indicator" in spec:
        raise Unsupported("spec.indicator", "not supported in openslo/v1alpha; supported: objectives[].ratioMetrics")
    if spec.get("budgetingMethod", "Occurrences") != "Occurrences":
        raise Unsupported(
            "spec.budgetingMethod", f"{spec['budgetingMethod']!r} is not supported; supported: Occurrences"
        )
    service = _string(spec, "service", "spec.service")
    period = "30d"  # Sloth's default period when timeWindows is absent
    windows = spec.get("timeWindows")
    if windows is not None:
        if not isinstance(windows, list) or len(windows) != 1 or not isinstance(windows[0], dict):
            raise Unsupported("spec.timeWindows", "expected a list of exactly one time window")
        window = windows[0]
        _known(window, "spec.timeWindows[0]", {"count", "unit", "isRolling", "calendar"})
        if "calendar" in window:
            raise Unsupported("spec.timeWindows[0].calendar", "calendar windows are not supported; supported: rolling")
        unit = str(window.get("unit", "")).lower()
        count = window.get("count")
        if unit not in _V1ALPHA_UNITS or not isinstance(count, int) or isinstance(count, bool) or count <= 0:
            raise Unsupported(
                "spec.timeWindows[0]",
                f"expected a positive count and a unit of Minute, Hour, Day or Week, got {window}",
            )
        period = _aisre_duration(count * _V1ALPHA_UNITS[unit], "spec.timeWindows[0]")
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        raise Unsupported("spec.objectives", "expected a list of at least one objective")
    out = []
    for i, objective in enumerate(objectives):
        at = f"spec.objectives[{i}]"
        if not isinstance(objective, dict):
            raise Unsupported(at, "expected a mapping")
        _known(objective, at, {"displayName", "op", "value", "target", "ratioMetrics", "timeSliceTarget"})
        if "timeSliceTarget" in objective:
            raise Unsupported(f"{at}.timeSliceTarget", "timeslices are not supported in openslo/v1alpha")
        ratio = objective.get("ratioMetrics")
        if not isinstance(ratio, dict):
            raise Unsupported(
                f"{at}.ratioMetrics", "missing: only ratio objectives (good or bad, and total) are supported"
            )
        _known(ratio, f"{at}.ratioMetrics", {"good", "bad", "total", "counter"})
        queries = {
            k: _v1alpha_query(ratio[k], f"{at}.ratioMetrics.{k}") for k in ("good", "bad", "total") if k in ratio
        }
        out.append(
            OpenSLO(
                name=f"{name}-{i}",  # Sloth's naming: the objective's index, even when there is one
                service=service,
                objective=_target(objective, at),
                period=period,
                sli=_ratio(queries, f"{at}.ratioMetrics"),
                alerting=AlertingConfig(enabled=False, page=[], ticket=[]),  # v1alpha has no alerts (Sloth: none)
                api_version=V1ALPHA,
                description=spec.get("description"),
            )
        )
    return out


def _v1alpha_query(metric: Any, at: str) -> str:
    if not isinstance(metric, dict):
        raise Unsupported(at, "expected a mapping with source, queryType and query")
    _known(metric, at, {"source", "queryType", "query", "metadata"})
    if str(metric.get("source", "")).lower() not in ("prometheus", "sloth"):
        raise Unsupported(f"{at}.source", f"{metric.get('source')!r} is not supported; supported: prometheus")
    if metric.get("queryType") != "promql":
        raise Unsupported(f"{at}.queryType", f"{metric.get('queryType')!r} is not supported; supported: promql")
    return _template(metric.get("query"), f"{at}.query", counter=False)


# --- openslo/v1 -----------------------------------------------------------------------------------------


def _v1(doc: dict[str, Any], index: dict[tuple[str, str], dict[str, Any]]) -> list[OpenSLO]:
    meta = _mapping(doc, "metadata", "metadata")
    name = _string(meta, "name", "metadata.name")
    spec = _mapping(doc, "spec", "spec")
    _known(
        spec,
        "spec",
        {"description", "service", "indicator", "indicatorRef", "budgetingMethod", "timeWindow", "objectives"}
        | {"alertPolicies"},
    )
    service = _string(spec, "service", "spec.service")
    if ("indicator" in spec) == ("indicatorRef" in spec):
        raise Unsupported("spec", "expected exactly one of indicator (inline SLI) and indicatorRef")
    if "indicator" in spec:
        sli_spec, sli_at = (
            _mapping(_mapping(spec, "indicator", "spec.indicator"), "spec", "spec.indicator.spec"),
            ("spec.indicator.spec"),
        )
    else:
        ref = _string(spec, "indicatorRef", "spec.indicatorRef")
        sli_doc = index.get(("SLI", ref))
        if sli_doc is None:
            raise Unsupported("spec.indicatorRef", f"no SLI named {ref!r} in the file (kind: SLI, apiVersion: {V1})")
        sli_spec, sli_at = _mapping(sli_doc, "spec", f"SLI {ref!r} spec"), f"SLI {ref!r} spec"
    sli = _v1_sli(sli_spec, sli_at, index)
    method = spec.get("budgetingMethod")
    if method not in ("Occurrences", "Timeslices"):
        raise Unsupported("spec.budgetingMethod", f"{method!r} is not supported; supported: Occurrences, Timeslices")
    period = _v1_period(spec.get("timeWindow"))
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        raise Unsupported("spec.objectives", "expected a list of at least one objective")
    alerting = _v1_alerting(spec.get("alertPolicies"), index, parse_duration(period))
    raw_annotations = meta.get("annotations") or {}
    if not isinstance(raw_annotations, dict):
        raise Unsupported("metadata.annotations", "expected a mapping of strings")
    annotations = {str(k): str(v) for k, v in raw_annotations.items()}
    out = []
    for i, objective in enumerate(objectives):
        at = f"spec.objectives[{i}]"
        if not isinstance(objective, dict):
            raise Unsupported(at, "expected a mapping")
        _known(objective, at, {"displayName", "op", "value", "target", "targetPercent"} | _TIMESLICE | _COMPOSITE)
        for key in sorted(_COMPOSITE & objective.keys()):
            raise Unsupported(f"{at}.{key}", "composite SLOs are not supported; supported: one SLI for the SLO")
        for key in ("op", "value"):
            if key in objective:
                raise Unsupported(f"{at}.{key}", "applies to thresholdMetric SLIs only; supported: ratioMetric")
        timeslice = target_slice = None
        if method == "Timeslices":
            timeslice = _v1_duration(objective.get("timeSliceWindow"), f"{at}.timeSliceWindow")
            target_slice = objective.get("timeSliceTarget")
            if not isinstance(target_slice, int | float) or not 0 < target_slice <= 1:
                raise Unsupported(f"{at}.timeSliceTarget", f"expected a number in (0, 1], got {target_slice!r}")
        out.append(
            OpenSLO(
                name=name if len(objectives) == 1 else f"{name}-{i}",
                service=service,
                objective=_target(objective, at),
                period=period,
                sli=sli,
                alerting=alerting,
                api_version=V1,
                budgeting="events" if method == "Occurrences" else "timeslices",
                timeslice=timeslice,
                timeslice_target=None if target_slice is None else float(target_slice),
                description=spec.get("description"),
                annotations=annotations,
            )
        )
    return out


_TIMESLICE = {"timeSliceTarget", "timeSliceWindow"}
_COMPOSITE = {"indicator", "indicatorRef", "compositeWeight"}


def _v1_sli(spec: dict[str, Any], at: str, index: dict[tuple[str, str], dict[str, Any]]) -> RatioSLI:
    _known(spec, at, {"description", "thresholdMetric", "ratioMetric"})
    if "thresholdMetric" in spec:
        raise Unsupported(f"{at}.thresholdMetric", "not supported; supported: ratioMetric (good or bad, and total)")
    ratio = _mapping(spec, "ratioMetric", f"{at}.ratioMetric")
    _known(ratio, f"{at}.ratioMetric", {"counter", "good", "bad", "total", "rawType", "raw"})
    if "raw" in ratio or "rawType" in ratio:
        raise Unsupported(
            f"{at}.ratioMetric.raw", "a precomputed ratio is not supported; supported: good or bad, and total"
        )
    counter = ratio.get("counter", True) is True
    queries: dict[str, str] = {}
    for key in ("good", "bad", "total"):
        if key in ratio:
            queries[key] = _v1_query(ratio[key], f"{at}.ratioMetric.{key}", index, counter)
    return _ratio(queries, f"{at}.ratioMetric")


def _v1_query(metric: Any, at: str, index: dict[tuple[str, str], dict[str, Any]], counter: bool) -> str:
    source = _mapping(metric, "metricSource", f"{at}.metricSource") if isinstance(metric, dict) else None
    if source is None:
        raise Unsupported(at, "expected a mapping with metricSource")
    at = f"{at}.metricSource"
    _known(source, at, {"metricSourceRef", "type", "spec"})
    kind = source.get("type")
    if "metricSourceRef" in source:
        ref = source["metricSourceRef"]
        data_source = index.get(("DataSource", str(ref)))
        if data_source is None:
            raise Unsupported(f"{at}.metricSourceRef", f"no DataSource named {ref!r} in the file")
        kind = (data_source.get("spec") or {}).get("type")
    if str(kind).lower() != "prometheus":
        raise Unsupported(f"{at}.type", f"{kind!r} is not supported; supported: Prometheus")
    query_spec = _mapping(source, "spec", f"{at}.spec")
    return _template(query_spec.get("query"), f"{at}.spec.query", counter=counter)


def _v1_period(windows: Any) -> str:
    if not isinstance(windows, list) or len(windows) != 1 or not isinstance(windows[0], dict):
        raise Unsupported("spec.timeWindow", "expected a list of exactly one time window")
    window = windows[0]
    _known(window, "spec.timeWindow[0]", {"duration", "isRolling", "calendar"})
    if window.get("isRolling") is not True or "calendar" in window:
        raise Unsupported("spec.timeWindow[0]", "calendar windows are not supported; supported: isRolling: true")
    return _v1_duration(window.get("duration"), "spec.timeWindow[0].duration")


def _v1_alerting(policies: Any, index: dict[tuple[str, str], dict[str, Any]], period_s: float) -> AlertingConfig:
    """Each burnrate condition is one multi-window alert of aisre's (see docs/openslo.md)."""
    if policies is None or policies == []:
        return AlertingConfig(enabled=False)
    if not isinstance(policies, list):
        raise Unsupported("spec.alertPolicies", "expected a list")
    windows: dict[str, list[AlertWindow]] = {"page": [], "ticket": []}
    for i, policy in enumerate(policies):
        at = f"spec.alertPolicies[{i}]"
        if isinstance(policy, dict) and "alertPolicyRef" in policy:
            ref = str(policy["alertPolicyRef"])
            found = index.get(("AlertPolicy", ref))
            if found is None:
                raise Unsupported(f"{at}.alertPolicyRef", f"no AlertPolicy named {ref!r} in the file")
            policy, at = found, f"AlertPolicy {ref!r}"
        if not isinstance(policy, dict) or policy.get("kind") != "AlertPolicy":
            raise Unsupported(at, "expected an alertPolicyRef or an inline policy with kind: AlertPolicy")
        spec = _mapping(policy, "spec", f"{at}.spec")
        _known(
            spec,
            f"{at}.spec",
            {"description", "alertWhenNoData", "alertWhenBreaching", "alertWhenResolved", "conditions"}
            | {"notificationTargets"},
        )
        if spec.get("alertWhenNoData"):
            raise Unsupported(f"{at}.spec.alertWhenNoData", "not supported: a window without events has no burn rate")
        conditions = spec.get("conditions")
        if not isinstance(conditions, list) or not conditions:
            raise Unsupported(f"{at}.spec.conditions", "expected a list of burnrate conditions")
        for j, condition in enumerate(conditions):
            severity, window = _v1_condition(condition, f"{at}.spec.conditions[{j}]", index, period_s)
            windows[severity].append(window)
    return AlertingConfig(page=windows["page"], ticket=windows["ticket"])


def _v1_condition(
    condition: Any, at: str, index: dict[tuple[str, str], dict[str, Any]], period_s: float
) -> tuple[str, AlertWindow]:
    if isinstance(condition, dict) and "conditionRef" in condition:
        ref = str(condition["conditionRef"])
        found = index.get(("AlertCondition", ref))
        if found is None:
            raise Unsupported(f"{at}.conditionRef", f"no AlertCondition named {ref!r} in the file")
        condition, at = found, f"AlertCondition {ref!r}"
    if not isinstance(condition, dict) or condition.get("kind") != "AlertCondition":
        raise Unsupported(at, "expected a conditionRef or an inline condition with kind: AlertCondition")
    metadata = condition.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    annotations = annotations if isinstance(annotations, dict) else {}
    spec = _mapping(condition, "spec", f"{at}.spec")
    _known(spec, f"{at}.spec", {"severity", "description", "condition"})
    severity = SEVERITIES.get(str(spec.get("severity", "")).lower())
    if severity is None:
        raise Unsupported(
            f"{at}.spec.severity", f"{spec.get('severity')!r} is not supported; supported: {', '.join(SEVERITIES)}"
        )
    rule = _mapping(spec, "condition", f"{at}.spec.condition")
    at = f"{at}.spec.condition"
    _known(rule, at, {"kind", "op", "threshold", "lookbackWindow", "alertAfter"})
    if rule.get("kind") != "burnrate":
        raise Unsupported(f"{at}.kind", f"{rule.get('kind')!r} is not supported; supported: burnrate")
    if rule.get("op") not in ("gt", "gte"):
        raise Unsupported(f"{at}.op", f"{rule.get('op')!r} is not supported; supported: gt, gte (burning too fast)")
    threshold = rule.get("threshold")
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or threshold <= 0:
        raise Unsupported(f"{at}.threshold", f"expected a burn rate above 0, got {threshold!r}")
    long = _v1_duration(rule.get("lookbackWindow"), f"{at}.lookbackWindow")
    long_s = parse_duration(long)
    if long_s > period_s:
        raise Unsupported(f"{at}.lookbackWindow", f"{long} is longer than the SLO's period")
    try:
        return severity, _window(rule, annotations, at, float(threshold), long, long_s, period_s)
    except (ValueError, TypeError) as exc:  # an aisre/ annotation that does not parse, or windows AlertWindow refuses
        raise Unsupported(at, f"not an aisre alert window: {str(exc).splitlines()[-1].strip()}") from None


def _window(
    rule: dict[str, Any],
    annotations: dict[str, Any],
    at: str,
    threshold: float,
    long: str,
    long_s: float,
    period_s: float,
) -> AlertWindow:
    if "aisre/short-window" in annotations:
        short = str(annotations["aisre/short-window"])
    elif rule.get("alertAfter"):
        short = _v1_duration(rule["alertAfter"], f"{at}.alertAfter")
    else:
        short = _aisre_duration(max(60, round(long_s / 12 / 60) * 60), at)  # the SRE workbook's long/12
    if parse_duration(short) >= long_s:
        raise Unsupported(
            f"{at}.alertAfter", f"the short window ({short}) must be shorter than lookbackWindow ({long})"
        )
    percent = annotations.get("aisre/budget-percent")
    if percent is not None:
        budget_percent = float(percent)
        exact = math.isclose(budget_percent / 100 * period_s / long_s, threshold, rel_tol=1e-9)
        burn_rate = None if exact else threshold
    else:
        budget_percent, burn_rate = min(threshold * long_s / period_s * 100, 100.0), threshold
    return AlertWindow(long=long, short=short, budget_percent=budget_percent, burn_rate=burn_rate)


# --- shared ---------------------------------------------------------------------------------------------


def _template(query: Any, at: str, counter: bool) -> str:
    """A PromQL query with Sloth's `{{.window}}`; a bare counter selector (v1 `counter: true`) gets
    ``sum(rate(<selector>[{{.window}}]))``."""
    if not isinstance(query, str) or not query.strip():
        raise Unsupported(at, "expected a PromQL query")
    query = query.strip()
    if not WINDOW_PATTERN.search(query):
        if counter and _BARE_SELECTOR.match(query):
            return f"sum(rate({query}[{WINDOW}]))"
        raise Unsupported(
            at,
            "the query has no {{.window}} placeholder: rules evaluate it over Sloth's windows (5m ... 30d); "
            "write e.g. sum(rate(my_requests_total[{{.window}}])), or give a bare counter selector",
        )
    if "{{" in WINDOW_PATTERN.sub("", query):
        raise Unsupported(at, "only the {{.window}} template placeholder is supported")
    return query


def _ratio(queries: dict[str, str], at: str) -> RatioSLI:
    if "total" not in queries or ("good" in queries) == ("bad" in queries):
        raise Unsupported(at, "expected total and exactly one of good and bad")
    return RatioSLI(total=queries["total"], good=queries.get("good"), bad=queries.get("bad"))


def _target(objective: dict[str, Any], at: str) -> float:
    if ("target" in objective) == ("targetPercent" in objective):
        raise Unsupported(at, "expected exactly one of target (a ratio) and targetPercent")
    if "target" in objective:
        value, scale, at = objective["target"], 1.0, f"{at}.target"
    else:
        value, scale, at = objective["targetPercent"], 100.0, f"{at}.targetPercent"
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value / scale < 1:
        raise Unsupported(at, f"expected a number in (0, {scale:g}), got {value!r}")
    return float(value) / scale


def _v1_duration(text: Any, at: str) -> str:
    match = _SHORTHAND.match(text) if isinstance(text, str) else None
    if not match or int(match[1]) <= 0:
        raise Unsupported(at, f"expected a duration shorthand such as 5m, 1h, 30d, 4w or 1M, got {text!r}")
    if match[2] in "mhdw":
        return text
    return _aisre_duration(int(match[1]) * _V1_UNITS[match[2]], at)


def _aisre_duration(seconds: float, at: str) -> str:
    """Whole minutes as aisre (and OpenSLO) write a duration, in the largest exact unit: 2592000 -> '30d'."""
    if seconds <= 0 or seconds % 60:
        raise Unsupported(at, f"{seconds:g} s is not a whole number of minutes")
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    raise AssertionError("unreachable: minutes divide")


def _mapping(parent: dict[str, Any], key: str, at: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise Unsupported(at, "expected a mapping" if key in parent else "missing")
    return value


def _string(parent: dict[str, Any], key: str, at: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise Unsupported(at, "expected a non-empty string" if key in parent else "missing")
    return value


def _known(mapping: dict[str, Any], at: str, keys: set[str]) -> None:
    unknown = sorted(set(mapping) - keys)
    if unknown:
        raise Unsupported(f"{at}.{unknown[0]}", f"unknown key; expected one of {', '.join(sorted(keys))}")
