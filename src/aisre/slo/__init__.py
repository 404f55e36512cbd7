"""aisre.slo: service level objectives whose error budgets count model degradation like downtime.

A library first (usable in a notebook with a `ManualClock`, no server needed):

- `MinuteSeries`: good/total counts per minute (or one entry per timeslice).
- `budget_status`, `burn_rate`, `error_ratio`, `time_to_exhaustion`: the budget numbers,
  with Sloth's recording-rule semantics so the embedded evaluator and Prometheus agree.
- `AlertEvaluator`, `check_windows`, `alert_factor`: multi-window multi-burn-rate alerts
  (SRE workbook ch. 5) with pending/firing/resolved states.
- `webhook_payload`, `WebhookNotifier`: notifications in Alertmanager's webhook format;
  `AlertmanagerClient`: push to a real Alertmanager instead, as Prometheus does.
- `evaluate` -> `SLOReport`: the embedded evaluator, every SLO judged from the store at
  `clock.now()` (`aisre.slo.events` turns the store into series); `history` for burn-downs.

The spec lives in `aisre.config.slo` (`SLOConfig`); Prometheus rules in `aisre.slo.rules`.
"""

from aisre.slo.alerts import Alert, AlertEvaluator, WindowCheck, alert_factor, check_windows
from aisre.slo.budget import BudgetStatus, MinuteSeries, budget_status, burn_rate, error_ratio, time_to_exhaustion
from aisre.slo.evaluate import SLOReport, evaluate, history, promotions_frozen
from aisre.slo.events import NotEvaluable, sli_series
from aisre.slo.webhook import AlertmanagerClient, WebhookNotifier, alertmanager_alerts, fingerprint, webhook_payload

__all__ = [
    "Alert",
    "AlertEvaluator",
    "AlertmanagerClient",
    "BudgetStatus",
    "MinuteSeries",
    "NotEvaluable",
    "SLOReport",
    "WebhookNotifier",
    "WindowCheck",
    "alert_factor",
    "alertmanager_alerts",
    "budget_status",
    "burn_rate",
    "check_windows",
    "error_ratio",
    "evaluate",
    "fingerprint",
    "history",
    "promotions_frozen",
    "sli_series",
    "time_to_exhaustion",
    "webhook_payload",
]
