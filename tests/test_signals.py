from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from aisre.monitor.jobs.signals import publish
from aisre.records import Signal
from aisre.telemetry.signals import SignalExporter


def test_signals_are_stored_and_read_back(store):
    s1 = Signal("fraud", "v1", "data_drift_score", 0.3, 0.1, True, {"feature": "amount", "method": "psi"}, 0.0, 60.0)
    s2 = Signal("fraud", "v1", "accuracy", 0.91, 0.9, False, {}, 0.0, 60.0)
    publish([s1, s2], store=store, ts=100.0)
    publish([Signal("other", "v1", "accuracy", 0.5)], store=store, ts=200.0)
    assert [s for _, s in store.signals(model="fraud")] == [s1, s2]
    assert [t for t, _ in store.signals(name="accuracy")] == [100.0, 200.0]
    assert store.signals(since=150.0)[0][1].model == "other"


def test_exporter_serves_latest_value_per_series_as_gauges():
    exporter = SignalExporter()
    registry = CollectorRegistry()
    registry.register(exporter)
    labels = {"feature": "amount", "method": "psi"}
    publish([Signal("fraud", "v1", "data_drift_score", 0.05, 0.1, False, labels)], exporter=exporter)
    publish(
        [
            Signal("fraud", "v1", "data_drift_score", 0.3, 0.1, True, labels),
            Signal("fraud", "v1", "data_drift_score", 0.01, 0.1, False, {"feature": "age", "method": "psi"}),
        ],
        exporter=exporter,
    )
    text = generate_latest(registry).decode()
    assert 'aisre_data_drift_score{feature="amount",method="psi",model="fraud",version="v1"} 0.3' in text
    assert 'aisre_data_drift_score_breached{feature="amount",method="psi",model="fraud",version="v1"} 1.0' in text
    assert 'aisre_data_drift_score{feature="age",method="psi",model="fraud",version="v1"} 0.01' in text


def test_signal_names_must_be_prometheus_safe():
    with pytest.raises(ValueError, match="expected snake_case"):
        Signal("m", "v", "Data Drift!", 1.0)


def test_signals_published_to_a_recorder_appear_on_its_metrics(store):
    from aisre.telemetry import Metrics

    metrics = Metrics()
    publish([Signal("fraud", "v1", "accuracy", 0.83, 0.9, True)], metrics=metrics)
    text = metrics.render().decode()
    assert 'aisre_accuracy{model="fraud",version="v1"} 0.83' in text
    assert 'aisre_accuracy_breached{model="fraud",version="v1"} 1.0' in text
