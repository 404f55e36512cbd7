"""The per-minute SLO buckets kept by the store equal a full count of the records, whatever the order of writes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aisre.config.slo import SLOConfig
from aisre.records import InferenceRecord, Label, Status
from aisre.slo import events
from aisre.slo.events import Window, raw_event_series, sli_series
from aisre.slo.quality_slices import quality_slices_raw
from aisre.store import SQLiteStore, buckets

T0 = 1_767_225_600.0
SPAN = 3 * 3600.0


def slo(name: str, sli: dict[str, Any], **extra: Any) -> SLOConfig:
    return SLOConfig(
        name=name, model=extra.pop("model", "fraud"), objective=extra.pop("objective", 0.99), sli=sli, **extra
    )


EVENT_SLOS = [
    slo("availability", {"kind": "availability"}),
    slo("availability-v2", {"kind": "availability"}, version="v2"),
    slo("latency", {"kind": "latency", "threshold_s": 0.1}),
    slo("ttft", {"kind": "ttft", "threshold_s": 0.05}),
    slo("latency-critical", {"kind": "latency", "threshold_s": 0.1, "where": {"tags.use_case": "critical"}}),
    slo("correctness", {"kind": "correctness"}),
    slo("correctness-critical", {"kind": "correctness", "where": {"tags.use_case": "critical"}}),
]


def records(rng: np.random.Generator, n: int, start: int = 0) -> list[InferenceRecord]:
    out = []
    for i in range(start, start + n):
        status = Status.OK if rng.random() > 0.05 else rng.choice([Status.ERROR, Status.CANCELLED])
        body: dict[str, Any] = {}
        out.append(
            InferenceRecord(
                model="fraud" if rng.random() > 0.1 else "other",
                version="v1" if rng.random() > 0.3 else "v2",
                inputs={"amount": int(rng.integers(0, 100))},
                prediction=[0, 1, True, 1.0, "1", None, "yes"][int(rng.integers(0, 7))],
                status=status,
                latency_s=None if rng.random() < 0.02 else float(rng.exponential(0.08)),
                ttft_s=None if rng.random() < 0.3 else float(rng.exponential(0.04)),
                tags={"use_case": "critical"} if rng.random() < 0.3 else {},
                ts=T0 + float(rng.uniform(0, SPAN)),
                id=f"r{i}",
                **body,
            )
        )
    return out


def labels(rng: np.random.Generator, ids: list[str]) -> list[Label]:
    values = [0, 1, False, True, 1.0, "1", None, "yes", 2]
    return [Label(rid, values[int(rng.integers(0, len(values)))], T0 + SPAN) for rid in ids]


def assert_buckets_equal_raw(store: SQLiteStore, slos: list[SLOConfig]) -> None:
    for s in slos:
        bucketed = sli_series(s, store, T0 + SPAN + 60, SPAN + 120)
        raw = raw_event_series(s, store, T0 + SPAN + 60, SPAN + 120)
        assert bucketed.total.sum() > 0, s.name
        np.testing.assert_array_equal(bucketed.good, raw.good, err_msg=s.name)
        np.testing.assert_array_equal(bucketed.total, raw.total, err_msg=s.name)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_buckets_equal_a_full_count_whenever_the_slos_were_registered(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    store = SQLiteStore(tmp_path / "a.db")
    early = EVENT_SLOS[: len(EVENT_SLOS) // 2]
    for s in early:  # registered before any record: maintained by the writes alone
        sli_series(s, store, T0, 3600)
    written: list[str] = []
    for batch in range(6):
        recs = records(rng, int(rng.integers(50, 400)), start=len(written))
        store.write_batch(recs, durable=bool(batch % 2))
        written += [r.id for r in recs]
        # labels for a random subset, some of them replacing earlier labels with other values
        chosen = list(rng.choice(written, size=min(len(written), 150), replace=False))
        store.add_labels(labels(rng, chosen + chosen[:5]))
    store.write_batch(records(rng, 50, start=0))  # duplicate ids: ignored by the store, not counted twice
    assert_buckets_equal_raw(store, EVENT_SLOS)  # the late ones are built from the records here
    store.write_batch(records(rng, 300, start=len(written)))
    store.add_labels(labels(rng, written[:200]))
    assert_buckets_equal_raw(store, EVENT_SLOS)


def test_a_second_process_writing_without_the_slos_is_caught_up(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    evaluator, other = SQLiteStore(tmp_path / "a.db"), SQLiteStore(tmp_path / "a.db")
    sli_series(EVENT_SLOS[0], evaluator, T0, 3600)
    other.write_batch(records(rng, 500))  # another connection (as another process): sees the spec in the file
    other.add_labels(labels(rng, [f"r{i}" for i in range(100)]))
    conn = other._conn()
    (hwm,) = conn.execute("SELECT hwm FROM slo_bucket_specs WHERE name = 'availability'").fetchone()
    assert hwm == conn.execute("SELECT max(seq) FROM inferences").fetchone()[0]
    assert_buckets_equal_raw(evaluator, EVENT_SLOS)


def test_a_changed_slo_rebuilds_its_buckets_and_a_stale_one_is_dropped(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    store = SQLiteStore(tmp_path / "a.db")
    store.write_batch(records(rng, 800))
    old = slo("latency", {"kind": "latency", "threshold_s": 0.1})
    new = slo("latency", {"kind": "latency", "threshold_s": 0.02})
    before = sli_series(old, store, T0 + SPAN + 60, SPAN + 120)
    after = sli_series(new, store, T0 + SPAN + 60, SPAN + 120)
    assert after.good.sum() < before.good.sum()
    np.testing.assert_array_equal(after.good, raw_event_series(new, store, T0 + SPAN + 60, SPAN + 120).good)
    conn = store._conn()
    buckets.ensure(conn, events.event_spec(EVENT_SLOS[0]), now=time.time() + 2 * buckets.STALE_AFTER_S)
    names = [r[0] for r in conn.execute("SELECT DISTINCT name FROM slo_buckets")]
    assert names == ["availability"]  # 'latency' was last used long before that `now`


def percentile_raw(s: SLOConfig, store: SQLiteStore, w: Window) -> tuple[np.ndarray, np.ndarray]:
    return events._percentile_slices_raw(s, store, w)  # noqa: SLF001 - the reference


@pytest.mark.parametrize("p", [0.5, 0.9, 0.95, 0.99, 0.999])
def test_a_percentile_judged_from_counts_equals_numpy_inverted_cdf_on_the_values(tmp_path: Path, p: float) -> None:
    rng = np.random.default_rng(int(p * 1000))
    store = SQLiteStore(tmp_path / "a.db")
    recs = []
    for minute in range(300):
        fast = rng.uniform(0.8, 1.0) if minute // 5 % 2 else rng.uniform(0, 1)  # some slices good, some not
        for j in range(int(rng.integers(1, 40))):  # slice sizes vary, so n*p is sometimes a whole number
            # few distinct values, so many ties sit on the threshold
            latency = float(rng.choice([0.05, 0.1]) if rng.random() < fast else rng.choice([0.2, 0.3, 0.5]))
            recs.append(
                InferenceRecord(
                    model="fraud",
                    version="v1",
                    inputs={},
                    prediction=1,
                    latency_s=latency,
                    ts=T0 + minute * 60.0 + j,
                    id=f"p{minute}-{j}",
                )
            )
    store.write_batch(recs)
    judged = []
    for threshold in (0.1, 0.2, 0.3):
        s = slo("p", {"kind": "latency", "percentile": p, "threshold_s": threshold}, timeslice="5m")
        w = Window.ending(T0 + 300 * 60.0, 300 * 60.0, s.timeslice_s)
        good, total = events._slices(s, store, w)  # noqa: SLF001
        raw_good, raw_total = percentile_raw(s, store, w)
        np.testing.assert_array_equal(total, raw_total)
        np.testing.assert_array_equal(good, raw_good)
        judged.append((good.sum(), total.sum()))
    assert any(0 < g < t for g, t in judged)


def test_accuracy_per_slice_from_buckets_equals_performance_on_the_records(tmp_path: Path) -> None:
    from aisre.monitor.performance import performance

    rng = np.random.default_rng(11)
    store = SQLiteStore(tmp_path / "a.db")
    recs = []
    for i in range(3000):
        recs.append(
            InferenceRecord(
                model="fraud",
                version="v1",
                inputs={},
                prediction=int(rng.integers(0, 3)) if i % 600 < 300 else 1,
                ts=T0 + i * 3.0,
                id=f"a{i}",
            )
        )
    store.write_batch(recs)
    truth = {r.id: [0, 1, 2, 1.0, True][int(rng.integers(0, 5))] for r in recs if rng.random() < 0.7}  # 1 is common
    store.add_labels([Label(rid, v, T0) for rid, v in truth.items()])
    s = slo("acc", {"kind": "quality", "metric": "accuracy", "min": 0.4}, timeslice="10m")
    w = Window.ending(T0 + 9000, 9000, s.timeslice_s)
    good, total = events._slices(s, store, w)  # noqa: SLF001
    for k in range(w.n):
        lo, hi = w.start_s + k * w.step_s, w.start_s + (k + 1) * w.step_s
        rows = [r for r in recs if lo <= r.ts < hi and r.id in truth]
        if not rows:
            assert total[k] == 0
            continue
        value = (
            performance(
                [truth[r.id] for r in rows],
                [r.prediction for r in rows],
                task="multiclass",
                metrics=["accuracy"],
                n_bootstrap=1,
            )
            .metrics["accuracy"]
            .value
        )
        assert total[k] == 1
        assert good[k] == float(value >= 0.4)
    assert 0 < good.sum() < total.sum()


@pytest.mark.parametrize("metric", ["precision", "recall", "f1", "mae", "mse", "rmse", "mape"])
def test_quality_per_slice_from_sums_equals_performance_on_the_records(tmp_path: Path, metric: str) -> None:
    rng = np.random.default_rng(len(metric))
    store = SQLiteStore(tmp_path / "a.db")
    regression = metric in ("mae", "mse", "rmse", "mape")
    recs, values = [], []
    for i in range(4000):
        minute = i // 10
        if regression:
            truth: Any = float(rng.normal(100, 20))
            pred: Any = truth + float(rng.normal(0, 5 + minute % 20)) if minute % 37 else True  # a bool: not summed
            if i % 97 == 0:
                truth = 0  # |e| / max(|y|, eps)
        else:
            truth = int(rng.random() < 0.3) if minute % 41 else 2  # a third class in a few slices
            pred = truth if rng.random() < (0.6 + 0.4 * (minute % 7) / 7) else 1 - int(truth == 1)
            if i % 53 == 0:
                pred = True  # canonical '1'
        recs.append(
            InferenceRecord(model="fraud", version="v1", inputs={}, prediction=pred, ts=T0 + i * 6.0, id=f"q{i}")
        )
        values.append(truth)
    store.write_batch(recs)
    sli = {"kind": "quality", "metric": metric}
    sli.update(
        {"max": 8.0 if metric in ("mae", "rmse") else 80.0 if metric == "mse" else 0.08} if regression else {"min": 0.8}
    )
    s = slo("q", sli, timeslice="5m")
    w = Window.ending(T0 + 24_000, 24_000, s.timeslice_s)
    events.sli_series(s, store, T0 + 24_000, 24_000)  # registers the spec before the labels: kept as they arrive
    store.add_labels([Label(r.id, v, T0) for r, v in zip(recs, values, strict=True) if rng.random() < 0.8])
    store.add_labels([Label(r.id, v, T0) for r, v in zip(recs[:300], values[:300], strict=True)])  # replaced
    good, total = events._slices(s, store, w)  # noqa: SLF001
    raw_good, raw_total = quality_slices_raw(s, store, w)  # performance() per slice
    np.testing.assert_array_equal(total, raw_total)
    np.testing.assert_array_equal(good, raw_good)
    assert 0 < good.sum() < total.sum()


@pytest.mark.parametrize("form", ["number", "list", "mapping"])
def test_roc_auc_slices_rank_the_stored_scores_as_scikit_learn(tmp_path: Path, form: str) -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(5)
    store = SQLiteStore(tmp_path / "a.db")
    recs, truth = [], []
    for i in range(1200):
        y = int(rng.random() < 0.4)
        p1 = float(np.clip(rng.normal(0.35 + (0.3 if i < 600 else 0.05) * y, 0.15), 0, 1))  # worse in the 2nd hour
        scores: Any = {"number": p1, "list": [1 - p1, p1], "mapping": {"0": 1 - p1, "1": p1}}[form]
        recs.append(
            InferenceRecord(
                model="fraud",
                version="v1",
                inputs={},
                prediction=int(p1 >= 0.5),
                scores=scores,
                ts=T0 + i * 6.0,
                id=f"s{i}",
            )
        )
        truth.append(y)
    store.write_batch(recs)
    store.add_labels([Label(r.id, y, T0) for r, y in zip(recs, truth, strict=True)])
    s = slo("auc", {"kind": "quality", "metric": "roc_auc", "min": 0.75}, timeslice="1h")
    w = Window.ending(T0 + 7200, 7200, s.timeslice_s)
    good, total = events._slices(s, store, w)  # noqa: SLF001
    expected = [
        roc_auc_score(
            truth[k * 600 : (k + 1) * 600],
            [
                float(
                    np.clip(r.scores if form == "number" else (r.scores[1] if form == "list" else r.scores["1"]), 0, 1)
                )
                for r in recs[k * 600 : (k + 1) * 600]
            ],
        )
        for k in range(2)
    ]
    assert expected[0] >= 0.75 > expected[1]
    assert list(total) == [1.0, 1.0] and list(good) == [1.0, 0.0]


def test_a_roc_auc_slo_without_stored_scores_says_so(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    recs = [
        InferenceRecord(model="fraud", version="v1", inputs={}, prediction=i % 2, ts=T0 + i, id=f"n{i}")
        for i in range(50)
    ]
    store.write_batch(recs)
    store.add_labels([Label(r.id, 1, T0) for r in recs])
    s = slo("auc", {"kind": "quality", "metric": "roc_auc", "min": 0.75}, timeslice="1h")
    with pytest.raises(events.NotEvaluable, match="scores"):
        events._slices(s, store, Window.ending(T0 + 3600, 3600, s.timeslice_s))  # noqa: SLF001
