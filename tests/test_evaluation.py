"""The offline evaluation gate as a library: real models scored in process and over a real OIP replica, numbers
equal to scikit-learn's and Fairlearn's, thresholds from the config, the stored verdict is what the gate reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aisre.errors import ConnectFailed, DataError, InvalidParameterError
from aisre.respond import evaluate_version, gate_problem, latest_evaluation
from aisre.respond.evaluation import SIGNAL
from aisre.respond.evaluation_checks import latency_summary
from aisre.store import open_store
from tests.evaluation_helpers import Golden, config_for, make_golden

# The OIP mock replica hands scikit-learn bare arrays, as a real model server does.
pytestmark = pytest.mark.filterwarnings("ignore:X does not have valid feature names")


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> Golden:
    return make_golden(tmp_path_factory.mktemp("golden"))


@pytest.fixture(scope="module")
def replica(golden: Golden):
    from aisre.testing.oip_model import OipModel
    from aisre.testing.oip_server import oip_app
    from aisre.testing.server import serve_in_thread
    from aisre.testing.settings import MockSettings

    server = serve_in_thread(oip_app(MockSettings(model="cancer"), OipModel.from_estimator(golden.good_model)))
    yield server
    server.stop()


def test_a_good_version_passes_with_metrics_equal_to_scikit_learns(tmp_path: Path, golden: Golden):
    from sklearn import metrics

    result = evaluate_version(config_for(tmp_path, golden), "cancer", "good")
    assert result.passed and not result.failed
    proba = golden.good_model.predict_proba(golden.X)[:, 1]
    pred = golden.good_model.predict(golden.X)
    assert result.metrics["accuracy"]["value"] == pytest.approx(metrics.accuracy_score(golden.y, pred))
    assert result.metrics["f1"]["value"] == pytest.approx(metrics.f1_score(golden.y, pred))
    assert result.metrics["roc_auc"]["value"] == pytest.approx(metrics.roc_auc_score(golden.y, proba))
    assert result.metrics["log_loss"]["value"] == pytest.approx(metrics.log_loss(golden.y, proba))
    accuracy = next(c for c in result.checks if c.name == "accuracy")
    assert accuracy.lower < accuracy.value < accuracy.upper  # an interval, not a bare number
    assert (accuracy.threshold, accuracy.direction, accuracy.judged_by) == (0.9, "min", "value")
    assert result.task == "binary" and result.data["rows"] == len(golden.y)
    assert result.target["calls"] == len(golden.y) and result.target["rows_per_call"] == 1


def test_a_constant_predictor_fails_and_names_the_failing_checks(tmp_path: Path, golden: Golden):
    result = evaluate_version(config_for(tmp_path, golden), "cancer", "constant")
    assert not result.passed
    assert {c.name for c in result.failed} == {"accuracy", "roc_auc", "log_loss"}
    assert all(c.passed for c in result.checks if c.kind == "latency")


def test_an_oip_replica_is_scored_over_http_with_the_same_numbers(tmp_path: Path, golden: Golden, replica):
    cfg = config_for(tmp_path, golden, None, remote={"replicas": [replica.url], "upstream_model": "cancer"})
    remote = evaluate_version(cfg, "cancer", "remote")
    local = evaluate_version(cfg, "cancer", "good")
    assert remote.passed
    for name in ("accuracy", "precision", "recall", "roc_auc", "log_loss"):
        assert remote.metrics[name]["value"] == pytest.approx(local.metrics[name]["value"])
    assert "OIP replicas" in remote.target["scored"] and replica.url in remote.target["scored"]
    assert "last response byte" in remote.target["latency_measures"]
    assert remote.target["calls"] == len(golden.y)
    assert remote.latency["percentiles"]["p50_ms"]["value"] > 0


def test_batches_make_fewer_calls_with_the_same_predictions(tmp_path: Path, golden: Golden, replica):
    from tests.evaluation_helpers import THRESHOLDS

    cfg = config_for(
        tmp_path,
        golden,
        {**THRESHOLDS, "batch_size": 50},
        remote={"replicas": [replica.url], "upstream_model": "cancer"},
    )
    result = evaluate_version(cfg, "cancer", "remote")
    assert result.target["calls"] == -(-len(golden.y) // 50) and result.target["rows_per_call"] == 50
    assert result.metrics["accuracy"]["value"] == pytest.approx(
        float(np.mean(golden.good_model.predict(golden.X) == golden.y))
    )


def test_an_unreachable_replica_is_an_error_naming_it_not_a_failed_version(tmp_path: Path, golden: Golden):
    from tests.conftest import free_port

    url = f"http://127.0.0.1:{free_port()}"
    cfg = config_for(tmp_path, golden, None, gone={"replicas": [url]})
    with pytest.raises(ConnectFailed, match="127.0.0.1"):
        evaluate_version(cfg, "cancer", "gone")


def test_the_stored_result_is_what_latest_evaluation_returns_and_the_gate_follows_the_newest(
    tmp_path: Path, golden: Golden
):
    cfg = config_for(tmp_path, golden)
    assert latest_evaluation(cfg.store.url, "cancer", "good") is None
    assert "needs a passing offline evaluation" in (gate_problem(cfg, cfg.store.url, "cancer", "good", "canary") or "")
    stored = evaluate_version(cfg, "cancer", "good", store=cfg.store.url)
    latest = latest_evaluation(cfg.store.url, "cancer", "good")
    assert latest is not None and latest.passed and latest.seq == stored.seq
    assert latest.to_dict() == stored.to_dict()
    assert [c.name for c in latest.checks] == [c.name for c in stored.checks]
    assert gate_problem(cfg, cfg.store.url, "cancer", "good", "canary") is None
    signals = open_store(cfg.store.url).signals(model="cancer", name=SIGNAL)
    assert [(s.version, s.value, s.breached) for _, s in signals] == [("good", 1.0, False)]

    # The same version judged again by a stricter config fails, and the newest verdict closes the gate.
    strict = config_for(
        tmp_path, golden, {"label": "diagnosis", "exclude": ["site"], "metrics": {"accuracy": {"min": 0.999}}}
    )
    evaluate_version(strict, "cancer", "good", store=strict.store.url)
    assert latest_evaluation(strict.store.url, "cancer", "good").passed is False  # type: ignore[union-attr]
    assert "accuracy" in (gate_problem(strict, strict.store.url, "cancer", "good", "shadow") or "")
    assert latest_evaluation(cfg.store.url, "cancer", "constant") is None  # per version


def test_judging_by_the_interval_bound_fails_what_the_point_estimate_passes(tmp_path: Path, golden: Golden):
    point = evaluate_version(config_for(tmp_path, golden), "cancer", "good")
    accuracy = point.metrics["accuracy"]
    floor = (accuracy["value"] + accuracy["lower"]) / 2  # above the lower bound, below the estimate
    entry = {"label": "diagnosis", "exclude": ["site"], "metrics": {"accuracy": {"min": floor}}}
    assert evaluate_version(config_for(tmp_path, golden, entry), "cancer", "good").passed
    bound = evaluate_version(config_for(tmp_path, golden, {**entry, "use": "bound"}), "cancer", "good")
    (check,) = bound.checks
    assert not bound.passed and check.judged_by == "lower bound" and check.judged == pytest.approx(accuracy["lower"])


def test_a_fairness_gap_over_a_sensitive_column_equals_fairlearns_and_fails_its_ceiling(tmp_path: Path, golden: Golden):
    from fairlearn.metrics import demographic_parity_difference

    entry = {
        "label": "diagnosis",
        "metrics": {"accuracy": {"min": 0.9}},
        "fairness": [{"metric": "demographic_parity_difference", "sensitive": "site", "max": 0.2}],
    }
    result = evaluate_version(config_for(tmp_path, golden, entry), "cancer", "good")
    (gap,) = [c for c in result.checks if c.kind == "fairness"]
    pred = golden.good_model.predict(golden.X)
    assert gap.value == pytest.approx(demographic_parity_difference(golden.y, pred, sensitive_features=golden.group))
    assert not gap.passed and gap.name == "demographic_parity_difference[site]"
    assert "site" not in result.data["features"]  # a sensitive column is not fed to the model
    assert [c.name for c in result.failed] == ["demographic_parity_difference[site]"]


def test_a_latency_ceiling_below_what_was_measured_fails(tmp_path: Path, golden: Golden):
    entry = {"label": "diagnosis", "exclude": ["site"], "latency": {"p50_ms": 1e-6, "p99_ms": 60_000}}
    result = evaluate_version(config_for(tmp_path, golden, entry), "cancer", "good")
    assert [c.name for c in result.failed] == ["p50_ms"]


def test_latency_percentile_intervals_hold_any_distribution_and_say_when_calls_are_too_few():
    many = latency_summary(np.random.default_rng(0).exponential(0.01, 2000), 0.95)["percentiles"]["p99_ms"]
    assert many["lower"] <= many["value"] <= many["upper"] < np.inf
    few = latency_summary(np.linspace(0.001, 0.01, 20), 0.95)["percentiles"]["p99_ms"]
    assert few["upper"] == np.inf  # 20 calls cannot bound a p99 from above


def test_parquet_and_csv_give_the_same_verdict(tmp_path: Path, golden: Golden):
    cfg = config_for(tmp_path, golden)
    from_csv = evaluate_version(cfg, "cancer", "good", golden.csv)
    from_parquet = evaluate_version(cfg, "cancer", "good", golden.parquet)
    assert from_parquet.metrics["accuracy"] == from_csv.metrics["accuracy"]
    assert from_parquet.metrics["roc_auc"] == from_csv.metrics["roc_auc"]


def test_bad_inputs_raise_errors_that_name_the_problem(tmp_path: Path, golden: Golden):
    cfg = config_for(tmp_path, golden)
    with pytest.raises(DataError, match=r"label: column 'nope' is not in .*columns found: .*diagnosis"):
        evaluate_version(cfg, "cancer", "good", label="nope")
    with pytest.raises(InvalidParameterError, match="no model 'other'"):
        evaluate_version(cfg, "other", "good")
    with pytest.raises(InvalidParameterError, match="has no version 'v9'"):
        evaluate_version(cfg, "cancer", "v9")
    short = tmp_path / "short.csv"
    short.write_text(golden.csv.read_text().replace("mean_radius", "radius_mean", 1))
    with pytest.raises(DataError, match=r"features: column\(s\) \['mean_radius'\] not in .*columns found: radius_mean"):
        evaluate_version(cfg, "cancer", "good", short)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"not parquet")
    with pytest.raises(DataError, match="cannot read"):
        evaluate_version(cfg, "cancer", "good", junk)


def test_the_registry_refuses_a_gated_promotion_until_the_newest_evaluation_passed(tmp_path: Path, golden: Golden):
    from aisre.errors import PromotionRefusedError
    from aisre.respond import configured_registry

    cfg = config_for(tmp_path, golden)
    store = open_store(cfg.store.url)
    registry = configured_registry(cfg, store)
    for version in ("good", "constant"):
        registry.register("cancer", version, actor="test")
    with pytest.raises(PromotionRefusedError, match="needs a passing offline evaluation"):
        registry.promote("cancer", "good", "canary", actor="test")
    evaluate_version(cfg, "cancer", "constant", store=store)
    with pytest.raises(PromotionRefusedError, match="failed its latest offline evaluation"):
        registry.promote("cancer", "constant", "shadow", actor="test")
    evaluate_version(cfg, "cancer", "good", store=store)
    assert registry.promote("cancer", "good", "canary", actor="test").status == "canary"


def test_regression_and_multiclass_models_are_judged_by_their_own_metrics(tmp_path: Path):
    import joblib
    import pandas as pd
    from sklearn import metrics
    from sklearn.datasets import load_diabetes, load_iris
    from sklearn.linear_model import LinearRegression, LogisticRegression

    diabetes = load_diabetes(as_frame=True).frame
    joblib.dump(LinearRegression().fit(diabetes.iloc[:300, :-1], diabetes.iloc[:300, -1]), tmp_path / "reg.joblib")
    diabetes.iloc[300:].to_csv(tmp_path / "reg.csv", index=False)
    iris = load_iris(as_frame=True).frame.sample(frac=1.0, random_state=3)
    model = LogisticRegression(max_iter=2000).fit(iris.iloc[:100, :-1], iris.iloc[:100, -1])
    joblib.dump(model, tmp_path / "iris.joblib")
    iris.iloc[100:].to_csv(tmp_path / "iris.csv", index=False)
    doc = {
        "store": f"sqlite:///{tmp_path / 'aisre.db'}",
        "models": {
            "sugar": {"protocol": "oip", "versions": {"v1": {"sklearn": str(tmp_path / "reg.joblib")}}},
            "iris": {"protocol": "oip", "versions": {"v1": {"sklearn": str(tmp_path / "iris.joblib")}}},
        },
        "evaluation": {
            "sugar": {"data": str(tmp_path / "reg.csv"), "label": "target", "metrics": {"mae": {"max": 10.0}}},
            "iris": {"data": str(tmp_path / "iris.csv"), "label": "target", "metrics": {"accuracy": {"min": 0.8}}},
        },
    }
    import yaml

    from aisre.config import parse_config

    cfg = parse_config(yaml.safe_dump(doc))
    sugar = evaluate_version(cfg, "sugar", "v1")
    held_out = pd.read_csv(tmp_path / "reg.csv")
    expected = metrics.mean_absolute_error(
        held_out["target"], joblib.load(tmp_path / "reg.joblib").predict(held_out.iloc[:, :-1])
    )
    assert sugar.task == "regression" and sugar.metrics["mae"]["value"] == pytest.approx(expected)
    assert not sugar.passed and [c.name for c in sugar.failed] == ["mae"]  # MAE ~ 43 against a ceiling of 10
    flowers = evaluate_version(cfg, "iris", "v1")
    test = iris.iloc[100:]
    assert flowers.task == "multiclass" and flowers.passed
    assert flowers.metrics["accuracy"]["value"] == pytest.approx(
        metrics.accuracy_score(test["target"], model.predict(test.iloc[:, :-1]))
    )
    proba = model.predict_proba(test.iloc[:, :-1])
    assert flowers.metrics["log_loss"]["value"] == pytest.approx(
        metrics.log_loss(test["target"], proba, labels=model.classes_)
    )


def test_judged_by_bound_a_p99_from_too_few_calls_fails_and_says_how_many_it_takes(tmp_path: Path, golden: Golden):
    entry = {"label": "diagnosis", "exclude": ["site"], "use": "bound", "latency": {"p50_ms": 60_000, "p99_ms": 60_000}}
    result = evaluate_version(config_for(tmp_path, golden, entry), "cancer", "good")
    assert [c.name for c in result.failed] == ["p99_ms"]  # 189 calls bound a p50 from above, not a p99
    (p99,) = result.failed
    assert p99.judged == np.inf and "it takes at least 368" in (p99.note or "")
