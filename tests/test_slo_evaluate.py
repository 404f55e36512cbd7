"""The embedded evaluator on a real SQLite store: degradation counted as downtime, timeslices, filters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import aisre
from aisre.clock import ManualClock
from aisre.config.slo import SLOConfig
from aisre.records import Signal
from aisre.slo.alerts import AlertEvaluator
from aisre.slo.evaluate import evaluate, history
from aisre.slo.events import sli_series, where_clause
from aisre.store import SQLiteStore
from tests.slo_helpers import HOUR, T0, fraud_traffic


def slo(name: str, sli: dict[str, Any], objective: float = 0.999, **extra: Any) -> SLOConfig:
    return SLOConfig(name=name, model=extra.pop("model", "fraud"), objective=objective, sli=sli, **extra)


AVAILABILITY = slo("fraud-availability", {"kind": "availability"})
LATENCY = slo("fraud-latency", {"kind": "latency", "threshold_s": 0.2})
CORRECTNESS = slo("fraud-correctness", {"kind": "correctness"}, objective=0.99)


def test_wrong_predictions_burn_the_budget_and_page_while_requests_stay_healthy(db_path: Path) -> None:
    end = fraud_traffic(db_path, hours_right=3, hours_wrong=1)
    store = SQLiteStore(db_path)
    availability, latency, correctness = evaluate([AVAILABILITY, LATENCY, CORRECTNESS], store, ManualClock(end))

    for healthy in (availability, latency):
        assert healthy.sli == 1.0
        assert healthy.budget is not None and healthy.budget.remaining == 1.0
        assert healthy.alerts == {"page": "inactive", "ticket": "inactive"}
    # One wrong hour in four: SLI 0.75, error ratio 0.25 = 25x the 1% budget over the period.
    assert correctness.budget is not None
    assert correctness.budget.total == 4 * 60 * 10
    assert correctness.sli == pytest.approx(0.75)
    assert correctness.budget.remaining == pytest.approx(1 - 25)
    assert correctness.burn_rates["1h"] == pytest.approx(100)
    assert correctness.burn_rates["5m"] == pytest.approx(100)
    assert correctness.alerts["page"] == "firing"


def test_correctness_before_the_labels_turn_wrong_is_within_budget(db_path: Path) -> None:
    end = fraud_traffic(db_path, hours_right=3, hours_wrong=1)
    (report,) = evaluate([CORRECTNESS], SQLiteStore(db_path), ManualClock(end - HOUR))
    assert report.sli == 1.0
    assert report.alerts["page"] == "inactive"


def test_alert_state_carries_across_ticks_and_resolves(db_path: Path) -> None:
    end = fraud_traffic(db_path, hours_right=3, hours_wrong=1)
    store, clock = SQLiteStore(db_path), ManualClock(end)
    evaluators: dict[str, AlertEvaluator] = {}
    assert evaluate([CORRECTNESS], store, clock, evaluators)[0].alerts["page"] == "firing"
    clock.advance(2 * HOUR)  # no traffic since: the short window holds no events, so no burn
    assert evaluate([CORRECTNESS], store, clock, evaluators)[0].alerts["page"] == "resolved"


def test_cancelled_calls_are_not_counted_and_errors_are_bad(db_path: Path) -> None:
    clock = ManualClock(T0)
    with aisre.Monitor("fraud", "v1", store=f"sqlite:///{db_path}", clock=clock) as monitor:
        for i in range(10):
            status = ["ok", "ok", "error", "cancelled"][i % 4]
            monitor.record({"i": i}, 1, latency_s=0.05 if i % 2 else None, status=status, ts=T0 + i)
    series = sli_series(AVAILABILITY, SQLiteStore(db_path), T0 + HOUR)
    good, total = series.counts(T0 + HOUR, HOUR)
    assert (good, total) == (6.0, 8.0)  # 6 ok, 2 errors; the 2 cancelled are left out
    good, total = sli_series(LATENCY, SQLiteStore(db_path), T0 + HOUR).counts(T0 + HOUR, HOUR)
    assert (good, total) == (5.0, 5.0)  # records without a latency are not counted


def test_p99_latency_timeslices_judge_each_slice_by_its_nearest_rank_percentile(db_path: Path) -> None:
    p99 = slo("chat-p99", {"kind": "latency", "percentile": 0.99, "threshold_s": 0.5}, objective=0.99, model="chat")
    clock = ManualClock(T0)
    with aisre.Monitor("chat", "v1", store=f"sqlite:///{db_path}", clock=clock) as monitor:
        for k in range(12):  # twelve 5-minute slices of 100 requests
            slow = 0 if k < 4 else (1 if k < 8 else 2)  # 1 slow in 100 keeps p99 fast; 2 make it slow
            for i in range(100):
                monitor.record(None, "ok", latency_s=1.0 if i < slow else 0.1, ts=T0 + k * 300 + i)
    (report,) = evaluate([p99], SQLiteStore(db_path), ManualClock(T0 + HOUR))
    assert report.budgeting == "timeslices"
    assert report.budget is not None and report.budget.total == 12
    assert report.sli == pytest.approx(8 / 12)
    assert report.burn_rates["5m"] == pytest.approx(100)  # the last slice is bad: ratio 1 / budget 0.01


def test_where_keeps_only_the_tagged_records(db_path: Path) -> None:
    fraud_traffic(db_path, hours_right=0, hours_wrong=1, tags={"use_case": "critical"})
    clock = ManualClock(T0)
    with aisre.Monitor("fraud", "v1", store=f"sqlite:///{db_path}", clock=clock) as monitor:
        ids = [monitor.record({"i": i}, 1, latency_s=0.05, ts=T0 + i, tags={"use_case": "batch"}) for i in range(50)]
        monitor.flush()
        monitor.label_many([(rid, 1) for rid in ids], ts=T0 + HOUR)
    critical = slo(
        "fraud-accuracy-critical",
        {"kind": "quality", "metric": "accuracy", "min": 0.95, "where": {"tags.use_case": "critical"}},
        objective=0.99,
        timeslice="1h",
    )
    batch = slo(
        "fraud-accuracy-batch",
        {"kind": "quality", "metric": "accuracy", "min": 0.95, "where": {"tags.use_case": "batch"}},
        objective=0.99,
        timeslice="1h",
    )
    store = SQLiteStore(db_path)
    crit, good = evaluate([critical, batch], store, ManualClock(T0 + HOUR))
    assert crit.sli == 0.0  # the critical hour was all wrong
    assert good.sli == 1.0  # the batch records alone are all right
    assert crit.budget is not None and good.budget is not None
    assert crit.budget.total == good.budget.total == 1


def test_a_where_key_outside_tags_and_inputs_is_reported_not_raised(db_path: Path) -> None:
    bad = slo("x", {"kind": "availability", "where": {"status": "ok"}})
    with pytest.raises(ValueError, match="tags.NAME or inputs.NAME"):
        where_clause(bad)
    (report,) = evaluate([bad], SQLiteStore(db_path), ManualClock(T0))
    assert report.problem is not None and "status" in report.problem
    assert report.sli is None


def test_an_empty_store_gives_no_sli_and_no_alert(db_path: Path) -> None:
    reports = evaluate([AVAILABILITY, LATENCY, CORRECTNESS], SQLiteStore(db_path), ManualClock(T0))
    for report in reports:
        assert report.problem is None
        assert report.sli is None
        assert report.budget is not None and report.budget.remaining == 1.0
        assert set(report.alerts.values()) == {"inactive"}


def test_freshness_and_fairness_judge_nothing_before_any_record_or_mark(db_path: Path) -> None:
    fresh = slo("fresh", {"kind": "freshness", "max_age": "24h"}, objective=0.99, timeslice="1h")
    fair = slo(
        "fair",
        {"kind": "fairness", "metric": "demographic_parity_difference", "sensitive": "sex", "max": 0.1},
        objective=0.99,
    )
    for report in evaluate([fresh, fair], SQLiteStore(db_path), ManualClock(T0)):
        assert report.problem is None and report.sli is None  # see tests/test_slo_window_slis.py
        assert report.budget is not None and report.budget.total == 0


def test_drift_slices_are_bad_where_a_breached_drift_signal_covers_them(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    signals = [
        Signal("fraud", "v1", "dataset_drift", float(k >= 3), 0.5, k >= 3, {}, T0 + k * HOUR, T0 + (k + 1) * HOUR)
        for k in range(4)  # four hourly windows, the last one drifted
    ]
    store.write_signals(signals, T0 + 4 * HOUR)
    drift = slo("fraud-drift", {"kind": "drift"}, objective=0.9, timeslice="1h")
    (report,) = evaluate([drift], store, ManualClock(T0 + 6 * HOUR))
    assert report.budget is not None
    assert report.budget.total == 4  # the two hours no signal covers are not counted
    assert report.sli == pytest.approx(3 / 4)


def test_a_window_checked_again_is_judged_by_its_newest_signal(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    hour = (T0, T0 + HOUR)
    quality = slo("acc", {"kind": "estimated_quality", "metric": "accuracy", "min": 0.9}, objective=0.5, timeslice="1h")
    store.write_signals([Signal("fraud", "v1", "estimated_accuracy", 0.8, 0.9, True, {}, *hour)], T0 + HOUR)
    (before,) = evaluate([quality], store, ManualClock(T0 + 2 * HOUR))
    store.write_signals([Signal("fraud", "v1", "estimated_accuracy", 0.95, 0.9, False, {}, *hour)], T0 + 2 * HOUR)
    (after,) = evaluate([quality], store, ManualClock(T0 + 2 * HOUR))
    assert (before.sli, after.sli) == (0.0, 1.0)


def test_history_only_falls_while_only_bad_events_happen(db_path: Path) -> None:
    end = fraud_traffic(db_path, hours_right=0, hours_wrong=3)
    short = slo("c", {"kind": "correctness"}, objective=0.99, period="3d")
    points = history(short, SQLiteStore(db_path), end, HOUR)
    values = [v if v is not None else 1.0 for _, v in points]
    assert values == sorted(values, reverse=True)
    assert values[0] == 1.0 and values[-1] == pytest.approx(1 - 100)
    assert len(points) == 3 * 24 + 1
    assert points[-1][0] == end and points[1][0] - points[0][0] == HOUR
    assert [v for _, v in points].count(None) == 3 * 24 + 1 - 3  # no ratio before the first complete hour


def test_estimated_accuracy_and_llm_rates_judge_slices_by_their_own_bounds(db_path: Path) -> None:
    store = SQLiteStore(db_path)
    hour = [(T0 + k * HOUR, T0 + (k + 1) * HOUR) for k in range(3)]
    store.write_signals(
        [
            Signal("fraud", "v1", "estimated_accuracy", v, 0.9, False, {}, *hour[k])
            for k, v in enumerate([0.97, 0.8, 0.96])
        ]
        + [
            Signal("chat", "v1", "llm_refusal_rate", v, 0.05, False, {}, *hour[k])
            for k, v in enumerate([0.01, 0.02, 0.2])
        ],
        T0 + 3 * HOUR,
    )
    estimated = slo("est", {"kind": "estimated_quality", "metric": "accuracy", "min": 0.95}, 0.9, timeslice="1h")
    refusals = slo(
        "refusals", {"kind": "llm_quality", "signal": "llm_refusal_rate", "max": 0.1}, 0.9, model="chat", timeslice="1h"
    )
    est, llm = evaluate([estimated, refusals], store, ManualClock(T0 + 3 * HOUR))
    assert est.sli == pytest.approx(2 / 3)  # the breached flag is the producer's; the SLO's min decides
    assert llm.sli == pytest.approx(2 / 3)


def test_an_exhausted_budget_freezes_promotions_only_when_its_policy_says_so(db_path: Path) -> None:
    from aisre.slo import promotions_frozen

    end = fraud_traffic(db_path, hours_right=0, hours_wrong=2)  # every prediction wrong: budget spent
    store = SQLiteStore(db_path)
    freeze = {"freeze_promotions_when_exhausted": True}
    frozen = slo("frozen", {"kind": "correctness"}, objective=0.99, policy=freeze)
    on_v2 = slo("frozen-v2", {"kind": "correctness"}, objective=0.99, policy=freeze, version="v2")
    plain, strict, other_version = evaluate([CORRECTNESS, frozen, on_v2], store, ManualClock(end))
    assert plain.budget is not None and plain.budget.exhausted and not plain.freeze_promotions
    assert strict.freeze_promotions and strict.to_dict()["freeze_promotions"] is True
    assert not other_version.freeze_promotions  # v2 has no records: nothing judged, nothing frozen
    reports = [plain, strict, other_version]
    assert promotions_frozen(reports, "fraud", "v1") == ["frozen"]
    assert promotions_frozen(reports, "fraud") == ["frozen"]
    assert promotions_frozen(reports, "other-model") == []
