"""Alert notifications in Alertmanager's webhook format, so any Alertmanager receiver can take them.

The payload is the one Alertmanager POSTs to a `webhook_config` receiver (version "4"; see
https://prometheus.io/docs/alerting/latest/configuration/#webhook_config): a group of alerts
with their common labels and annotations. A firing alert's `endsAt` is Go's zero time, as
Alertmanager sends it; the fingerprint is Prometheus's label-set fingerprint (FNV-1a 64 over
the sorted labels), so the same alert has the same fingerprint in aisre and in Alertmanager.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any

from aisre.slo.alerts import Alert

WEBHOOK_VERSION = "4"
ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's time.Time{}: "not ended" in Alertmanager's payloads
_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF  # prometheus/common model.SeparatorByte


def fingerprint(labels: Mapping[str, str]) -> str:
    """Prometheus's `LabelSet.Fingerprint()`: FNV-1a 64 over name, 0xff, value, 0xff for sorted names; 16 hex."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for chunk in (name.encode(), bytes([_SEPARATOR]), labels[name].encode(), bytes([_SEPARATOR])):
            for byte in chunk:
                h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def rfc3339(ts: float) -> str:
    """Unix seconds -> '2026-01-01T00:00:00Z' (UTC, millisecond precision when not whole)."""
    moment = dt.datetime.fromtimestamp(ts, tz=dt.UTC)
    text = moment.isoformat(timespec="milliseconds" if ts % 1 else "seconds")
    return text.replace("+00:00", "Z")


def _common(maps: Sequence[Mapping[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}


def webhook_payload(
    alerts: Sequence[Alert],
    receiver: str = "aisre",
    external_url: str = "",
    generator_url: str = "",
    group_by: Sequence[str] = ("alertname", "sloth_id"),
) -> dict[str, Any]:
    """One notification for a group of alerts (only firing and resolved ones are sent, as Alertmanager)."""
    sent = [a for a in alerts if a.state in ("firing", "resolved")]
    common_labels = _common([a.labels for a in sent])
    group_labels = {k: common_labels[k] for k in group_by if k in common_labels}
    group_key = "{}:{" + ", ".join(f'{k}="{v}"' for k, v in sorted(group_labels.items())) + "}"
    items = []
    for a in sent:
        starts = a.active_since_s if a.active_since_s is not None else a.fired_at_s
        items.append(
            {
                "status": "firing" if a.state == "firing" else "resolved",
                "labels": dict(a.labels),
                "annotations": dict(a.annotations),
                "startsAt": rfc3339(starts) if starts is not None else ZERO_TIME,
                "endsAt": rfc3339(a.resolved_at_s)
                if a.state == "resolved" and a.resolved_at_s is not None
                else ZERO_TIME,
                "generatorURL": generator_url,
                "fingerprint": fingerprint(a.labels),
            }
        )
    return {
        "version": WEBHOOK_VERSION,
        "groupKey": group_key,
        "truncatedAlerts": 0,
        "status": "firing" if any(i["status"] == "firing" for i in items) else "resolved",
        "receiver": receiver,
        "groupLabels": group_labels,
        "commonLabels": common_labels,
        "commonAnnotations": _common([a.annotations for a in sent]),
        "externalURL": external_url,
        "alerts": items,
    }


def alertmanager_alerts(alerts: Sequence[Alert], generator_url: str = "") -> list[dict[str, Any]]:
    """The firing/resolved alerts as Alertmanager's API v2 takes them (`POST /api/v2/alerts`), as Prometheus
    sends them: a firing alert has no `endsAt` (Alertmanager applies its resolve_timeout), a resolved one ends
    when it was resolved."""
    posted = []
    for a in alerts:
        if a.state not in ("firing", "resolved"):
            continue
        item: dict[str, Any] = {
            "labels": dict(a.labels),
            "annotations": dict(a.annotations),
            "generatorURL": generator_url,
        }
        if a.active_since_s is not None:
            item["startsAt"] = rfc3339(a.active_since_s)
        if a.state == "resolved" and a.resolved_at_s is not None:
            item["endsAt"] = rfc3339(a.resolved_at_s)
        posted.append(item)
    return posted


class _Poster:
    """POSTs JSON; a failed delivery is counted (`failed`, `last_error`), never raised: an unreachable
    receiver must not stop the evaluation loop that found the burn."""

    def __init__(self, url: str, timeout_s: float, headers: Mapping[str, str] | None = None) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self.headers = dict(headers or {})  # e.g. Authorization for a receiver behind a token
        self.sent = 0
        self.failed = 0
        self.last_error: str | None = None

    def _post(self, body: object) -> bool:
        request = urllib.request.Request(
            self.url,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "User-Agent": "aisre-slo", **self.headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                response.read()
        except (OSError, ValueError) as exc:  # URLError, HTTPError (non-2xx), timeouts, a malformed URL
            self.failed += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            return False
        self.sent += 1
        return True


class WebhookNotifier(_Poster):
    """Sends alert groups in Alertmanager's webhook format to one receiver URL (a `webhook_config` target:
    PagerDuty/Slack bridges, chat-ops bots, or aisre's own tests)."""

    def __init__(
        self,
        url: str,
        timeout_s: float = 5.0,
        receiver: str = "aisre",
        external_url: str = "",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(url, timeout_s, headers)
        self.receiver = receiver
        self.external_url = external_url

    def notify(self, alerts: Sequence[Alert]) -> bool:
        """Send the firing/resolved alerts among `alerts` as one payload; True when the receiver said 2xx."""
        payload = webhook_payload(alerts, receiver=self.receiver, external_url=self.external_url)
        return True if not payload["alerts"] else self._post(payload)


class AlertmanagerClient(_Poster):
    """Pushes alerts to a real Alertmanager (`url` is its base, e.g. http://alertmanager:9093), as Prometheus
    does, so its routing, grouping, silences and receivers apply to aisre's SLO alerts."""

    def __init__(
        self, url: str, timeout_s: float = 5.0, generator_url: str = "", headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(url.rstrip("/") + "/api/v2/alerts", timeout_s, headers)
        self.generator_url = generator_url

    def push(self, alerts: Sequence[Alert]) -> bool:
        """POST the firing/resolved alerts among `alerts`; True when Alertmanager accepted them."""
        posted = alertmanager_alerts(alerts, self.generator_url)
        return True if not posted else self._post(posted)
