"""Quality conditions judged from the store: a monitoring signal's newest window, an SLO's burn rate or alert.

Shared by the AI circuit breakers (`aisre.respond.breaker`) and the playbooks: each condition
of a `BreakerCondition` of kind ``signal`` or ``slo`` gives a `Verdict` (bad or not, with the
reason and the evidence), and `Held` applies its ``for`` duration (bad only once it has held
that long, as a Prometheus alert's ``for``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from aisre.config.breakers import BreakerCondition
from aisre.records import Signal
from aisre.slo.evaluate import SLOReport

#: How far back the newest signal of a condition is looked for.
SIGNAL_LOOKBACK_S = 7 * 86_400.0


@dataclass(frozen=True)
class Verdict:
    key: str
    bad: bool
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


def condition_key(condition: BreakerCondition) -> str:
    """A stable name for a quality condition (what incidents and metrics call it)."""
    if condition.signal is not None:
        return f"signal:{condition.signal}"
    if condition.alert is not None:
        return f"slo:{condition.slo}:alert:{condition.alert}"
    return f"slo:{condition.slo}:burn_rate:{condition.window}"


def newest_signal(store: Any, model: str, version: str, name: str, now: float) -> tuple[float, Signal] | None:
    """The signal of the newest window (the newest computation of it, if it was checked again)."""
    rows = store.signals(model=model, name=name, since=now - SIGNAL_LOOKBACK_S, version=version)
    if not rows:
        return None
    return max(rows, key=lambda row: (row[1].window_end if row[1].window_end is not None else row[0], row[0]))


def judge(
    condition: BreakerCondition, model: str, version: str, store: Any, reports: dict[str, SLOReport], now: float
) -> Verdict:
    """The condition's verdict now (never raises: no data is not bad, and says so)."""
    key = condition_key(condition)
    if condition.signal is not None:
        found = newest_signal(store, model, version, condition.signal, now)
        if found is None:
            return Verdict(key, False, f"no {condition.signal} signal for {model} {version} yet")
        computed_at, signal = found
        evidence = {
            "signal": signal.name,
            "value": signal.value,
            "breached": signal.breached,
            "window_start": signal.window_start,
            "window_end": signal.window_end,
            "computed_at": computed_at,
        }
        value = math.nan if signal.value is None else signal.value
        if condition.breached is not None and signal.breached == condition.breached:
            return Verdict(key, True, f"{signal.name} breached={signal.breached}", evidence)
        if condition.min is not None and value < condition.min:
            return Verdict(key, True, f"{signal.name} {value:.4g} < {condition.min:g}", evidence)
        if condition.max is not None and value > condition.max:
            return Verdict(key, True, f"{signal.name} {value:.4g} > {condition.max:g}", evidence)
        return Verdict(key, False, f"{signal.name} {value:.4g} within bounds", evidence)
    report = reports.get(condition.slo or "")
    if report is None or report.problem is not None:
        why = "not evaluated" if report is None else report.problem
        return Verdict(key, False, f"SLO {condition.slo}: {why}")
    if condition.alert is not None:
        state = report.alerts.get(condition.alert, "inactive")
        evidence = {"slo": report.name, "alert": condition.alert, "state": state}
        return Verdict(key, state == "firing", f"SLO {report.name} {condition.alert} alert {state}", evidence)
    rate = report.burn_rates.get(condition.window)
    evidence = {"slo": report.name, "window": condition.window, "burn_rate": rate}
    if rate is None:
        return Verdict(key, False, f"SLO {report.name} has no {condition.window} burn rate", evidence)
    assert condition.burn_rate is not None
    bad = rate > condition.burn_rate
    op = ">" if bad else "<="
    return Verdict(
        key,
        bad,
        f"SLO {report.name} burn rate {rate:.2f}x over {condition.window} {op} {condition.burn_rate:g}x",
        evidence,
    )


class Held:
    """Applies `for`: a condition is bad once it has been bad for `for_s` without a break."""

    def __init__(self) -> None:
        self._since: dict[str, float] = {}

    def apply(self, verdict: Verdict, for_s: float, now: float) -> Verdict:
        if not verdict.bad:
            self._since.pop(verdict.key, None)
            return verdict
        since = self._since.setdefault(verdict.key, now)
        if now - since >= for_s:
            return verdict
        return Verdict(
            verdict.key, False, f"{verdict.reason} (pending: {now - since:.0f} of {for_s:.0f} s)", verdict.evidence
        )
