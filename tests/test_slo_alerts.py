"""Multi-window multi-burn-rate alerts: factors, exact firing times on a ManualClock, lifecycle, webhooks."""

from __future__ import annotations

import doctest
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import numpy as np
import pytest

import aisre.slo.alerts
from aisre.clock import ManualClock
from aisre.config.slo import SLOConfig
from aisre.slo import AlertEvaluator, MinuteSeries, WebhookNotifier, alert_factor, check_windows, webhook_payload
from aisre.slo.rules import rules
from aisre.slo.webhook import fingerprint
from tests.conftest import free_port

MINUTE = 60.0
HOUR = 3600.0
T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
PER_MINUTE = 10_000.0


def availability(period: str = "30d", **alerting: Any) -> SLOConfig:
    return SLOConfig(
        name="api",
        model="fraud",
        objective=0.999,
        period=period,
        sli={"kind": "availability"},
        alerting=alerting,
    )


def traffic(good_hours: float, bad_per_minute: float, bad_minutes: int) -> MinuteSeries:
    """`good_hours` of clean traffic starting at T0, then `bad_minutes` with a constant number of failures."""
    bad = np.concatenate([np.zeros(int(good_hours * 60)), np.full(bad_minutes, bad_per_minute)])
    return MinuteSeries(T0, good=PER_MINUTE - bad, total=np.full(len(bad), PER_MINUTE))


def run(
    evaluator: AlertEvaluator, clock: ManualClock, series: MinuteSeries, minutes: int
) -> list[tuple[float, str, str]]:
    """Tick once a minute; return (time, severity, new state) for each transition."""
    events = []
    for _ in range(minutes):
        clock.advance(MINUTE)
        events += [(clock.now(), a.severity, a.state) for a in evaluator.tick(series)]
    return events


def test_factors_for_30_days_are_the_workbooks() -> None:
    slo = availability()
    assert [alert_factor(slo, w) for w in slo.alerting.page] == pytest.approx([14.4, 6.0])
    assert [alert_factor(slo, w) for w in slo.alerting.ticket] == pytest.approx([3.0, 1.0])


def test_factors_scale_with_a_28_day_period() -> None:
    slo = availability("28d")
    # 2% x 672h / 1h, 5% x 672h / 6h, 10% x 672h / 24h, 10% x 672h / 72h
    assert [alert_factor(slo, w) for w in slo.alerting.page] == pytest.approx([13.44, 5.6])
    assert [alert_factor(slo, w) for w in slo.alerting.ticket] == pytest.approx([2.8, 0.9333333])


def test_an_explicit_burn_rate_overrides_the_derived_factor() -> None:
    slo = availability(page=[{"long": "1h", "short": "5m", "budget_percent": 2, "burn_rate": 10}])
    assert alert_factor(slo, slo.alerting.page[0]) == 10.0


def test_an_hour_of_total_failure_fires_the_page_alert() -> None:
    clock = ManualClock(T0)
    series = traffic(good_hours=2, bad_per_minute=PER_MINUTE, bad_minutes=60)
    evaluator = AlertEvaluator(availability(), clock)
    clock.advance(3 * HOUR)
    evaluator.tick(series)
    fast = next(c for c in evaluator.last_checks if c.long == "1h")
    assert fast.long_burn_rate == pytest.approx(1000.0) and fast.met
    assert evaluator.alerts["page"].state == "firing"
    assert "1e+03x" in evaluator.alerts["page"].annotations["summary"]


def test_page_fires_exactly_when_the_1h_window_passes_14_4_and_not_before() -> None:
    # 145 failures in 10,000 a minute is 14.5x; the 5m window passes 14.4x after 5 minutes, the
    # 1h window only after 60 (14.5 x 59/60 < 14.4 < 14.5): the alert must wait for both.
    clock = ManualClock(T0 + 6 * HOUR)
    series = traffic(good_hours=6, bad_per_minute=145, bad_minutes=120)
    events = [e for e in run(AlertEvaluator(availability(), clock), clock, series, 120) if e[1] == "page"]
    assert events == [(T0 + 7 * HOUR, "page", "firing")]  # pending and firing in one tick (for 0)


def test_a_burn_of_exactly_the_factor_does_not_page_as_in_sloths_rules() -> None:
    clock = ManualClock(T0 + 6 * HOUR)
    series = traffic(good_hours=6, bad_per_minute=144, bad_minutes=120)  # exactly 14.4x for two hours
    evaluator = AlertEvaluator(availability(), clock)
    run(evaluator, clock, series, 120)
    fast = next(c for c in evaluator.last_checks if c.long == "1h")
    assert fast.long_burn_rate == pytest.approx(14.4) and not fast.met  # Prometheus's `>`, not `>=`
    assert evaluator.alerts["page"].state == "inactive"


def test_a_burn_just_below_the_factor_does_not_page() -> None:
    clock = ManualClock(T0 + 6 * HOUR)
    series = traffic(good_hours=6, bad_per_minute=143, bad_minutes=120)  # 14.3x for two hours
    evaluator = AlertEvaluator(availability(), clock)
    run(evaluator, clock, series, 120)
    assert evaluator.alerts["page"].state == "inactive"
    fast = next(c for c in evaluator.last_checks if c.long == "1h")
    assert fast.long_burn_rate == pytest.approx(14.3) and not fast.met


def test_ticket_fires_when_both_ticket_windows_pass_their_factor() -> None:
    # three clean days, then 31 failures in 10,000 a minute (3.1x). After m bad minutes the 1d
    # window burns 3.1 m / 1440 and the 3d window 3.1 m / 4320 x 3 (its factor is 1): both pass
    # their factor once m > 1393.5, so the ticket fires at minute 1394 and not at 1393.
    clock = ManualClock(T0 + 72 * HOUR)
    series = traffic(good_hours=72, bad_per_minute=31, bad_minutes=26 * 60)
    evaluator = AlertEvaluator(availability(), clock)
    run(evaluator, clock, series, 1393)
    assert evaluator.alerts["ticket"].state == "inactive"
    run(evaluator, clock, series, 1)
    daily = next(c for c in evaluator.last_checks if c.long == "1d")
    assert daily.long_burn_rate == pytest.approx(3.1 * 1394 / 1440) and daily.met
    assert evaluator.alerts["ticket"].state == "firing"
    assert evaluator.alerts["ticket"].fired_at_s == T0 + 72 * HOUR + 1394 * 60
    assert evaluator.alerts["page"].state == "inactive"


def test_alert_resolves_when_the_short_window_clears() -> None:
    clock = ManualClock(T0 + HOUR)
    # an hour of clean traffic, 30 minutes of total failure, then clean again
    bad = np.concatenate([np.zeros(60), np.full(30, PER_MINUTE), np.zeros(120)])
    series = MinuteSeries(T0, good=PER_MINUTE - bad, total=np.full(len(bad), PER_MINUTE))
    evaluator = AlertEvaluator(availability(), clock)
    events = [e for e in run(evaluator, clock, series, 150) if e[1] == "page"]
    # fires after the first bad minute; the 6h/30m window keeps it until the 30m window holds
    # less than 6 x 0.1% failures: 30 bad minutes of 30 -> 5.4% of 30 minutes is under 2 bad minutes
    assert events[0] == (T0 + HOUR + MINUTE, "page", "firing")
    assert events[1][2] == "resolved"
    page = evaluator.alerts["page"]
    assert page.resolved_at_s == events[1][0] and T0 + 90 * MINUTE < page.resolved_at_s <= T0 + 120 * MINUTE
    assert page.active_since_s == T0 + HOUR + MINUTE


def test_for_duration_holds_the_alert_pending_then_fires() -> None:
    clock = ManualClock(T0 + HOUR)
    series = traffic(good_hours=1, bad_per_minute=PER_MINUTE, bad_minutes=60)
    events = run(AlertEvaluator(availability(), clock, for_s={"page": 300, "ticket": 3600}), clock, series, 10)
    page = [e for e in events if e[1] == "page"]
    assert page == [(T0 + HOUR + MINUTE, "page", "pending"), (T0 + HOUR + 6 * MINUTE, "page", "firing")]
    assert [e[2] for e in events if e[1] == "ticket"] == ["pending"]


def test_a_pending_alert_whose_condition_clears_goes_back_to_inactive_without_resolving() -> None:
    clock = ManualClock(T0 + HOUR)
    bad = np.concatenate([np.zeros(60), np.full(1, PER_MINUTE), np.zeros(60)])
    series = MinuteSeries(T0, good=PER_MINUTE - bad, total=np.full(len(bad), PER_MINUTE))
    evaluator = AlertEvaluator(availability(), clock, for_s=3600)
    events = [e[2] for e in run(evaluator, clock, series, 60) if e[1] == "page"]
    assert events == ["pending", "inactive"]


def test_disabled_alerting_never_fires() -> None:
    clock = ManualClock(T0 + HOUR)
    evaluator = AlertEvaluator(availability(enabled=False), clock)
    assert run(evaluator, clock, traffic(1, PER_MINUTE, 60), 10) == []


def test_check_windows_covers_every_configured_window() -> None:
    checks = check_windows(availability(), traffic(1, 0, 60), T0 + 2 * HOUR)
    assert [(c.severity, c.long, c.short) for c in checks] == [
        ("page", "1h", "5m"),
        ("page", "6h", "30m"),
        ("ticket", "1d", "2h"),
        ("ticket", "3d", "6h"),
    ]
    assert not any(c.met for c in checks)


def test_alert_labels_are_those_of_the_prometheus_rule_for_the_same_alert() -> None:
    slo = availability(labels={"team": "risk"})
    groups = rules([slo])["groups"]
    ids = {k: v for k, v in groups[1]["rules"][0]["labels"].items()}  # slo:objective:ratio's labels
    evaluator = AlertEvaluator(slo, ManualClock(T0))
    for rule in groups[-1]["rules"]:
        severity = rule["labels"]["sloth_severity"]
        assert evaluator.alerts[severity].labels == {"alertname": rule["alert"], **ids, **rule["labels"]}


def test_alerts_module_example_runs() -> None:
    result = doctest.testmod(aisre.slo.alerts)
    assert result.attempted > 0 and result.failed == 0


# --- webhook ---------------------------------------------------------------------------------


class _Receiver(BaseHTTPRequestHandler):
    status = 200
    bodies: list[dict[str, Any]]

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        length = int(self.headers["Content-Length"])
        self.bodies.append({"content_type": self.headers["Content-Type"], **json.loads(self.rfile.read(length))})
        self.send_response(self.status)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Receiver", (_Receiver,), {"bodies": [], "status": 200})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", handler
    server.shutdown()
    server.server_close()


def firing_then_resolved() -> tuple[AlertEvaluator, list[Any], list[Any]]:
    clock = ManualClock(T0 + HOUR)
    bad = np.concatenate([np.zeros(60), np.full(5, PER_MINUTE), np.zeros(120)])
    series = MinuteSeries(T0, good=PER_MINUTE - bad, total=np.full(len(bad), PER_MINUTE))
    evaluator = AlertEvaluator(availability(labels={"team": "risk"}, annotations={"runbook_url": "http://rb"}), clock)
    clock.advance(MINUTE)
    fired = evaluator.tick(series)
    clock.advance(12 * HOUR)  # past the 6h short window of the slowest ticket: no events, no burn
    resolved = evaluator.tick(series)
    return evaluator, fired, resolved


def test_webhook_payload_received_has_alertmanagers_fields(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    _, fired, resolved = firing_then_resolved()
    notifier = WebhookNotifier(url, timeout_s=10, external_url="http://aisre:8000")
    assert notifier.notify(fired) and notifier.notify(resolved)
    assert (notifier.sent, notifier.failed) == (2, 0)
    first, second = handler.bodies
    assert first["content_type"] == "application/json"
    for key in ("version", "groupKey", "status", "receiver", "groupLabels", "commonLabels", "commonAnnotations"):
        assert key in first
    assert first["version"] == "4" and first["status"] == "firing" and first["receiver"] == "aisre"
    assert first["externalURL"] == "http://aisre:8000"
    assert first["groupLabels"] == {"alertname": "ApiSLO", "sloth_id": "aisre-api"}
    assert first["groupKey"] == '{}:{alertname="ApiSLO", sloth_id="aisre-api"}'
    assert first["commonLabels"]["team"] == "risk" and "sloth_severity" not in first["commonLabels"]  # page, ticket
    assert first["commonAnnotations"]["runbook_url"] == "http://rb"
    alert = first["alerts"][0]
    assert set(alert) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert alert["status"] == "firing" and alert["startsAt"] == "2026-01-01T01:01:00Z"
    assert alert["endsAt"] == "0001-01-01T00:00:00Z"
    assert alert["labels"]["sloth_severity"] in ("page", "ticket")
    assert len(alert["fingerprint"]) == 16
    assert second["status"] == "resolved"
    assert {a["endsAt"] for a in second["alerts"]} == {"2026-01-01T13:01:00Z"}
    assert {a["fingerprint"] for a in second["alerts"]} == {a["fingerprint"] for a in first["alerts"]}


def test_webhook_failures_are_counted_not_raised(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    _, fired, _ = firing_then_resolved()
    handler.status = 500
    notifier = WebhookNotifier(url, timeout_s=10)
    assert notifier.notify(fired) is False
    closed = WebhookNotifier(f"http://127.0.0.1:{free_port()}/hook", timeout_s=10)
    assert closed.notify(fired) is False
    assert (notifier.failed, closed.failed, notifier.sent) == (1, 1, 0)
    assert closed.last_error and "URLError" in closed.last_error
    assert notifier.last_error and "500" in notifier.last_error


def test_nothing_is_sent_for_pending_alerts(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    clock = ManualClock(T0 + HOUR)
    evaluator = AlertEvaluator(availability(), clock, for_s=3600)
    clock.advance(MINUTE)
    pending = evaluator.tick(traffic(1, PER_MINUTE, 1))
    assert {a.state for a in pending} == {"pending"}
    assert WebhookNotifier(url).notify(pending) and handler.bodies == []
    assert webhook_payload(pending)["alerts"] == []


def test_fingerprint_is_prometheus_label_set_fingerprint() -> None:
    # prometheus/common model: LabelSet{}.Fingerprint() is FNV-1a 64's offset basis; order does not matter
    assert fingerprint({}) == "cbf29ce484222325"
    assert fingerprint({"a": "1", "b": "2"}) == fingerprint({"b": "2", "a": "1"})
    assert fingerprint({"a": "1"}) != fingerprint({"a": "2"})
