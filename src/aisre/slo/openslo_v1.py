"""Read `openslo/v1` SLO documents (with their SLI, AlertPolicy, AlertCondition and DataSource documents).

An SLO's `ratioMetric` becomes a `RatioSLI`; each `burnrate` AlertCondition one of aisre's multi-window
alerts (its short window from the `aisre/short-window` annotation, else `alertAfter`, else
`lookbackWindow / 12`; docs/openslo.md). Everything else raises `Unsupported` with its key path.
"""

from __future__ import annotations

import math
from typing import Any

from aisre.config.slo import AlertingConfig, AlertWindow, parse_duration
from aisre.slo.openslo_spec import (
    ALERTMANAGER_TARGET,
    V1,
    OpenSLO,
    Unsupported,
    aisre_duration,
    check_known,
    need_mapping,
    need_string,
    read_ratio,
    read_shorthand,
    read_target,
    read_template,
)
from aisre.slo.rules import RatioSLI

#: Alert severities aisre knows, and the common names that mean the same.
SEVERITIES = {"page": "page", "critical": "page", "ticket": "ticket", "warning": "ticket"}


def read_v1(doc: dict[str, Any], index: dict[tuple[str, str], dict[str, Any]]) -> list[OpenSLO]:
    """One `OpenSLO` per objective of a v1 SLO document; `index` holds the file's v1 documents by (kind, name)."""
    meta = need_mapping(doc, "metadata", "metadata")
    name = need_string(meta, "name", "metadata.name")
    spec = need_mapping(doc, "spec", "spec")
    check_known(
        spec,
        "spec",
        {"description", "service", "indicator", "indicatorRef", "budgetingMethod", "timeWindow", "objectives"}
        | {"alertPolicies"},
    )
    service = need_string(spec, "service", "spec.service")
    if ("indicator" in spec) == ("indicatorRef" in spec):
        raise Unsupported("spec", "expected exactly one of indicator (inline SLI) and indicatorRef")
    if "indicator" in spec:
        sli_spec, sli_at = (
            need_mapping(need_mapping(spec, "indicator", "spec.indicator"), "spec", "spec.indicator.spec"),
            ("spec.indicator.spec"),
        )
    else:
        ref = need_string(spec, "indicatorRef", "spec.indicatorRef")
        sli_doc = index.get(("SLI", ref))
        if sli_doc is None:
            raise Unsupported("spec.indicatorRef", f"no SLI named {ref!r} in the file (kind: SLI, apiVersion: {V1})")
        sli_spec, sli_at = need_mapping(sli_doc, "spec", f"SLI {ref!r} spec"), f"SLI {ref!r} spec"
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
        check_known(objective, at, {"displayName", "op", "value", "target", "targetPercent"} | _TIMESLICE | _COMPOSITE)
        for key in sorted(_COMPOSITE & objective.keys()):
            raise Unsupported(f"{at}.{key}", "composite SLOs are not supported; supported: one SLI for the SLO")
        if "value" in objective:
            raise Unsupported(f"{at}.value", "applies to thresholdMetric SLIs only; supported: ratioMetric")
        if objective.get("op", "gte") not in ("gt", "gte"):  # a ratio SLO is met at or above its target
            raise Unsupported(f"{at}.op", f"{objective['op']!r} is not supported for a ratio; supported: gt, gte")
        timeslice = target_slice = None
        if method == "Timeslices":
            timeslice = read_shorthand(objective.get("timeSliceWindow"), f"{at}.timeSliceWindow")
            target_slice = objective.get("timeSliceTarget")
            if not isinstance(target_slice, int | float) or not 0 < target_slice <= 1:
                raise Unsupported(f"{at}.timeSliceTarget", f"expected a number in (0, 1], got {target_slice!r}")
        out.append(
            OpenSLO(
                name=name if len(objectives) == 1 else f"{name}-{i}",
                service=service,
                objective=read_target(objective, at),
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
    check_known(spec, at, {"description", "thresholdMetric", "ratioMetric"})
    if "thresholdMetric" in spec:
        raise Unsupported(f"{at}.thresholdMetric", "not supported; supported: ratioMetric (good or bad, and total)")
    ratio = need_mapping(spec, "ratioMetric", f"{at}.ratioMetric")
    check_known(ratio, f"{at}.ratioMetric", {"counter", "good", "bad", "total", "rawType", "raw"})
    if "raw" in ratio or "rawType" in ratio:
        raise Unsupported(
            f"{at}.ratioMetric.raw", "a precomputed ratio is not supported; supported: good or bad, and total"
        )
    counter = ratio.get("counter", True) is True
    queries: dict[str, str] = {}
    for key in ("good", "bad", "total"):
        if key in ratio:
            queries[key] = _v1_query(ratio[key], f"{at}.ratioMetric.{key}", index, counter)
    return read_ratio(queries, f"{at}.ratioMetric")


def _v1_query(metric: Any, at: str, index: dict[tuple[str, str], dict[str, Any]], counter: bool) -> str:
    source = need_mapping(metric, "metricSource", f"{at}.metricSource") if isinstance(metric, dict) else None
    if source is None:
        raise Unsupported(at, "expected a mapping with metricSource")
    at = f"{at}.metricSource"
    check_known(source, at, {"metricSourceRef", "type", "spec"})
    kind = source.get("type")
    if "metricSourceRef" in source:
        ref = source["metricSourceRef"]
        data_source = index.get(("DataSource", str(ref)))
        if data_source is None:
            raise Unsupported(f"{at}.metricSourceRef", f"no DataSource named {ref!r} in the file")
        kind = (data_source.get("spec") or {}).get("type")
    if str(kind).lower() != "prometheus":
        raise Unsupported(f"{at}.type", f"{kind!r} is not supported; supported: Prometheus")
    query_spec = need_mapping(source, "spec", f"{at}.spec")
    return read_template(query_spec.get("query"), f"{at}.spec.query", counter=counter)


def _v1_period(windows: Any) -> str:
    if not isinstance(windows, list) or len(windows) != 1 or not isinstance(windows[0], dict):
        raise Unsupported("spec.timeWindow", "expected a list of exactly one time window")
    window = windows[0]
    check_known(window, "spec.timeWindow[0]", {"duration", "isRolling", "calendar"})
    if window.get("isRolling") is not True or "calendar" in window:
        raise Unsupported("spec.timeWindow[0]", "calendar windows are not supported; supported: isRolling: true")
    return read_shorthand(window.get("duration"), "spec.timeWindow[0].duration")


def _v1_alerting(policies: Any, index: dict[tuple[str, str], dict[str, Any]], period_s: float) -> AlertingConfig:
    """Each burnrate condition is one multi-window alert of aisre's (see docs/openslo.md)."""
    if policies is None or policies == []:
        return AlertingConfig(enabled=False)
    if not isinstance(policies, list):
        raise Unsupported("spec.alertPolicies", "expected a list")
    windows: dict[str, list[AlertWindow]] = {"page": [], "ticket": []}
    notify: list[str] = []
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
        spec = need_mapping(policy, "spec", f"{at}.spec")
        check_known(
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
        for receiver in _receivers(spec.get("notificationTargets"), f"{at}.spec.notificationTargets", index):
            if receiver not in notify:
                notify.append(receiver)
    return AlertingConfig(page=windows["page"], ticket=windows["ticket"], notify=notify)


def _receivers(targets: Any, at: str, index: dict[tuple[str, str], dict[str, Any]]) -> list[str]:
    """The aisre receivers (`alerting.notify`) a policy's notification targets name: an
    AlertNotificationTarget's `aisre/receiver` annotation, else its name; aisre's own
    Alertmanager target (Prometheus rules route through Alertmanager) is not a receiver."""
    if targets is None:
        return []
    if not isinstance(targets, list):
        raise Unsupported(at, "expected a list of targetRef or inline AlertNotificationTarget")
    names = []
    for i, target in enumerate(targets):
        if isinstance(target, dict) and "targetRef" in target:
            ref = str(target["targetRef"])
            target = index.get(("AlertNotificationTarget", ref), {"metadata": {"name": ref}})
        metadata = target.get("metadata") if isinstance(target, dict) else None
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
            raise Unsupported(f"{at}[{i}]", "expected a targetRef or an inline target with metadata.name")
        annotations = metadata.get("annotations")
        receiver = annotations.get("aisre/receiver") if isinstance(annotations, dict) else None
        name = str(receiver or metadata["name"])
        if name != ALERTMANAGER_TARGET:
            names.append(name)
    return names


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
    spec = need_mapping(condition, "spec", f"{at}.spec")
    check_known(spec, f"{at}.spec", {"severity", "description", "condition"})
    severity = SEVERITIES.get(str(spec.get("severity", "")).lower())
    if severity is None:
        raise Unsupported(
            f"{at}.spec.severity", f"{spec.get('severity')!r} is not supported; supported: {', '.join(SEVERITIES)}"
        )
    rule = need_mapping(spec, "condition", f"{at}.spec.condition")
    at = f"{at}.spec.condition"
    check_known(rule, at, {"kind", "op", "threshold", "lookbackWindow", "alertAfter"})
    if rule.get("kind") != "burnrate":
        raise Unsupported(f"{at}.kind", f"{rule.get('kind')!r} is not supported; supported: burnrate")
    if rule.get("op") not in ("gt", "gte"):
        raise Unsupported(f"{at}.op", f"{rule.get('op')!r} is not supported; supported: gt, gte (burning too fast)")
    threshold = rule.get("threshold")
    if not isinstance(threshold, int | float) or isinstance(threshold, bool) or threshold <= 0:
        raise Unsupported(f"{at}.threshold", f"expected a burn rate above 0, got {threshold!r}")
    long = read_shorthand(rule.get("lookbackWindow"), f"{at}.lookbackWindow")
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
        short = read_shorthand(rule["alertAfter"], f"{at}.alertAfter")
    else:
        short = aisre_duration(max(60, round(long_s / 12 / 60) * 60), at)  # the SRE workbook's long/12
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
