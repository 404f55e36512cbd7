"""The `notifications:` and `slo_evaluation:` sections: where SLO alerts go, and how often SLOs are judged.

Receivers are named once at the top level so that every alert source refers to them by name
(`slos[].alerting.notify` today; the playbooks of the control loop next). A receiver is either an
Alertmanager-style `webhook` (any `webhook_config` target: a chat-ops bridge, PagerDuty's
Alertmanager integration, a test server) or an `alertmanager` to push to (its API v2), so that
Alertmanager's routing, grouping and silences apply to aisre's alerts exactly as to Prometheus's.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from aisre.config import checks
from aisre.config.base import Section
from aisre.config.slo import Duration, parse_duration

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?$")
#: Alertmanager forgets a firing alert that is not re-sent within its resolve_timeout (5m by default);
#: Prometheus re-sends every minute (its --rules.alert.resend-delay). Webhooks repeat as Alertmanager's
#: default repeat_interval does.
DEFAULT_REPEAT = {"alertmanager": "1m", "webhook": "4h"}


def _http_url(url: str | None) -> str | None:
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"expected an http(s) URL such as http://127.0.0.1:9093, got {url!r}")
    return url


class ReceiverConfig(Section):
    """One place alerts are sent: exactly one of `webhook` (the URL Alertmanager's webhook payload is
    POSTed to) or `alertmanager` (an Alertmanager's base URL; alerts go to its /api/v2/alerts).

    A delivery that fails (connection refused, timeout, a non-2xx answer) is retried with exponential
    back-off (1 s doubling up to 60 s) until `give_up_after`; it never delays the SLO evaluation.
    A firing alert is sent again every `repeat_interval` while it fires (default 1m to an Alertmanager,
    which otherwise resolves it by itself after its resolve_timeout; 4h to a webhook).
    """

    name: str = Field(description="A unique name, used in `slos[].alerting.notify` and playbooks' `notify`.")
    webhook: str | None = Field(None, description="A URL Alertmanager's webhook payload is POSTed to.")
    alertmanager: str | None = Field(
        None, description="An Alertmanager's base URL; alerts are POSTed to its /api/v2/alerts."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="Headers sent with each delivery (e.g. Authorization from ${ENV})."
    )
    timeout_s: float = Field(5.0, gt=0, le=300, description="Time one delivery may take.")
    send_resolved: bool = Field(True, description="Also send an alert when it resolves.")
    repeat_interval: Duration | None = Field(
        None, description="Send a firing alert again this often (default 1m to an Alertmanager, 4h to a webhook)."
    )
    give_up_after: Duration = Field("1h", description="Stop retrying a failed delivery after this long.")

    @field_validator("name")
    @classmethod
    def _named(cls, name: str) -> str:
        if not _NAME.match(name):
            raise ValueError("expected a name of letters, digits, '.', '-' and '_' (at most 64), such as oncall-pager")
        return name

    _urls = field_validator("webhook", "alertmanager")(_http_url)

    @field_validator("headers")
    @classmethod
    def _sendable_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        bad = checks.header_problems(headers)
        if bad:
            raise ValueError("; ".join(bad))
        return headers

    @model_validator(mode="after")
    def _one_target(self) -> ReceiverConfig:
        if (self.webhook is None) == (self.alertmanager is None):
            raise ValueError("a receiver needs exactly one of webhook: URL or alertmanager: URL")
        return self

    @property
    def kind(self) -> Literal["webhook", "alertmanager"]:
        return "webhook" if self.webhook is not None else "alertmanager"

    @property
    def url(self) -> str:
        url = self.webhook if self.webhook is not None else self.alertmanager
        assert url is not None
        return url

    @property
    def repeat_interval_s(self) -> float:
        return parse_duration(self.repeat_interval or DEFAULT_REPEAT[self.kind])

    @property
    def give_up_after_s(self) -> float:
        return parse_duration(self.give_up_after)


class NotificationsConfig(Section):
    """Named receivers (see `ReceiverConfig`); `slos[].alerting.notify` lists names of these."""

    receivers: list[ReceiverConfig] = Field(default_factory=list, description="The receivers, each with a unique name.")

    @model_validator(mode="after")
    def _unique_names(self) -> NotificationsConfig:
        seen: set[str] = set()
        found = []
        for i, receiver in enumerate(self.receivers):
            if receiver.name in seen:
                found.append(checks.Problem(("receivers", i, "name"), f"another receiver is named {receiver.name!r}"))
            seen.add(receiver.name)
        checks.raise_all(found, "NotificationsConfig")
        return self

    def receiver(self, name: str) -> ReceiverConfig | None:
        return next((r for r in self.receivers if r.name == name), None)


class SLOEvaluationConfig(Section):
    """The continuous SLO evaluator of `aisre serve` and `aisre watch` (one process per store runs it).

    Every `interval` it judges every SLO (`aisre.slo.evaluate`), exports the result on /metrics and
    notifies the receivers of alerts that fired or resolved. For the SLOs whose Prometheus rules read
    `aisre_slo_events_total`, each closed minute (or timeslice) is added to that counter once; a closed
    minute is re-read for `export_lookback` so labels arriving within it still count (see
    docs/decisions.md). `service` is the alerts' `sloth_service` label: give the same value as
    `aisre slo rules --service` so both evaluators' alerts share a fingerprint.
    """

    enabled: bool = Field(True, description="Judge the SLOs continuously in `aisre serve` / `aisre watch`.")
    interval: Duration = Field("15s", description="Time between two evaluations (1s to 1h).")
    export_lookback: Duration = Field(
        "1h",
        description=(
            "How far back closed minutes are re-read for late labels before their events are counted on /metrics."
        ),
    )
    service: str = "aisre"

    @field_validator("interval")
    @classmethod
    def _not_busy(cls, interval: str) -> str:
        if not 1.0 <= parse_duration(interval) <= 3600.0:
            raise ValueError(f"expected an interval between 1s and 1h, got {interval!r}")
        return interval

    @property
    def interval_s(self) -> float:
        return parse_duration(self.interval)

    @property
    def export_lookback_s(self) -> float:
        return parse_duration(self.export_lookback)
