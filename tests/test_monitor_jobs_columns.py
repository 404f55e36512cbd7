"""The monitoring jobs' fast window reads give exactly what the record path gives.

`read_window` (JSON bodies -> columns, by Arrow where exact, else orjson) against `input_columns`
/ `output_columns` of `store.records()`, on tricky records; the index-range reads of
`SQLiteStore` (versions, counts, N-th records) against plain full-scan SQL; and count windows
over several versions against the chunks of the records list.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aisre.clock import ManualClock
from aisre.config import AisreConfig
from aisre.monitor.jobs import arrow_columns
from aisre.monitor.jobs.checks import input_columns, output_columns
from aisre.monitor.jobs.columns import read_window
from aisre.monitor.jobs.runner import MonitorRunner
from aisre.monitor.tabular.frame import encoding_of
from aisre.records import InferenceRecord
from aisre.store.base import RecordFilter
from aisre.store.sqlite import SQLiteStore

T0 = 1_767_225_600.0
WHERE = RecordFilter("m", "v1")


def _records(rows: list[dict[str, Any]]) -> list[InferenceRecord]:
    return [InferenceRecord(model="m", version="v1", ts=T0 + i, id=f"r{i}", **row) for i, row in enumerate(rows)]


PLAIN = [
    {"inputs": {"x": 1.5, "n": 3, "flag": True, "city": "Paris", "code": "007"}, "prediction": 1},
    {"inputs": {"n": 4, "x": None, "extra": "late key", "code": "8"}, "prediction": 0, "scores": {"a": 0.2, "b": 1}},
    {"inputs": {}, "prediction": None, "output_text": "héllo 👋", "output_tokens": 7},
    {"inputs": None, "prediction": 1, "scores": {"b": 0.5, "a": 0.5}},
    {"inputs": {"x": 2, "flag": False, "city": None}, "prediction": 0, "output_text": ""},
    {"inputs": {"x": float("nan"), "n": -(2**53), "always_none": None}, "prediction": 1},
]
# each falls back to the Python path somewhere; the answers must not change
TRICKY = {
    "mixed number and text": [{"inputs": {"x": 1}}, {"inputs": {"x": "1"}}, {"inputs": {"x": 2.5}}],
    "mixed bool and number": [{"inputs": {"x": True}}, {"inputs": {"x": 0}}],
    "nested values": [{"inputs": {"d": {"a": 1}, "l": [1, 2]}}, {"inputs": {"d": {"a": 2, "b": [3]}, "l": [3]}}],
    "equal-length lists": [{"inputs": {"l": [1, 2]}}, {"inputs": {"l": [3, 4]}}],
    "non-mapping inputs": [{"inputs": [1, 2]}, {"inputs": {"x": 1.0}}, {"inputs": "text"}, {"inputs": 5}],
    "only list inputs": [{"inputs": [1, 2]}, {"inputs": [3]}],
    "dates as text": [
        {"inputs": {"day": "2026-01-01", "at": "2026-01-01T10:00:00"}},
        {"inputs": {"day": "2026-01-02"}},
    ],
    "integers past 2**53": [{"inputs": {"big": 2**53 + 1}}, {"inputs": {"big": -(2**62)}}],  # both refuse
    "integers past int64": [{"inputs": {"big": 2**63}}, {"inputs": {"big": 1}}],
    "integers past uint64 stored as text": [{"inputs": {"big": 2**70}}, {"inputs": {"big": 2}}],
    "unsigned 64-bit": [{"inputs": {"big": 2**64 - 1}}, {"inputs": {"big": -1}}],
    "large floats": [{"inputs": {"x": 1e300}}, {"inputs": {"x": -2.0}}],
    "infinities": [{"inputs": {"x": float("inf")}}, {"inputs": {"x": float("-inf"), "y": 1}}],
    "prediction objects": [{"inputs": {"x": 1}, "prediction": {"label": "a"}}, {"inputs": {"x": 2}, "prediction": [1]}],
    "prediction mixed": [{"inputs": {"x": 1}, "prediction": "yes"}, {"inputs": {"x": 2}, "prediction": 1}],
    "score class missing": [{"inputs": {}, "scores": {"a": 0.1, "b": 0.9}}, {"inputs": {}, "scores": {"a": 1.0}}],
    "score as text": [{"inputs": {}, "scores": {"a": "0.5"}}, {"inputs": {}, "scores": {"a": 0.25}}],
    "score null": [{"inputs": {}, "scores": {"a": None}}, {"inputs": {}, "scores": {"a": 0.25}}],
    "scores not a mapping": [{"inputs": {}, "scores": [0.1, 0.9]}, {"inputs": {}, "scores": {"a": 0.5}}],
    "tokens not numbers": [{"inputs": {}, "output_tokens": 3}, {"inputs": {}, "output_tokens": 4.5}],
    "all inputs null": [{"inputs": None, "prediction": 1}, {"inputs": None, "prediction": 2}],
    "all inputs empty": [{"inputs": {}}, {"inputs": {}}],
}


def _outcome(build: Any) -> Any:
    """The columns `build()` makes, or the type of what it raised (both paths must agree on that too)."""
    try:
        return build()
    except Exception as exc:
        return type(exc)


def _assert_same(fast: Any, slow: Any) -> None:
    if isinstance(slow, type) or isinstance(fast, type):
        assert fast == slow
        return
    assert list(fast) == list(slow)  # same columns, same order
    for name in slow:
        a, b = fast[name], slow[name]
        assert a.dtype == b.dtype, name
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(a, b, err_msg=name)  # NaN where NaN
        else:
            assert a.tolist() == b.tolist(), name
            ea, eb = encoding_of(a), encoding_of(b)
            assert (ea is None) == (eb is None), name
            if ea is not None and eb is not None:
                assert ea[0].tolist() == eb[0].tolist() and ea[1].tolist() == eb[1].tolist(), name


def _compare(tmp_path: Path, rows: list[dict[str, Any]]) -> SQLiteStore:
    store = SQLiteStore(tmp_path / "s.db")
    store.write_batch(_records(rows))
    records = store.records(WHERE)
    window = _outcome(lambda: read_window(store, WHERE))
    slow_inputs = _outcome(lambda: input_columns(records))
    if isinstance(window, type):
        assert window == slow_inputs
        return store
    assert window.rows == len(records)
    _assert_same(window.inputs, slow_inputs)
    _assert_same(_outcome(lambda: window.outputs), _outcome(lambda: output_columns(records)))
    return store


def test_fast_reader_takes_arrow_on_plain_records_and_matches_the_record_path(tmp_path: Path) -> None:
    store = _compare(tmp_path, PLAIN)
    assert arrow_columns.parse(store.body_lines(WHERE)) is not None  # the fast path really ran


@pytest.mark.parametrize("case", sorted(TRICKY))
def test_fast_reader_matches_the_record_path_on_tricky_records(tmp_path: Path, case: str) -> None:
    _compare(tmp_path, TRICKY[case])


def test_fast_reader_leaves_to_python_what_arrow_would_read_differently(tmp_path: Path) -> None:
    for case in (
        "mixed number and text",
        "dates as text",
        "integers past int64",
        "score class missing",
        "nested values",
    ):
        store = SQLiteStore(tmp_path / f"{case}.db")
        store.write_batch(_records(TRICKY[case]))
        assert arrow_columns.parse(store.body_lines(WHERE)) is None, case


def test_fast_reader_of_an_empty_window_has_no_rows(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    window = read_window(store, WHERE)
    assert window.rows == 0 and window.inputs == {} and window.outputs == {}


# -- index-range reads ---------------------------------------------------------------------------
def _mixed_store(tmp_path: Path, n: int = 600) -> SQLiteStore:
    """Three versions of `m` (and another model) interleaved in time, with many tied timestamps."""
    rng = np.random.default_rng(3)
    store = SQLiteStore(tmp_path / "mixed.db")
    ts = T0 + np.round(rng.uniform(0, 100, n))  # whole seconds: ties within and across versions
    versions = rng.choice(["a", "b", "c"], n)
    records = [
        InferenceRecord(model="m", version=str(v), inputs={"i": i}, ts=float(t), id=f"m{i}")
        for i, (t, v) in enumerate(zip(ts, versions, strict=True))
    ]
    records += [InferenceRecord(model="other", version="a", inputs={"i": i}, ts=T0 + i, id=f"o{i}") for i in range(50)]
    order = rng.permutation(len(records))  # written out of time order
    store.write_batch([records[i] for i in order])
    return store


def _keys(store: SQLiteStore, where: RecordFilter) -> list[tuple[float, int]]:
    sql = "SELECT ts, seq FROM inferences WHERE model = ? AND ts >= ? AND ts < ? ORDER BY ts, seq"
    return [(t, s) for t, s in store._conn().execute(sql, (where.model, where.since, where.until))]  # noqa: SLF001


def test_index_range_reads_agree_with_a_full_scan_across_versions(tmp_path: Path) -> None:
    store = _mixed_store(tmp_path)
    where = RecordFilter("m", None, T0 + 20, T0 + 80)
    keys = _keys(store, where)
    assert store.versions_between("m", T0 + 20, T0 + 80) == ["a", "b", "c"]
    assert store.versions_between("m", T0 + 1000) == [] and store.versions_between("nobody") == []
    assert store.indexed_count(where) == store.count(where) == len(keys)
    assert store.indexed_records(where) == store.records(where)
    bodies = store.body_lines(where).split(b"\n")
    assert [b.decode() for b in bodies] == [
        store._conn().execute("SELECT body FROM inferences WHERE id = ?", (r.id,)).fetchone()[0]  # noqa: SLF001
        for r in store.records(where)
    ]
    for offset in (0, 1, 57, len(keys) - 1, len(keys)):
        assert store.nth_records(where, offset) == keys[offset : offset + 1]
        assert store.nth_records(where, offset, newest_first=True) == keys[::-1][offset : offset + 1]
    for start in (0, 13, 200):
        assert store.nth_records(where, 5, start=keys[start], limit=2) == keys[start + 5 : start + 7]
        back = keys[::-1]
        assert store.nth_records(where, 5, start=back[start], newest_first=True) == back[start + 5 : start + 6]


def test_count_windows_over_several_versions_are_chunks_of_the_records_in_time_order(tmp_path: Path) -> None:
    store = _mixed_store(tmp_path, n=1050)
    monitor = {
        "name": "all-versions",
        "model": "m",
        "reference": {"since": T0, "until": T0 + 10},
        "window": {"every": 100},
        "checks": ["data_drift"],
        "catch_up": 3,
        "min_rows": 1,
    }
    cfg = AisreConfig.model_validate({"store": f"sqlite:///{store.path}", "monitors": [monitor]})
    runner = MonitorRunner(cfg, store, ManualClock(T0 + 200))
    runner.run_due()
    stamps = [r.ts for r in store.records(RecordFilter("m"))]  # time order, ties by write order (seq)
    expected = [(stamps[i], math.nextafter(stamps[i + 99], math.inf)) for i in range(700, 1000, 100)]
    done = sorted(
        {
            (s.window_start, s.window_end)
            for _, s in store.signals(model="m", name="window_rows")
            if s.labels.get("monitor") == "all-versions" and s.labels.get("scope") != "job"
        }
    )
    assert done == expected
    skipped = [s for _, s in store.signals(model="m", name="monitor_windows_skipped")]
    assert [(s.value, s.window_end) for s in skipped] == [(7.0, stamps[700])]


def test_label_fingerprint_of_a_window_without_a_version_counts_every_version(tmp_path: Path) -> None:
    from aisre.monitor.jobs import relabel
    from aisre.records import Label

    store = _mixed_store(tmp_path)
    store.add_labels([Label(f"m{i}", 1, T0 + 500 + i) for i in range(0, 600, 3)])
    store.add_labels([Label(f"o{i}", 1, T0 + 9000) for i in range(50)])  # another model's labels never count
    sql = (
        "SELECT count(*), max(l.ts) FROM inferences i JOIN labels l ON l.record_id = i.id"
        " WHERE i.model = 'm' AND i.ts >= ? AND i.ts < ?"
    )
    count, newest = store._conn().execute(sql, (T0 + 20, T0 + 80)).fetchone()  # noqa: SLF001
    assert 0 < count < 200
    assert relabel.fingerprint(store, "m", None, T0 + 20, T0 + 80) == relabel.Fingerprint(count, newest)
    assert relabel.fingerprint(store, "m", None, T0 + 1000, T0 + 2000) == relabel.Fingerprint(0, None)


def test_fast_reader_of_bodies_spread_over_several_lines_reads_them_as_the_store_does(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    store.write_batch(_records(PLAIN))
    conn = store._conn()  # noqa: SLF001 - a body written by some other tool, pretty-printed
    conn.execute(
        "UPDATE inferences SET body = ? WHERE id = 'r1'", ('{\n "inputs": {"n": 9, "x": 0.5},\n "prediction": 1\n}',)
    )
    conn.commit()
    records = store.records(WHERE)
    window = read_window(store, WHERE)
    assert window.rows == len(PLAIN) and window.inputs["n"][1] == 9.0
    _assert_same(window.inputs, input_columns(records))
    _assert_same(window.outputs, output_columns(records))
