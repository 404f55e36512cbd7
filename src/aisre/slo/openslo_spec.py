"""The pieces both OpenSLO versions share: the `OpenSLO` result, the `Unsupported` problem, value readers.

Used by `aisre.slo.openslo` (v1alpha, the public entry points) and `aisre.slo.openslo_v1`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from aisre.config.slo import AlertingConfig, parse_duration
from aisre.errors import AisreError
from aisre.slo.rules import WINDOW, WINDOW_PATTERN, RatioSLI

V1ALPHA = "openslo/v1alpha"
V1 = "openslo/v1"
#: The AlertNotificationTarget aisre exports for "Prometheus rules -> Alertmanager" (not an aisre receiver).
ALERTMANAGER_TARGET = "aisre-alertmanager"
#: v1 duration shorthand units (OpenSLO's go-sdk: M = 30 days, Q = 90 days, Y = 365 days).
_V1_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 604800, "M": 2592000, "Q": 7776000, "Y": 31536000}
_SHORTHAND = re.compile(r"^(\d+)([mhdwMQY])$")
_BARE_SELECTOR = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^{}]*\})?$")


class Unsupported(AisreError):
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


def read_template(query: Any, at: str, counter: bool) -> str:
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


def read_ratio(queries: dict[str, str], at: str) -> RatioSLI:
    if "total" not in queries or ("good" in queries) == ("bad" in queries):
        raise Unsupported(at, "expected total and exactly one of good and bad")
    return RatioSLI(total=queries["total"], good=queries.get("good"), bad=queries.get("bad"))


def read_target(objective: dict[str, Any], at: str) -> float:
    if ("target" in objective) == ("targetPercent" in objective):
        raise Unsupported(at, "expected exactly one of target (a ratio) and targetPercent")
    if "target" in objective:
        value, scale, at = objective["target"], 1.0, f"{at}.target"
    else:
        value, scale, at = objective["targetPercent"], 100.0, f"{at}.targetPercent"
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value / scale < 1:
        raise Unsupported(at, f"expected a number in (0, {scale:g}), got {value!r}")
    return float(value) / scale


def read_shorthand(text: Any, at: str) -> str:
    match = _SHORTHAND.match(text) if isinstance(text, str) else None
    if not match or int(match[1]) <= 0:
        raise Unsupported(at, f"expected a duration shorthand such as 5m, 1h, 30d, 4w or 1M, got {text!r}")
    if match[2] in "mhdw":
        return text
    return aisre_duration(int(match[1]) * _V1_UNITS[match[2]], at)


def aisre_duration(seconds: float, at: str) -> str:
    """Whole minutes as aisre (and OpenSLO) write a duration, in the largest exact unit: 2592000 -> '30d'."""
    if seconds <= 0 or seconds % 60:
        raise Unsupported(at, f"{seconds:g} s is not a whole number of minutes")
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    raise AssertionError("unreachable: minutes divide")


def need_mapping(parent: dict[str, Any], key: str, at: str) -> dict[str, Any]:
    value = parent.get(key)
    if not isinstance(value, dict):
        raise Unsupported(at, "expected a mapping" if key in parent else "missing")
    return value


def need_string(parent: dict[str, Any], key: str, at: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise Unsupported(at, "expected a non-empty string" if key in parent else "missing")
    return value


def check_known(mapping: dict[str, Any], at: str, keys: set[str]) -> None:
    unknown = sorted(set(mapping) - keys)
    if unknown:
        raise Unsupported(f"{at}.{unknown[0]}", f"unknown key; expected one of {', '.join(sorted(keys))}")
