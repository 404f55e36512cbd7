"""Multi-window multi-burn-rate alerts and their pending/firing/resolved lifecycle.

An alert window fires when the burn rate over *both* its long and its short window is at
least its factor (SRE workbook, ch. 5, "6: Multiwindow, Multi-Burn-Rate Alerts"): the long
window proves the burn is significant, the short one that it is still happening, so the alert
resolves minutes after the burn stops instead of an hour later. The windows of one severity
are OR-ed into one alert, as Sloth writes one `page` and one `ticket` alert per SLO.

The factor, when not given, is derived from the share of the budget the burn spends over the
long window, for the SLO's own period (as Sloth does): budget_percent/100 x period / long.
For 30 days that gives the workbook's 14.4 (2% over 1h), 6 (5% over 6h), 3 (10% over 1d) and
1 (10% over 3d); for 28 days 13.44, 5.6, 2.8 and 0.933.

The lifecycle is Prometheus's: a condition that becomes true makes the alert pending (its
`active_since_s` is then); after `for_s` seconds it fires (at once when `for_s` is 0, the
default, as Sloth's alerts); when the condition clears a firing alert is resolved and a pending
one simply goes back to inactive. Evaluation is driven by ticks on an injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config.slo import SLOConfig, parse_duration
from aisre.slo.budget import MinuteSeries, alert_factor, burn_rate
from aisre.slo.rules import alert_name

Severity = Literal["page", "ticket"]
AlertState = Literal["inactive", "pending", "firing", "resolved"]
SEVERITIES: tuple[Severity, ...] = ("page", "ticket")


@dataclass(frozen=True)
class WindowCheck:
    """One alert window judged at one time: both burn rates and whether both reach the factor."""

    severity: Severity
    long: str
    short: str
    factor: float
    long_burn_rate: float
    short_burn_rate: float

    @property
    def met(self) -> bool:
        """Both burn rates strictly above the factor: Sloth's (and so the Prometheus rules') `>`."""
        return self.long_burn_rate > self.factor and self.short_burn_rate > self.factor


def check_windows(slo: SLOConfig, series: MinuteSeries, at_s: float) -> list[WindowCheck]:
    """Every page and ticket window of the SLO, judged on the counts complete at `at_s`."""
    checks = []
    for severity in SEVERITIES:
        for window in getattr(slo.alerting, severity):
            checks.append(
                WindowCheck(
                    severity=severity,
                    long=window.long,
                    short=window.short,
                    factor=alert_factor(slo, window),
                    long_burn_rate=burn_rate(slo, series, at_s, parse_duration(window.long)),
                    short_burn_rate=burn_rate(slo, series, at_s, parse_duration(window.short)),
                )
            )
    return checks


@dataclass(frozen=True)
class Alert:
    """One SLO's alert of one severity, as it stands after an evaluation. Times are Unix seconds."""

    slo: str
    severity: Severity
    state: AlertState = "inactive"
    active_since_s: float | None = None
    """When the condition last became true (Prometheus's activeAt; Alertmanager's startsAt)."""
    fired_at_s: float | None = None
    resolved_at_s: float | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)


def alert_labels(slo: SLOConfig, severity: Severity, service: str = "aisre") -> dict[str, str]:
    """Exactly the labels the Prometheus rule of `aisre.slo.rules` gives the same alert (alertname, Sloth's
    ids, `sloth_severity`, the SLO's `alerting.labels`), so both evaluators' alerts share a fingerprint and
    Alertmanager deduplicates them."""
    labels = {
        "alertname": alert_name(slo.name),
        "sloth_id": f"{service}-{slo.name}",
        "sloth_service": service,
        "sloth_slo": slo.name,
    }
    return {**labels, **slo.alerting.labels, "sloth_severity": severity}


class AlertEvaluator:
    """Runs the page and ticket alerts of one SLO over successive evaluation ticks.

    Parameters
    ----------
    slo: the SLO (its `alerting` section gives the windows, labels and annotations).
    clock: where `tick` reads the time when none is given (a `ManualClock` in notebooks and tests).
    for_s: how long a condition must hold before pending becomes firing, per severity or for both.
    service: the `sloth_service` label, as given to `aisre.slo.rules.rules`.

    Example
    -------
    >>> import numpy as np
    >>> from aisre.clock import ManualClock
    >>> from aisre.config.slo import SLOConfig
    >>> slo = SLOConfig(name="api", model="m", objective=0.999, sli={"kind": "availability"})
    >>> clock = ManualClock(start=0.0)
    >>> bad_hour = MinuteSeries(0.0, good=np.zeros(60), total=np.full(60, 100.0))
    >>> clock.advance(3600)
    >>> [(a.severity, a.state) for a in AlertEvaluator(slo, clock).tick(bad_hour)]
    [('page', 'firing'), ('ticket', 'firing')]
    """

    def __init__(
        self,
        slo: SLOConfig,
        clock: Clock = SYSTEM_CLOCK,
        for_s: float | dict[str, float] = 0.0,
        service: str = "aisre",
    ) -> None:
        self.slo = slo
        self.clock = clock
        self.for_s = {s: float(for_s[s] if isinstance(for_s, dict) else for_s) for s in SEVERITIES}
        self.alerts: dict[Severity, Alert] = {
            s: Alert(slo.name, s, labels=alert_labels(slo, s, service), annotations=dict(slo.alerting.annotations))
            for s in SEVERITIES
        }
        self.last_checks: list[WindowCheck] = []

    def tick(self, series: MinuteSeries, at_s: float | None = None) -> list[Alert]:
        """Evaluate at `at_s` (default: the clock's now); return the alerts whose state changed."""
        now = self.clock.now() if at_s is None else at_s
        self.last_checks = check_windows(self.slo, series, now) if self.slo.alerting.enabled else []
        changed = []
        for severity in SEVERITIES:
            met = [c for c in self.last_checks if c.severity == severity and c.met]
            before = self.alerts[severity]
            after = self._step(before, met, now)
            if after.state != before.state:
                changed.append(after)
            self.alerts[severity] = after
        return changed

    def _step(self, alert: Alert, met: list[WindowCheck], now: float) -> Alert:
        if not met:
            if alert.state == "firing":
                return replace(alert, state="resolved", resolved_at_s=now)
            if alert.state == "pending":
                return replace(alert, state="inactive", active_since_s=None)
            return alert
        if alert.state in ("inactive", "resolved"):
            alert = replace(alert, state="pending", active_since_s=now, fired_at_s=None, resolved_at_s=None)
        worst = max(met, key=lambda c: c.long_burn_rate / c.factor)
        annotations = {
            **self.slo.alerting.annotations,
            "summary": f"SLO {self.slo.name} is burning its error budget {worst.long_burn_rate:.3g}x too fast",
            "description": (
                f"{self.slo.name} ({self.slo.model}, objective {self.slo.objective:.6g} over {self.slo.period}): "
                f"burn rate {worst.long_burn_rate:.3g} over {worst.long} and {worst.short_burn_rate:.3g} over "
                f"{worst.short}, at least {worst.factor:.4g} ({alert.severity})"
            ),
        }
        alert = replace(alert, annotations=annotations)
        assert alert.active_since_s is not None
        if alert.state == "pending" and now - alert.active_since_s >= self.for_s[alert.severity]:
            alert = replace(alert, state="firing", fired_at_s=now)
        return alert
