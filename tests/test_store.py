from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from aisre import InferenceRecord, Label, Route, Status, UnknownRecordError
from aisre.store import JsonlSink, RecordFilter, export_parquet, open_store
from aisre.store.codec import record_to_json_line
from aisre.store.summary import summarize


def _record(i: int, **kw) -> InferenceRecord:
    return InferenceRecord(
        model="fraud",
        version=kw.pop("version", "v1"),
        inputs={"amount": float(i)},
        prediction=i % 2,
        ts=kw.pop("ts", 1_800_000_000.0 + i),
        latency_s=0.001 * (i + 1),
        **kw,
    )


def test_every_field_round_trips_through_sqlite(store):
    r = InferenceRecord(
        model="chat",
        version="v2",
        inputs={"x": np.float32(1.5), "arr": np.arange(3), "when": object()},
        prediction=np.int64(1),
        scores={"0": 0.25, "1": 0.75},
        output_text="hello",
        operation="chat",
        route=Route.CANARY,
        status=Status.ERROR,
        error="Timeout: slow",
        latency_s=0.5,
        ttft_s=0.1,
        tpot_s=0.02,
        input_tokens=10,
        output_tokens=20,
        cost_usd=0.0003,
        key_id="key_abc",
        trace_id="ab" * 16,
        replica="http://r1",
        tags={"segment": "eu"},
        ts=1_800_000_000.25,
    )
    store.write_batch([r])
    back = store.get(r.id)
    assert back.inputs["x"] == 1.5 and back.inputs["arr"] == [0, 1, 2]
    assert back.inputs["when"].startswith("<object object")  # unknown types kept as text
    assert back.prediction == 1 and back.scores == {"0": 0.25, "1": 0.75}
    for name in (
        "model",
        "version",
        "output_text",
        "operation",
        "route",
        "status",
        "error",
        "latency_s",
        "ttft_s",
        "tpot_s",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "key_id",
        "trace_id",
        "replica",
        "tags",
        "ts",
        "id",
    ):
        assert getattr(back, name) == getattr(r, name), name
    assert store.get("nope") is None


def test_values_json_cannot_hold_natively_are_kept_not_fatal(store):
    cyclic: list = []
    cyclic.append(cyclic)
    big = InferenceRecord(model="m", version="v1", inputs={"big": 2**70, "nan": float("nan")}, prediction={1, 2})
    odd = InferenceRecord(model="m", version="v1", inputs={"loop": cyclic})
    store.write_batch([big, odd])
    assert store.get(big.id).inputs == {"big": str(2**70), "nan": None}  # text, not lost
    assert store.get(big.id).prediction == [1, 2]
    assert store.get(odd.id).inputs == {"loop": ["[...]"]}


def test_reads_filter_by_model_version_and_time(store):
    store.write_batch([_record(i) for i in range(10)] + [_record(i, version="v2") for i in range(5)])
    assert store.count() == 15
    assert store.count(RecordFilter(version="v2")) == 5
    window = RecordFilter("fraud", "v1", since=1_800_000_002.0, until=1_800_000_005.0)
    assert [r.inputs["amount"] for r in store.records(window)] == [2.0, 3.0, 4.0]
    newest = store.records(RecordFilter(version="v1"), limit=2, newest_first=True)
    assert [r.inputs["amount"] for r in newest] == [9.0, 8.0]
    chunks = list(store.iter_records(chunk_size=4))
    assert [len(c) for c in chunks] == [4, 4, 4, 3]


def test_labels_join_their_records_and_can_be_corrected(store):
    records = [_record(i) for i in range(4)]
    store.write_batch(records)
    store.add_labels([Label(records[1].id, 1, 1_800_000_100.0), Label(records[3].id, 0, 1_800_000_100.0)])
    joined = store.labeled_records()
    assert [(r.id, lab.value) for r, lab in joined] == [(records[1].id, 1), (records[3].id, 0)]
    store.add_labels([Label(records[1].id, 0, 1_800_000_200.0)])  # a corrected label wins
    assert store.labels_for([records[1].id])[records[1].id].value == 0
    everything = store.labeled_records(only_labeled=False)
    assert len(everything) == 4 and everything[0][1] is None


def test_labels_for_unknown_ids_are_refused_whole(store):
    records = [_record(i) for i in range(2)]
    store.write_batch(records)
    with pytest.raises(UnknownRecordError) as err:
        store.add_labels([Label(records[0].id, 1), Label("missing-id", 0)])
    assert err.value.record_ids == ["missing-id"]
    assert "'missing-id'" in str(err.value) and "Monitor.record" in str(err.value)
    assert store.label_count() == 0  # nothing half-written


def test_prune_and_retention_drop_old_records_and_their_labels(db_path: Path):
    s = open_store(f"sqlite:///{db_path}", retention_days=1)
    old = _record(0, ts=1_800_000_000.0)
    new = _record(1, ts=1_800_000_000.0 + 2 * 86_400)
    s.write_batch([old, new])
    s.add_labels([Label(old.id, 1)])
    s.maintain(now=1_800_000_000.0 + 2.5 * 86_400)
    assert [r.id for r in s.records()] == [new.id]
    assert s.label_count() == 0
    s.close()


def test_store_is_wal_and_errors_are_clear(tmp_path: Path):
    s = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    mode = sqlite3.connect(tmp_path / "a.db").execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    s.close()
    with pytest.raises(Exception, match="directory .* does not exist"):
        open_store(f"sqlite:///{tmp_path / 'no' / 'such' / 'a.db'}")
    with pytest.raises(Exception, match="expected 'sqlite:///PATH'"):
        open_store("mysql://x")
    (tmp_path / "junk.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(Exception, match="cannot open store"):
        open_store(f"sqlite:///{tmp_path / 'junk.db'}")


def test_parquet_export_has_every_record_and_label(store, tmp_path: Path):
    records = [_record(i) for i in range(25)]
    store.write_batch(records)
    store.add_labels([Label(records[0].id, 1, 1_800_000_500.0)])
    out = tmp_path / "log.parquet"
    assert export_parquet(store, out, chunk_size=10) == 25
    table = pq.read_table(out).to_pylist()
    assert len(table) == 25
    assert table[0]["id"] == records[0].id and json.loads(table[0]["label"]) == 1
    assert table[1]["label"] is None
    assert json.loads(table[3]["inputs"]) == {"amount": 3.0}
    assert table[3]["ts"].timestamp() == pytest.approx(records[3].ts)


def test_jsonl_line_is_one_object_with_model_time_input_prediction():
    r = InferenceRecord(
        model="fraud", version="v1", inputs={"amount": 3.5}, prediction=1, ts=1_800_000_000.123, latency_s=0.002
    )
    line = record_to_json_line(r)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    obj = json.loads(line)
    assert obj["model"] == "fraud" and obj["timestamp"] == "2027-01-15T08:00:00.123Z"
    assert obj["input"] == {"amount": 3.5} and obj["prediction"] == 1
    assert "output_text" not in obj  # nulls left out
    buf = io.BytesIO()
    JsonlSink(buf).write_batch([r, r])
    assert len(buf.getvalue().splitlines()) == 2


def test_summary_counts_errors_and_latency_percentiles(store):
    recs = [_record(i) for i in range(100)]
    recs[0].status = Status.ERROR
    store.write_batch(recs)
    (row,) = summarize(store)
    assert (row.count, row.errors, row.error_rate) == (100, 1, 0.01)
    lat = np.array([r.latency_s for r in recs])
    assert row.latency_p50_s == pytest.approx(np.percentile(lat, 50))
    assert row.latency_p99_s == pytest.approx(np.percentile(lat, 99))
