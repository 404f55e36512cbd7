"""SLO buckets and the dashboard's traffic rollup on PostgreSQL equal SQLite's on the same writes and relabels.

The same random batches (duplicates included) and label replacements go to a SQLiteStore and a PostgresStore
(a real PostgreSQL 15: tests/postgres_helpers.py); the per-minute buckets, the embedded evaluator's reports and
the traffic rollup (as the dashboard reads it) must be equal, and PostgreSQL's buckets equal a full count of
its own records. Concurrent writers in several processes must not make a `seq` mark skip a row.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aisre.clock import ManualClock
from aisre.config.slo import SLOConfig
from aisre.dashboard.params import TimeRange
from aisre.dashboard.traffic import last_window, traffic_series
from aisre.records import InferenceRecord, Label
from aisre.slo import evaluate, events
from aisre.slo.events import Window, raw_event_series, sli_series
from aisre.slo.quality_slices import quality_slices_raw
from aisre.store import SQLiteStore, rollups
from aisre.store.postgres import PostgresStore
from aisre.store.postgres_conn import PgConnection
from tests.postgres_helpers import pg_server, pg_url  # noqa: F401 - fixtures
from tests.test_slo_buckets import EVENT_SLOS, SPAN, T0, labels, records, slo

END = T0 + SPAN + 60
MORE_SLOS = [
    *EVENT_SLOS,
    slo("tpot", {"kind": "tpot", "threshold_s": 0.02}),
    slo("latency-amount", {"kind": "latency", "threshold_s": 0.1, "where": {"inputs.amount": 7}}),
    slo("availability-slices", {"kind": "availability"}, timeslice="5m", objective=0.9),
    slo("latency-p90", {"kind": "latency", "percentile": 0.9, "threshold_s": 0.15}, timeslice="5m"),
    slo("accuracy", {"kind": "quality", "metric": "accuracy", "min": 0.3}, timeslice="10m"),
    slo("precision", {"kind": "quality", "metric": "precision", "min": 0.3}, timeslice="10m"),
]


def same_writes(stores: list[Any], seed: int, early: list[SLOConfig]) -> None:
    """Random batches and label replacements, the same on every store; `early` SLOs registered first."""
    rng = np.random.default_rng(seed)
    for store in stores:
        for s in early:
            sli_series(s, store, T0, 3600)
    written: list[str] = []
    for batch in range(6):
        recs = records(rng, int(rng.integers(50, 400)), start=len(written))
        for r in recs[::7]:
            object.__setattr__(r, "tpot_s", float(rng.exponential(0.02)))
        chosen = list(rng.choice([*written, *(r.id for r in recs)], size=150, replace=False))
        labelled = labels(rng, chosen + chosen[:5])
        for store in stores:
            store.write_batch(recs, durable=bool(batch % 2))
            store.add_labels(labelled)
        written += [r.id for r in recs]
    dup = records(rng, 50, start=0)  # ids already stored: neither store counts them again
    late = records(rng, 300, start=len(written))
    relabelled = labels(rng, written[:200])
    for store in stores:
        store.write_batch(dup)
        store.write_batch(late)
        store.add_labels(relabelled)


@pytest.fixture
def both(tmp_path: Path, pg_url: str) -> Any:  # noqa: F811
    lite, pg = SQLiteStore(tmp_path / "a.db"), PostgresStore(pg_url)
    yield lite, pg
    lite.close()
    pg.close()


@pytest.mark.parametrize("seed", [0, 1])
def test_buckets_and_slo_reports_are_equal_on_sqlite_and_postgresql(both: Any, seed: int) -> None:
    lite, pg = both
    same_writes([lite, pg], seed, MORE_SLOS[::2])
    for s in MORE_SLOS:
        if s.budgeting_mode == "events":
            a, b = sli_series(s, lite, END, SPAN + 120), sli_series(s, pg, END, SPAN + 120)
            assert a.total.sum() > 0, s.name
            np.testing.assert_array_equal(a.good, b.good, err_msg=s.name)
            np.testing.assert_array_equal(a.total, b.total, err_msg=s.name)
            raw = raw_event_series(s, pg, END, SPAN + 120)  # PostgreSQL's buckets = a count of its records
            np.testing.assert_array_equal(b.good, raw.good, err_msg=s.name)
            np.testing.assert_array_equal(b.total, raw.total, err_msg=s.name)
        else:
            w = Window.ending(END, SPAN + 600, s.timeslice_s)
            a2, b2 = events._slices(s, lite, w), events._slices(s, pg, w)  # noqa: SLF001
            assert a2[1].sum() > 0, s.name
            np.testing.assert_array_equal(a2[0], b2[0], err_msg=s.name)
            np.testing.assert_array_equal(a2[1], b2[1], err_msg=s.name)
    clock = ManualClock(END)
    reports = [evaluate(MORE_SLOS, store, clock) for store in (lite, pg)]
    assert [r.problem for r in reports[1]] == [None] * len(MORE_SLOS)
    assert [r.to_dict() for r in reports[0]] == [r.to_dict() for r in reports[1]]


@pytest.mark.parametrize("metric", ["mae", "rmse", "mape", "f1"])
def test_quality_sums_on_postgresql_judge_slices_as_performance_does(pg_url: str, metric: str) -> None:  # noqa: F811
    rng = np.random.default_rng(3)
    store = PostgresStore(pg_url)
    regression = metric != "f1"
    recs, truth = [], []
    for i in range(2400):
        y: Any = float(rng.normal(100, 20)) if regression else int(rng.random() < 0.3)
        pred: Any = y + float(rng.normal(0, 3 + (i // 10) % 20)) if regression else (y if rng.random() < 0.7 else 1 - y)
        if i % 97 == 0:
            pred = True if regression else 2.0  # not a number / another class: that slice from the records
        recs.append(
            InferenceRecord(model="fraud", version="v1", inputs={}, prediction=pred, ts=T0 + i * 6.0, id=f"q{i}")
        )
        truth.append(0 if regression and i % 89 == 0 else y)
    store.write_batch(recs)
    limit = {"mae": {"max": 8.0}, "rmse": {"max": 8.0}, "mape": {"max": 0.08}, "f1": {"min": 0.6}}[metric]
    s = slo("q", {"kind": "quality", "metric": metric, **limit}, timeslice="5m")
    events.sli_series(s, store, T0 + 14_400, 14_400)  # registered before the labels: kept as they arrive
    store.add_labels([Label(r.id, v, T0) for r, v in zip(recs, truth, strict=True) if rng.random() < 0.8])
    store.add_labels([Label(r.id, v, T0) for r, v in zip(recs[:300], truth[:300], strict=True)])
    w = Window.ending(T0 + 14_400, 14_400, s.timeslice_s)
    good, total = events._slices(s, store, w)  # noqa: SLF001
    raw_good, raw_total = quality_slices_raw(s, store, w)
    np.testing.assert_array_equal(total, raw_total)
    np.testing.assert_array_equal(good, raw_good)
    assert 0 < good.sum() < total.sum()
    store.close()


def rollup_rows(conn: Any) -> dict[tuple[str, str, int], tuple[Any, ...]]:
    return {(m, v, r[0]): r[1:] for m, v in rollups.models(conn) for (_, *r) in rollups.read(conn, m, 0, 2**40, v)}


def test_traffic_rollup_and_dashboard_series_are_equal_on_sqlite_and_postgresql(both: Any) -> None:
    lite, pg = both
    same_writes([lite, pg], 5, [])
    a, b = rollup_rows(lite._conn()), rollup_rows(PgConnection(pg))
    assert a.keys() == b.keys() and len(a) > 100
    exact = [k for k, c in enumerate(rollups.COLUMNS) if not c.endswith(("_sum", "cost_usd"))]
    for key in a:
        assert [a[key][k] for k in exact] == [b[key][k] for k in exact], key
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12, err_msg=str(key))
    rng = TimeRange(since=T0, until=T0 + SPAN, step_s=300, first=T0)
    for model in ("fraud", "other"):
        x, y = traffic_series(lite._conn(), model, rng), traffic_series(PgConnection(pg), model, rng)
        assert x.keys() == y.keys() and x
        for version in x:
            for column, values in x[version].items():
                np.testing.assert_allclose(
                    np.array(values, dtype=float), np.array(y[version][column], dtype=float), rtol=1e-12,
                    err_msg=f"{model} {version} {column}",
                )  # fmt: skip
        assert last_window(lite._conn(), model, T0 + 1800, 3600) == last_window(
            PgConnection(pg), model, T0 + 1800, 3600
        )


def test_rollup_rows_of_a_classical_models_batches_computed_before_the_lock_equal_the_sql_and_sqlite(
    both: Any,
) -> None:
    from aisre.store.codec import record_to_row
    from aisre.store.rollup_batch import batch_sums

    lite, pg = both
    rng = np.random.default_rng(11)
    plain_batches = 0
    for batch in range(8):
        recs = records(rng, int(rng.integers(20, 300)), start=batch * 1000)
        for k, r in enumerate(recs):
            object.__setattr__(r, "ttft_s", None)  # a classical model: nothing for the rollup in the body
            object.__setattr__(r, "route", "fallback" if k % 9 == 0 else "primary")
            object.__setattr__(r, "cost_usd", None if k % 4 == 0 else float(rng.exponential(0.001)))
        if batch == 5:
            object.__setattr__(recs[0], "tpot_s", 0.01)  # one LLM field: this batch is counted by the SQL
        plain_batches += batch_sums(recs, [record_to_row(r) for r in recs]) is not None
        for store in (lite, pg):
            store.write_batch(recs, durable=False)
            if batch == 3:
                store.write_batch(recs[:10])  # a retried batch: ids already stored, nothing counted twice
    assert plain_batches == 7
    ours, theirs = rollup_rows(PgConnection(pg)), rollup_rows(lite._conn())
    with pg.session("rebuilding the rollup") as conn:  # the same rows counted by the SQL alone, from the records
        conn.execute("UPDATE traffic_rollup_state SET bounds = 'another version'")
        rollups.catch_up(PgConnection(pg, conn))
    by_sql = rollup_rows(PgConnection(pg))
    assert ours.keys() == by_sql.keys() == theirs.keys() and len(ours) > 50
    exact = [k for k, c in enumerate(rollups.COLUMNS) if not c.endswith(("_sum", "cost_usd"))]
    for key in ours:
        assert [ours[key][k] for k in exact] == [by_sql[key][k] for k in exact] == [theirs[key][k] for k in exact]
        np.testing.assert_allclose(ours[key], by_sql[key], rtol=1e-12, err_msg=str(key))
        np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-12, err_msg=str(key))
    assert sum(row[0] for row in ours.values()) == pg.count() == lite.count()


def _writer(url: str, start: int, n: int) -> None:
    store = PostgresStore(url)
    rng = np.random.default_rng(start)
    for k in range(n):
        store.write_batch(records(rng, int(rng.integers(1, 120)), start=start + k * 1000), durable=False)
    store.close()


def test_concurrent_writers_on_postgresql_never_make_a_mark_skip_a_row(pg_url: str) -> None:  # noqa: F811
    store = PostgresStore(pg_url)
    availability = EVENT_SLOS[0]
    sli_series(availability, store, T0, 3600)  # registered: every writer keeps it as it commits
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(pg_url, p * 1_000_000, 25)) for p in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    conn = store._connection()
    (hwm,) = conn.execute("SELECT hwm FROM slo_bucket_specs WHERE name = 'availability'").fetchone()
    assert hwm == conn.execute("SELECT max(seq) FROM inferences").fetchone()[0]  # nobody left behind to catch up
    (n,) = conn.execute("SELECT sum(v1) FROM slo_buckets WHERE name = 'availability'").fetchone()
    raw = raw_event_series(availability, store, END, SPAN + 120)
    assert n == raw.total.sum() > 1000
    (requests,) = conn.execute("SELECT sum(requests) FROM traffic_rollup").fetchone()
    assert requests == store.count()
    store.close()


def test_fairness_and_freshness_slos_are_judged_the_same_on_sqlite_and_postgresql(both: Any) -> None:
    from aisre.slo import marks

    rng = np.random.default_rng(9)
    recs = [
        InferenceRecord(
            model="fraud",
            version="v1",
            inputs={"sex": ["f", "m", 1][i % 3]},
            prediction=int(rng.random() < (0.3 if i % 3 else 0.3 + 0.4 * (i // 600 % 2))),
            ts=T0 + 1800 + i * 3.0,
            id=f"f{i}",
        )
        for i in range(3000)
    ]
    truth = [Label(r.id, int(rng.random() < 0.5), T0) for r in recs if rng.random() < 0.7]
    for store in both:
        store.write_batch(recs)
        store.add_labels(truth)
        marks.mark(store, "fraud", marks.MODEL_TRAINED_AT, T0 - 3600, now=T0 + 5400)
    slos = [
        slo("dp", {"kind": "fairness", "metric": "demographic_parity_difference", "sensitive": "sex", "max": 0.2},
            timeslice="30m"),
        slo("eo", {"kind": "fairness", "metric": "equal_opportunity_difference", "sensitive": "inputs.sex",
                   "max": 0.3}, timeslice="30m"),
        slo("fresh", {"kind": "freshness", "max_age": "3h"}, timeslice="30m"),
    ]  # fmt: skip
    clock = ManualClock(T0 + 1800 + 9000 + 3600)
    lite, pg = (evaluate(slos, store, clock) for store in both)
    assert [r.problem for r in pg] == [None] * 3
    assert [r.to_dict() for r in lite] == [r.to_dict() for r in pg]
    for s in slos:
        w = Window.ending(clock.now(), 4 * 3600, s.timeslice_s)
        a, b = events._slices(s, both[0], w), events._slices(s, both[1], w)  # noqa: SLF001
        assert 0 < a[0].sum() < a[1].sum(), s.name  # some slices good, some bad: the comparison means something
        np.testing.assert_array_equal(a[0], b[0], err_msg=s.name)
        np.testing.assert_array_equal(a[1], b[1], err_msg=s.name)


def test_the_dashboard_answers_the_same_on_sqlite_and_postgresql(both: Any) -> None:
    from aisre.config.loader import config_from_dict
    from aisre.dashboard.data import DashboardData
    from aisre.records import Signal

    same_writes(list(both), 4, [])
    drift = Signal("fraud", "v1", "dataset_drift", 0.3, 0.2, True, {"monitor": "m"}, T0, T0 + 3600)
    for store in both:
        store.write_signals([drift], T0 + 3700)
    config = config_from_dict(
        {"slos": [{"name": "availability", "model": "fraud", "objective": 0.95, "sli": {"kind": "availability"}}]}
    )
    clock = ManualClock(END)
    lite, pg = (DashboardData(config, store, clock=clock) for store in both)
    assert lite.overview() == pg.overview()
    assert lite.overview()["models"] and lite.overview()["slos"]
    for model in ("fraud", "other"):
        a, b = lite.traffic(model, since=str(T0), until=str(END)), pg.traffic(model, since=str(T0), until=str(END))
        assert a.keys() == b.keys() and a["versions"].keys() == b["versions"].keys()
        for version, series in a["versions"].items():
            for column, values in series.items():
                np.testing.assert_allclose(
                    np.array(values, dtype=float), np.array(b["versions"][version][column], dtype=float),
                    rtol=1e-12, err_msg=f"{model} {version} {column}",
                )  # fmt: skip
    assert lite.signals("fraud", since=str(T0), until=str(END)) == pg.signals("fraud", since=str(T0), until=str(END))
    assert lite.slos() == pg.slos()
    assert lite.incidents() == pg.incidents()


def test_mape_of_integer_labels_and_predictions_is_a_real_ratio_on_both_backends(both: Any) -> None:
    # |8 - 5| / 5 is 0.6, not SQLite's integer division 0: each backend's sums judge as performance() does
    recs = [
        InferenceRecord(model="fraud", version="v1", inputs={}, prediction=5 + (i % 4), ts=T0 + i * 6.0, id=f"m{i}")
        for i in range(1200)
    ]
    truth = [Label(r.id, 5 if i < 600 else int(r.prediction), T0) for i, r in enumerate(recs)]  # bad hour, good hour
    s = slo("mape", {"kind": "quality", "metric": "mape", "max": 0.1}, timeslice="30m")
    w = Window.ending(T0 + 7200, 7200, s.timeslice_s)
    for store in both:
        store.write_batch(recs)
        store.add_labels(truth)
        good, total = events._slices(s, store, w)  # noqa: SLF001 - from the per-minute sums
        np.testing.assert_array_equal((good, total), quality_slices_raw(s, store, w))
        assert list(total) == [1.0] * 4 and list(good) == [0.0, 0.0, 1.0, 1.0]
