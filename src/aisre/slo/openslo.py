"""Read OpenSLO files (`openslo/v1alpha` as Sloth reads it, and `openslo/v1`) into SLOs with PromQL ratio SLIs.

Each SLO objective becomes one `OpenSLO` (as Sloth does: an OpenSLO SLO with several objectives is
several SLOs), with its SLI as a `RatioSLI` over Sloth's `{{.window}}` placeholder, its rolling
period, its budgeting method and its burn-rate alerts as aisre's page/ticket `AlertingConfig`.
`openslo_rules` writes them as Prometheus rules in Sloth's shape (`aisre slo rules --openslo`).

What is read, and how it maps, is documented in docs/openslo.md. Anything else is refused with a
`ConfigError` naming the document, the key path and what is supported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aisre.config.slo import AlertingConfig
from aisre.errors import ConfigError
from aisre.slo.openslo_spec import (
    V1,
    V1ALPHA,
    OpenSLO,
    Unsupported,
    aisre_duration,
    check_known,
    need_mapping,
    need_string,
    read_ratio,
    read_target,
    read_template,
)
from aisre.slo.openslo_v1 import read_v1
from aisre.slo.rules import slo_rule_groups

__all__ = ["V1", "V1ALPHA", "OpenSLO", "Unsupported", "openslo_rules", "parse_openslo", "read_openslo"]
#: v1alpha `timeWindows[].unit` values that name a fixed length (calendar units do not).
_V1ALPHA_UNITS = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800}


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
            read = _v1alpha if doc["apiVersion"] == V1ALPHA else read_v1
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
    meta = need_mapping(doc, "metadata", "metadata")
    name = need_string(meta, "name", "metadata.name")
    spec = need_mapping(doc, "spec", "spec")
    check_known(spec, "spec", {"service", "description", "objectives", "timeWindows", "budgetingMethod", "indicator"})
    if "indicator" in spec:
        raise Unsupported("spec.indicator", "not supported in openslo/v1alpha; supported: objectives[].ratioMetrics")
    if spec.get("budgetingMethod", "Occurrences") != "Occurrences":
        raise Unsupported(
            "spec.budgetingMethod", f"{spec['budgetingMethod']!r} is not supported; supported: Occurrences"
        )
    service = need_string(spec, "service", "spec.service")
    period = "30d"  # Sloth's default period when timeWindows is absent
    windows = spec.get("timeWindows")
    if windows is not None:
        if not isinstance(windows, list) or len(windows) != 1 or not isinstance(windows[0], dict):
            raise Unsupported("spec.timeWindows", "expected a list of exactly one time window")
        window = windows[0]
        check_known(window, "spec.timeWindows[0]", {"count", "unit", "isRolling", "calendar"})
        if "calendar" in window:
            raise Unsupported("spec.timeWindows[0].calendar", "calendar windows are not supported; supported: rolling")
        unit = str(window.get("unit", "")).lower()
        count = window.get("count")
        if unit not in _V1ALPHA_UNITS or not isinstance(count, int) or isinstance(count, bool) or count <= 0:
            raise Unsupported(
                "spec.timeWindows[0]",
                f"expected a positive count and a unit of Minute, Hour, Day or Week, got {window}",
            )
        period = aisre_duration(count * _V1ALPHA_UNITS[unit], "spec.timeWindows[0]")
    objectives = spec.get("objectives")
    if not isinstance(objectives, list) or not objectives:
        raise Unsupported("spec.objectives", "expected a list of at least one objective")
    out = []
    for i, objective in enumerate(objectives):
        at = f"spec.objectives[{i}]"
        if not isinstance(objective, dict):
            raise Unsupported(at, "expected a mapping")
        check_known(objective, at, {"displayName", "op", "value", "target", "ratioMetrics", "timeSliceTarget"})
        if "timeSliceTarget" in objective:
            raise Unsupported(f"{at}.timeSliceTarget", "timeslices are not supported in openslo/v1alpha")
        ratio = objective.get("ratioMetrics")
        if not isinstance(ratio, dict):
            raise Unsupported(
                f"{at}.ratioMetrics", "missing: only ratio objectives (good or bad, and total) are supported"
            )
        check_known(ratio, f"{at}.ratioMetrics", {"good", "bad", "total", "counter"})
        queries = {
            k: _v1alpha_query(ratio[k], f"{at}.ratioMetrics.{k}") for k in ("good", "bad", "total") if k in ratio
        }
        out.append(
            OpenSLO(
                name=f"{name}-{i}",  # Sloth's naming: the objective's index, even when there is one
                service=service,
                objective=read_target(objective, at),
                period=period,
                sli=read_ratio(queries, f"{at}.ratioMetrics"),
                alerting=AlertingConfig(enabled=False, page=[], ticket=[]),  # v1alpha has no alerts (Sloth: none)
                api_version=V1ALPHA,
                description=spec.get("description"),
            )
        )
    return out


def _v1alpha_query(metric: Any, at: str) -> str:
    if not isinstance(metric, dict):
        raise Unsupported(at, "expected a mapping with source, queryType and query")
    check_known(metric, at, {"source", "queryType", "query", "metadata"})
    if str(metric.get("source", "")).lower() not in ("prometheus", "sloth"):
        raise Unsupported(f"{at}.source", f"{metric.get('source')!r} is not supported; supported: prometheus")
    if metric.get("queryType") != "promql":
        raise Unsupported(f"{at}.queryType", f"{metric.get('queryType')!r} is not supported; supported: promql")
    return read_template(metric.get("query"), f"{at}.query", counter=False)
