"""The per-minute traffic rollup (aisre.store.rollups) always equals a full recount of the stored records."""

from __future__ import annotations

import random
import sqlite3
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from aisre.records import InferenceRecord
from aisre.store import rollups
from aisre.store.codec import COLUMNS, record_to_row
from aisre.store.sqlite import SQLiteStore

T0 = 1_767_225_600.0


def make_records(
    rng: random.Random, n: int, start: float = T0, span_s: float = 3 * 3600, llm_share: float = 0.3
) -> list[InferenceRecord]:
    out = []
    for _ in range(n):
        llm = rng.random() < llm_share
        out.append(
            InferenceRecord(
                model=rng.choice(["fraud", "chat"]),
                version=rng.choice(["v1", "v2"]),
                inputs={"x": rng.random(), "note": "ttft_s"},  # a body mentioning the name, not the field
                prediction=1,
                route=rng.choice(["primary", "primary", "canary", "fallback"]),
                status=rng.choice(["ok", "ok", "ok", "error", "cancelled"]),
                latency_s=None if rng.random() < 0.05 else rng.lognormvariate(-4, 1.5),
                ttft_s=rng.lognormvariate(-2, 1) if llm else None,
                tpot_s=rng.lognormvariate(-5, 0.5) if llm and rng.random() < 0.9 else None,
                input_tokens=rng.randint(1, 500) if llm else None,
                output_tokens=rng.randint(0, 300) if llm else None,
                cost_usd=rng.random() / 100 if llm else None,
                ts=start + rng.random() * span_s,
            )
        )
    return out


def recount(db: Path) -> dict[tuple[str, str, int], dict[str, float]]:
    """The rollup computed independently: every record read back, bucketed with numpy."""
    store = SQLiteStore(db)
    sums: dict[tuple[str, str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for r in store.records():
        row = sums[(r.model, r.version, int(r.ts // 60))]
        row["requests"] += 1
        row["errors"] += r.status == "error"
        row["cancelled"] += r.status == "cancelled"
        row["fallbacks"] += r.route == "fallback"
        row["tokens"] += (r.input_tokens or 0) + (r.output_tokens or 0)
        row["cost_usd"] += r.cost_usd or 0.0
        for name, value in (("latency", r.latency_s), ("ttft", r.ttft_s), ("tpot", r.tpot_s)):
            if value is not None:
                row[f"{name}_count"] += 1
                row[f"{name}_sum"] += value
                k = int(np.searchsorted(rollups.BOUNDS, value, side="left"))  # first bound >= value
                row[f"{name}_b{k:02d}"] += 1
    store.close()
    return sums


def rolled_up(db: Path) -> dict[tuple[str, str, int], dict[str, float]]:
    conn = sqlite3.connect(db)
    rows = conn.execute(f"SELECT model, version, minute, {', '.join(rollups.COLUMNS)} FROM traffic_rollup").fetchall()
    conn.close()
    return {
        (m, v, minute): {c: x for c, x in zip(rollups.COLUMNS, rest, strict=True) if x} for m, v, minute, *rest in rows
    }


def assert_equal_to_recount(db: Path) -> None:
    expected = recount(db)
    actual = rolled_up(db)
    assert set(actual) == set(expected)
    for key, want in expected.items():
        got = actual[key]
        assert set(got) == {c for c, x in want.items() if x}, key
        for column, value in want.items():
            assert got.get(column, 0) == pytest.approx(value, rel=1e-9, abs=1e-12), (key, column)


@pytest.mark.parametrize("llm_share", [0.3, 0.0])  # 0.0: batches without LLM fields skip reading bodies
def test_rollup_equals_a_recount_after_random_batches_duplicates_and_a_second_store(
    tmp_path: Path, llm_share: float
) -> None:
    rng = random.Random(7)
    db = tmp_path / "a.db"
    first, second = SQLiteStore(db), SQLiteStore(db)  # two store objects (as two processes) on one file
    written: list[InferenceRecord] = []
    for i in range(12):
        batch = make_records(rng, rng.randint(1, 700), llm_share=llm_share)
        if written and i % 3 == 1:  # resubmitted records (a retried batch): INSERT OR IGNORE, never counted twice
            batch += rng.sample(written, min(len(written), 50))
        elif written and i % 3 == 2:  # a record twice in one batch, at its end
            batch.append(batch[0])
        if i == 6:  # an LLM record among classical ones
            batch[len(batch) // 2] = make_records(rng, 1, llm_share=1.0)[0]
        (first if i % 2 else second).write_batch(batch, durable=i % 3 == 0)
        written += batch
    first.write_batch([])  # an empty batch changes nothing
    assert_equal_to_recount(db)
    assert sum(row["requests"] for row in rolled_up(db).values()) == len({r.id for r in written})


def test_a_store_opened_on_an_older_database_builds_the_rollup_of_its_rows_once(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = SQLiteStore(db)
    store.write_batch(make_records(random.Random(1), 500))
    store.close()
    conn = sqlite3.connect(db)  # as a database written before the rollup existed
    conn.executescript("DROP TABLE traffic_rollup; DROP TABLE traffic_rollup_state;")
    conn.close()
    reopened = SQLiteStore(db)
    assert_equal_to_recount(db)
    before = rolled_up(db)
    SQLiteStore(db).close()  # opening again adds nothing
    assert rolled_up(db) == before
    reopened.close()


def test_rows_written_by_a_writer_that_does_not_know_the_rollup_are_caught_up_by_the_next_batch(
    tmp_path: Path,
) -> None:
    db = tmp_path / "mixed.db"
    store = SQLiteStore(db)
    rng = random.Random(3)
    store.write_batch(make_records(rng, 300))
    conn = sqlite3.connect(db)  # an older aisre process: inserts records, no rollup
    rows = [record_to_row(r) for r in make_records(rng, 200, llm_share=0.5)]
    conn.executemany(f"INSERT INTO inferences ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    conn.commit()
    conn.close()
    store.write_batch(make_records(rng, 10, llm_share=0.0))  # a plain batch must still count the LLM rows above
    assert_equal_to_recount(db)


def test_pruning_records_keeps_their_rollup(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    store = SQLiteStore(db)
    store.write_batch(make_records(random.Random(5), 400))
    before = rolled_up(db)
    assert store.prune(T0 + 3600) > 0
    assert rolled_up(db) == before


def test_a_failing_rollup_never_loses_the_records_and_catches_up_later(tmp_path: Path) -> None:
    db = tmp_path / "f.db"
    store = SQLiteStore(db)
    conn = store._conn()
    conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON traffic_rollup BEGIN SELECT RAISE(ABORT, 'refused'); END")
    conn.commit()
    records = make_records(random.Random(9), 100)
    store.write_batch(records)
    assert store.count() == 100 and rolled_up(db) == {}
    conn.execute("DROP TRIGGER refuse")
    conn.commit()
    store.write_batch(make_records(random.Random(10), 5))
    assert_equal_to_recount(db)


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99])
def test_a_percentile_from_the_histogram_lies_in_the_bucket_of_the_exact_one(q: float) -> None:
    rng = np.random.default_rng(11)
    for values in (rng.lognormal(-4, 1.2, 5000), rng.uniform(0.0001, 0.002, 300), rng.exponential(2.0, 1000)):
        counts = np.bincount(np.searchsorted(rollups.BOUNDS, values, side="left"), minlength=rollups.N_BUCKETS)
        estimate = rollups.percentile(counts.tolist(), q)
        exact = float(np.percentile(values, q * 100, method="inverted_cdf"))
        lower, upper = rollups.bucket_bounds(exact)
        assert estimate is not None and lower <= estimate <= upper
        assert rollups.percentiles(counts[None, :], q) == [pytest.approx(estimate)]
        # the stated bound: within a factor RATIO of the exact value between 1 ms and 60 s
        if 0.001 < exact <= 60:
            assert exact / rollups.RATIO <= estimate <= exact * rollups.RATIO


def test_an_empty_histogram_has_no_percentile() -> None:
    assert rollups.percentile([0] * rollups.N_BUCKETS, 0.5) is None
    assert rollups.percentiles(np.zeros((2, rollups.N_BUCKETS)), 0.99) == [None, None]


def test_a_large_backlog_is_rolled_up_in_steps_and_writers_carry_at_most_a_step_each(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "backlog.db"
    store = SQLiteStore(db)
    rng = random.Random(4)
    store.write_batch(make_records(rng, 450))
    store.close()
    conn = sqlite3.connect(db)
    conn.executescript("DROP TABLE traffic_rollup; DROP TABLE traffic_rollup_state;")
    conn.close()
    monkeypatch.setattr(rollups, "CHUNK_ROWS", 100)
    SQLiteStore(db).close()  # five steps of at most 100 rows
    assert_equal_to_recount(db)
    writer = SQLiteStore(db)  # a running writer, opened (and caught up) before the backlog below
    conn = sqlite3.connect(db)  # an unaware writer leaves 250 rows behind the mark
    rows = [record_to_row(r) for r in make_records(rng, 250)]
    conn.executemany(f"INSERT INTO inferences ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    conn.commit()
    hwm = "SELECT max(seq) - (SELECT hwm FROM traffic_rollup_state) FROM inferences"
    assert conn.execute(hwm).fetchone()[0] == 250
    writer.write_batch(make_records(rng, 5))  # takes 100 of the backlog, not all of it
    assert conn.execute(hwm).fetchone()[0] == 250 + 5 - 100
    writer.write_batch(make_records(rng, 5))
    writer.write_batch(make_records(rng, 5))  # the last step: the rest and itself
    assert conn.execute(hwm).fetchone()[0] == 0
    conn.close()
    assert_equal_to_recount(db)
