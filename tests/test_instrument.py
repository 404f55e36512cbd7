"""The issue's acceptance test: a real scikit-learn model, 10,000 recorded predictions."""

from __future__ import annotations

import urllib.request
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import aisre
from aisre.store import RecordFilter

from .conftest import free_port


def _scrape(url: str) -> dict[str, float]:
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = sample.name + "".join(f",{k}={v}" for k, v in sorted(sample.labels.items()))
            out[key] = sample.value
    return out


@pytest.fixture(scope="module")
def trained():
    data = load_breast_cancer(as_frame=True)
    X, y = data.data, data.target
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    rng = np.random.default_rng(0)
    rows = X.iloc[rng.integers(0, len(X), 10_000)].reset_index(drop=True)
    return model, rows


def test_ten_thousand_instrumented_predictions(trained, tmp_path: Path):
    model, rows = trained
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    db = tmp_path / "aisre.db"
    monitor = aisre.Monitor("cancer", "v1", store=f"sqlite:///{db}", tracer_provider=provider)
    metrics_url = monitor.serve_metrics(port=free_port())
    wrapped = aisre.instrument(model, monitor=monitor)

    # 5,000 single-row calls and one 5,000-row batch, through predict and predict_proba
    singles = [wrapped.predict(rows.iloc[[i]]) for i in range(5_000)]
    batch_proba = wrapped.predict_proba(rows.iloc[5_000:])
    monitor.flush()

    assert np.array_equal(np.concatenate(singles), model.predict(rows.iloc[:5_000]))
    assert np.array_equal(batch_proba, model.predict_proba(rows.iloc[5_000:]))
    assert len(wrapped.last_record_ids) == 5_000

    store = monitor.store
    assert store.count(RecordFilter("cancer", "v1")) == 10_000
    first = store.records(limit=1)[0]
    assert set(first.inputs) == set(rows.columns)
    assert first.inputs["mean radius"] == pytest.approx(rows.iloc[0]["mean radius"])
    proba_record = store.get(wrapped.last_record_ids[0])
    assert proba_record.scores == pytest.approx({"0": batch_proba[0][0], "1": batch_proba[0][1]})

    metrics = _scrape(metrics_url)
    labels = ",model=cancer,route=primary,version=v1"
    assert metrics["aisre_predictions_total" + labels] == 10_000
    assert metrics["aisre_inference_duration_seconds_count" + labels] == 5_001  # one per call
    assert metrics["aisre_records_written_total"] == 10_000
    assert metrics["aisre_records_dropped_total"] == 0

    spans = exporter.get_finished_spans()
    assert len(spans) == 5_001
    attrs = spans[-1].attributes
    assert spans[-1].name == "predict cancer"
    assert attrs["gen_ai.operation.name"] == "predict"
    assert attrs["gen_ai.request.model"] == "cancer"
    assert attrs["openinference.span.kind"] == "CHAIN"
    assert attrs["llm.model_name"] == "cancer"
    assert attrs["aisre.model.version"] == "v1"
    assert attrs["aisre.batch_size"] == 5_000
    assert "input.value" not in attrs  # content logging is off by default
    assert proba_record.trace_id == format(spans[-1].context.trace_id, "032x")
    monitor.close()


def test_instrument_passes_other_attributes_through(trained, tmp_path: Path):
    model, rows = trained
    wrapped = aisre.instrument(model, "m", store=f"sqlite:///{tmp_path / 'a.db'}")
    assert wrapped.classes_.tolist() == [0, 1]
    assert wrapped.score(rows.iloc[:50], model.predict(rows.iloc[:50])) == 1.0
    wrapped.monitor.close()


def test_numpy_inputs_use_feature_names_and_tags(tmp_path: Path):
    data = load_breast_cancer()
    model = LogisticRegression(max_iter=5000).fit(data.data, data.target)
    monitor = aisre.Monitor("np", store=f"sqlite:///{tmp_path / 'b.db'}")
    wrapped = aisre.instrument(
        model,
        monitor=monitor,
        feature_names=list(data.feature_names),
        tags=lambda X: [{"size": "big" if x[0] > 15 else "small"} for x in X],
    )
    wrapped.predict(data.data[:10])
    monitor.flush()
    records = monitor.store.records()
    assert len(records) == 10 and "mean radius" in records[0].inputs
    assert {r.tags["size"] for r in records} <= {"big", "small"}
    monitor.close()


def test_instrument_refuses_what_is_not_an_estimator(tmp_path: Path):
    with pytest.raises(aisre.InvalidRecordError, match="expected an estimator with a predict method"):
        aisre.instrument(object(), "m", store=f"sqlite:///{tmp_path / 'c.db'}")
