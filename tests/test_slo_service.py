"""The continuous SLO judge (aisre.slo.service) on a ManualClock: alert lifecycle and notifications, the
`aisre_slo_events_total` counter (closed buckets once, late labels, never double counted), isolation of a
broken SLO, retries to a receiver that is down, one judge per store, and the config checks."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

import aisre
from aisre.clock import ManualClock
from aisre.config import parse_config
from aisre.errors import ConfigError
from aisre.locks import RunnerLock
from aisre.slo.service import BackgroundSLOs, SLOService, lock_path
from aisre.store.sqlite import SQLiteStore
from aisre.telemetry.metrics import Metrics
from aisre.testing.server import free_port

from .alert_receiver import AlertReceiver
from .slo_helpers import HOUR, MINUTE, T0, fraud_traffic
from .test_slo_alertmanager import BINARY as ALERTMANAGER
from .test_slo_alertmanager import alertmanager  # noqa: F401 - the real Alertmanager fixture


def config(db: Path, slos: list[dict[str, Any]], receivers: list[dict[str, Any]] | None = None, **extra: Any) -> Any:
    doc = {"store": f"sqlite:///{db}", "slos": slos, "notifications": {"receivers": receivers or []}, **extra}
    return parse_config(yaml.safe_dump(doc))


def correctness(notify: list[str] | None = None, name: str = "fraud-correctness") -> dict[str, Any]:
    slo: dict[str, Any] = {"name": name, "model": "fraud", "objective": 0.99, "sli": {"kind": "correctness"}}
    if notify:
        slo["alerting"] = {"notify": notify}
    return slo


def samples(metrics: Metrics, name: str, **labels: str) -> list[float]:
    return [
        s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def test_wrong_predictions_page_fire_then_resolve_and_the_receiver_gets_both(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    end = fraud_traffic(db, hours_right=1, hours_wrong=1)
    with AlertReceiver() as receiver:
        cfg = config(db, [correctness(["pager"])], [{"name": "pager", "webhook": receiver.url}])
        metrics = Metrics()
        service = SLOService(cfg, SQLiteStore(db), ManualClock(end), metrics)
        try:
            (report,) = service.tick(end)
            assert report.alerts["page"] == "firing"
            firing = receiver.wait_for("firing")
            assert firing["labels"]["alertname"] == "FraudCorrectnessSLO"
            assert firing["labels"]["sloth_slo"] == "fraud-correctness"
            assert samples(
                metrics, "aisre_slo_alert_state", slo="fraud-correctness", severity="page", state="firing"
            ) == [1.0]
            assert samples(metrics, "aisre_slo_burn_rate", slo="fraud-correctness", window="1h") == [
                pytest.approx(100.0)
            ]
            assert samples(metrics, "aisre_slo_objective_ratio", slo="fraud-correctness") == [0.99]
            service.tick(end + 30 * MINUTE)  # still burning (its 1h window) or not: never a second "firing" page
            service.tick(end + 2 * HOUR)  # no traffic for 2 hours: the 5m window is empty, the page resolves
            resolved = receiver.wait_for("resolved")
            assert resolved["fingerprint"] == firing["fingerprint"]
            assert service.last_reports[0].alerts["page"] == "resolved"
            page = [s for s in receiver.statuses() if s[2] == "page"]
            assert page == [("firing", "FraudCorrectnessSLO", "page"), ("resolved", "FraudCorrectnessSLO", "page")]
        finally:
            service.close()


def test_closed_minutes_are_added_to_the_counter_once_and_late_labels_within_the_lookback_too(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    clock = ManualClock(T0 + 30)
    store_url = f"sqlite:///{db}"
    cfg = config(db, [correctness()])
    metrics = Metrics()
    service = SLOService(cfg, SQLiteStore(db), clock, metrics)
    with aisre.Monitor("fraud", "v1", store=store_url, clock=clock) as monitor:

        def predict(ts: float, right: bool, label: bool = True) -> str:
            rid = monitor.record({"x": 1}, 1, ts=ts)
            if label:
                monitor.flush()
                monitor.label(rid, 1 if right else 0, ts=ts)
            monitor.flush()
            return rid

        predict(T0 - 30, right=False)  # before the judge started: never exported
        service.tick(T0 + 30)  # the first tick: counting starts with the minute open now (T0 .. T0+60)
        for i in range(4):
            predict(T0 + 31 + i, right=i != 3)  # 3 right, 1 wrong in the open minute
        unlabelled = predict(T0 + 40, right=True, label=False)
        service.tick(T0 + 50)
        assert service.exporter.events("fraud-correctness") == (0.0, 0.0)  # the minute is still open
        service.tick(T0 + 61)
        assert service.exporter.events("fraud-correctness") == (3.0, 1.0)
        service.tick(T0 + 90)
        assert service.exporter.events("fraud-correctness") == (3.0, 1.0)  # never twice
        monitor.label(unlabelled, 0, ts=T0 + 95)  # a late label for the closed minute: wrong
        monitor.flush()
        service.tick(T0 + 100)
        assert service.exporter.events("fraud-correctness") == (3.0, 2.0)
        service.tick(T0 + 200)
        assert service.exporter.events("fraud-correctness") == (3.0, 2.0)
    assert samples(metrics, "aisre_slo_events_total", slo="fraud-correctness", outcome="bad") == [2.0]
    assert samples(metrics, "aisre_slo_events_total", slo="fraud-correctness", outcome="good") == [3.0]


def test_a_timeslice_is_exported_once_with_its_first_verdict(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    slo = {
        "name": "fraud-accuracy",
        "model": "fraud",
        "objective": 0.9,
        "timeslice": "5m",
        "sli": {"kind": "quality", "metric": "accuracy", "min": 0.9},
    }
    service = SLOService(config(db, [slo]), SQLiteStore(db), ManualClock(T0))
    with aisre.Monitor("fraud", "v1", store=f"sqlite:///{db}", clock=ManualClock(T0)) as monitor:
        service.tick(T0 + 10)
        wrong = [monitor.record({"x": i}, 1, ts=T0 + 20 + i) for i in range(4)]
        monitor.flush()
        monitor.label_many([(rid, 0) for rid in wrong], ts=T0 + 30)
        monitor.flush()
        service.tick(T0 + 5 * MINUTE + 1)
        assert service.exporter.events("fraud-accuracy") == (0.0, 1.0)  # the slice was bad
        right = [monitor.record({"x": i}, 1, ts=T0 + 100 + i) for i in range(40)]
        monitor.flush()
        monitor.label_many([(rid, 1) for rid in right], ts=T0 + 6 * MINUTE)  # now the slice would be good
        monitor.flush()
        service.tick(T0 + 7 * MINUTE)
        assert service.exporter.events("fraud-accuracy") == (0.0, 1.0)  # one slice, counted once


def test_an_slo_that_fails_is_counted_and_the_others_are_still_judged(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    end = fraud_traffic(db, hours_right=1, hours_wrong=0)
    availability = {"name": "fraud-availability", "model": "fraud", "objective": 0.999, "sli": {"kind": "availability"}}
    drift = {"name": "fraud-drift", "model": "fraud", "objective": 0.9, "sli": {"kind": "drift"}}
    cfg = config(db, [drift, availability])
    store = SQLiteStore(db)
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE signals")  # the drift SLO's query now fails inside SQLite
    metrics = Metrics()
    service = SLOService(cfg, store, ManualClock(end), metrics)
    reports = service.tick(end)
    assert [r.name for r in reports] == ["fraud-availability"]
    assert reports[0].sli == 1.0
    assert samples(metrics, "aisre_slo_evaluation_errors_total", slo="fraud-drift") == [1.0]
    assert samples(metrics, "aisre_slo_sli_ratio", slo="fraud-availability") == [1.0]


def test_a_receiver_that_is_down_is_retried_until_it_answers_and_never_blocks_a_tick(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    end = fraud_traffic(db, hours_right=1, hours_wrong=1)
    port = free_port()
    receiver_cfg = {"name": "pager", "webhook": f"http://127.0.0.1:{port}/alerts", "headers": {"X-Token": "s3cret"}}
    cfg = config(db, [correctness(["pager"])], [receiver_cfg])
    service = SLOService(cfg, SQLiteStore(db), ManualClock(end))
    try:
        started = time.monotonic()
        service.tick(end)  # fires; the delivery fails (connection refused) on the receiver's own thread
        assert time.monotonic() - started < 30  # wide: the point is the tick does not wait for retries
        stats = service.notifier.stats()["pager"]
        deadline = time.monotonic() + 30
        while stats.failed == 0:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert stats.sent == 0 and stats.pending == 1
        with AlertReceiver(port=port) as receiver:
            alert = receiver.wait_for("firing", timeout_s=90)  # back-off 1, 2, 4 ... s
            assert alert["labels"]["sloth_slo"] == "fraud-correctness"
            assert receiver.headers[0]["X-Token"] == "s3cret"
            assert service.notifier.drain(30)
            assert stats.sent == 1 and stats.pending == 0
    finally:
        service.close()


def test_one_process_per_store_judges_the_slos(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fraud_traffic(db, hours_right=1, hours_wrong=0)
    cfg = config(db, [correctness()], slo_evaluation={"interval": "1s"})
    store = SQLiteStore(db)
    first = BackgroundSLOs(SLOService(cfg, store), RunnerLock(lock_path(db)), retry_s=0.2).start()
    second = BackgroundSLOs(SLOService(cfg, store), RunnerLock(lock_path(db)), retry_s=0.2).start()
    try:
        deadline = time.monotonic() + 30
        while first.ticks + second.ticks < 3:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert (first.ticks == 0) != (second.ticks == 0), (first.ticks, second.ticks)
        holder, standby = (first, second) if first.ticks else (second, first)
        holder.stop()
        deadline = time.monotonic() + 30
        while standby.ticks == 0:  # the standby takes over once the lock is free
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize(
    ("notifications", "notify", "where", "says"),
    [
        ({"receivers": [{"name": "pager", "webhook": "http://x/"}]}, ["pagr"], "slos.0.alerting.notify.0", "'pagr'"),
        ({}, ["pager"], "slos.0.alerting.notify.0", "none are configured"),
        ({"receivers": [{"name": "pager"}]}, [], "notifications.receivers.0", "exactly one of webhook"),
        (
            {"receivers": [{"name": "p", "webhook": "http://a/", "alertmanager": "http://b/"}]},
            [],
            "notifications.receivers.0",
            "exactly one of webhook",
        ),
        ({"receivers": [{"name": "p", "webhook": "ftp://a/"}]}, [], "notifications.receivers.0.webhook", "http(s)"),
        (
            {"receivers": [{"name": "p", "webhook": "http://a/"}, {"name": "p", "alertmanager": "http://b/"}]},
            [],
            "notifications.receivers.1.name",
            "another receiver",
        ),
    ],
)
def test_bad_notifications_are_refused_by_check_config_at_their_key(
    tmp_path: Path, notifications: dict, notify: list[str], where: str, says: str
) -> None:
    slo = correctness(notify)
    doc = {"store": f"sqlite:///{tmp_path / 'a.db'}", "slos": [slo], "notifications": notifications}
    (tmp_path / "aisre.yaml").write_text(yaml.safe_dump(doc))
    out = subprocess.run(
        [sys.executable, "-m", "aisre", "check-config", str(tmp_path / "aisre.yaml")], capture_output=True, text=True
    )
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert where in text and says in text, text
    assert "Traceback" not in text


def test_the_evaluation_interval_is_checked() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config("slo_evaluation: {interval: 0.1s}\n")
    assert "slo_evaluation.interval" in str(err.value) and "between 1s and 1h" in str(err.value)


def test_watch_once_judges_a_config_with_only_slos(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    fraud_traffic(db, hours_right=1, hours_wrong=0)
    doc = {"store": f"sqlite:///{db}", "slos": [correctness()]}
    (tmp_path / "aisre.yaml").write_text(yaml.safe_dump(doc))
    out = subprocess.run(
        [sys.executable, "-m", "aisre", "watch", "--once", "-c", str(tmp_path / "aisre.yaml")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SLO fraud-correctness:" in out.stdout


@pytest.mark.skipif(ALERTMANAGER is None, reason="prometheus-alertmanager is not installed (apt)")
def test_an_alertmanager_receiver_gets_the_page_and_routes_it_to_its_own_webhook(
    tmp_path: Path,
    alertmanager: tuple[str, Any],  # noqa: F811 - the fixture imported above
) -> None:
    url, handler = alertmanager
    db = tmp_path / "a.db"
    end = fraud_traffic(db, hours_right=1, hours_wrong=1)
    cfg = config(db, [correctness(["am"])], [{"name": "am", "alertmanager": url}])
    service = SLOService(cfg, SQLiteStore(db), ManualClock(end))
    try:
        service.tick(end)
        deadline = time.monotonic() + 60
        while not handler.bodies:
            assert time.monotonic() < deadline, service.notifier.stats()["am"]
            time.sleep(0.1)
        alert = next(a for a in handler.bodies[0]["alerts"] if a["labels"]["sloth_severity"] == "page")
        assert alert["status"] == "firing"
        assert alert["labels"]["alertname"] == "FraudCorrectnessSLO"
    finally:
        service.close()


def test_a_firing_alert_is_sent_again_every_repeat_interval_and_resolved_only_when_wanted(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    end = fraud_traffic(db, hours_right=1, hours_wrong=1)
    with AlertReceiver() as receiver:
        receivers = [{"name": "pager", "webhook": receiver.url, "repeat_interval": "1m", "send_resolved": False}]
        service = SLOService(config(db, [correctness(["pager"])], receivers), SQLiteStore(db), ManualClock(end))
        try:
            for at in (end, end + 30, end + 61, end + 2 * HOUR):  # fires; quiet; repeated; resolved (not sent)
                service.tick(at)
            assert service.notifier.drain(30)
            assert [s for s, _, sev in receiver.statuses() if sev == "page"] == ["firing", "firing"]
            assert service.last_reports[0].alerts["page"] == "resolved"
        finally:
            service.close()


def test_a_delivery_is_dropped_and_counted_after_give_up_after(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    end = fraud_traffic(db, hours_right=1, hours_wrong=1)
    receivers = [{"name": "pager", "webhook": f"http://127.0.0.1:{free_port()}/", "give_up_after": "2s"}]
    metrics = Metrics()
    service = SLOService(config(db, [correctness(["pager"])], receivers), SQLiteStore(db), ManualClock(end), metrics)
    try:
        service.tick(end)
        assert service.notifier.drain(60)  # retried at 1 s, 2 s ... then given up
        assert samples(metrics, "aisre_slo_notifications_total", receiver="pager", outcome="dropped") == [1.0]
        assert samples(metrics, "aisre_slo_notifications_total", receiver="pager", outcome="sent") == [0.0]
        assert samples(metrics, "aisre_slo_notifications_pending", receiver="pager") == [0.0]
    finally:
        service.close()
    assert samples(metrics, "aisre_slo_notifications_pending", receiver="pager") == []  # left /metrics on close


def test_check_config_accepts_receivers_named_by_slos_and_counts_them(tmp_path: Path) -> None:
    receivers = [{"name": "pager", "webhook": "http://127.0.0.1:9/"}, {"name": "am", "alertmanager": "http://am:9093"}]
    doc = {
        "store": f"sqlite:///{tmp_path / 'a.db'}",
        "slos": [correctness(["pager", "am"])],
        "notifications": {"receivers": receivers},
    }
    (tmp_path / "aisre.yaml").write_text(yaml.safe_dump(doc))
    out = subprocess.run(
        [sys.executable, "-m", "aisre", "check-config", str(tmp_path / "aisre.yaml")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 alert receivers" in out.stdout


def test_watch_judges_slos_continuously_and_serves_them_on_its_metrics_port(tmp_path: Path) -> None:
    import signal

    import httpx

    db = tmp_path / "a.db"
    fraud_traffic(db, hours_right=1, hours_wrong=0)
    port = free_port()
    doc = {
        "store": f"sqlite:///{db}",
        "slos": [correctness()],
        "slo_evaluation": {"interval": "1s"},
        "telemetry": {"metrics": {"port": port}},
    }
    (tmp_path / "aisre.yaml").write_text(yaml.safe_dump(doc))
    cmd = [sys.executable, "-m", "aisre", "watch", "-c", str(tmp_path / "aisre.yaml")]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        text = ""
        while 'aisre_slo_objective_ratio{slo="fraud-correctness"} 0.99' not in text:
            assert process.poll() is None and time.monotonic() < deadline, process.communicate(timeout=10)
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert 'aisre_slo_events_total{outcome="bad",slo="fraud-correctness"}' in text
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert b"1 SLO" in out and b"stopped" in out
    assert b"Traceback" not in err
