"""The Open Inference Protocol v2 side: in-process scikit-learn, records per row, errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import joblib
import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from .gateway_helpers import RunningGateway, gateway_config


@pytest.fixture(scope="module")
def data():
    return load_breast_cancer(as_frame=True)


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    X, y = data.data, data.target
    models = tmp_path_factory.mktemp("models")
    v1 = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    v2 = RandomForestClassifier(n_estimators=20, random_state=0).fit(X.to_numpy(), y)
    joblib.dump(v1, models / "fraud-v1.joblib")
    joblib.dump(v2, models / "fraud-v2.joblib")
    return models, v1, v2


@pytest.fixture
def gw(tmp_path: Path, trained):
    models, v1, v2 = trained
    cfg = gateway_config(
        tmp_path,
        {
            "fraud": {
                "protocol": "oip",
                "versions": {
                    "v1": {"sklearn": str(models / "fraud-v1.joblib")},
                    "v2": {"sklearn": str(models / "fraud-v2.joblib")},
                },
                "route": {"v1": 100},
                "shadow": {"version": "v2", "sample": 1.0},
            }
        },
    )
    with RunningGateway(cfg) as running:
        running.estimators = {"v1": v1, "v2": v2}
        yield running


def infer_body(X: np.ndarray) -> dict:
    return {
        "id": "req-1",
        "inputs": [{"name": "input-0", "shape": list(X.shape), "datatype": "FP64", "data": X.tolist()}],
    }


def test_in_process_predictions_equal_the_estimator(gw, data):
    X = data.data.to_numpy()[:50]
    r = httpx.post(f"{gw.url}/v2/models/fraud/infer", json=infer_body(X))
    assert r.status_code == 200, r.text
    doc = r.json()
    outputs = {o["name"]: o for o in doc["outputs"]}
    assert doc["model_name"] == "fraud" and doc["model_version"] == "v1" and doc["id"] == "req-1"
    expected = gw.estimators["v1"].predict(data.data.iloc[:50])
    assert outputs["predict"]["data"] == expected.tolist()
    proba = np.asarray(outputs["predict_proba"]["data"]).reshape(outputs["predict_proba"]["shape"])
    assert np.allclose(proba, gw.estimators["v1"].predict_proba(data.data.iloc[:50]), rtol=0, atol=1e-15)
    pinned = httpx.post(f"{gw.url}/v2/models/fraud/versions/v2/infer", json=infer_body(X)).json()
    assert pinned["model_version"] == "v2"
    assert pinned["outputs"][0]["data"] == gw.estimators["v2"].predict(X).tolist()


def test_each_row_is_recorded_with_named_features_and_the_shadow_too(gw, data):
    X = data.data.to_numpy()[:10]
    httpx.post(f"{gw.url}/v2/models/fraud/infer", json=infer_body(X)).raise_for_status()
    gw.gateway.recorder.flush()
    import time

    time.sleep(0.3)  # the shadow runs after the response
    gw.gateway.recorder.flush()
    records = gw.gateway.recorder.store.records()
    primary = [r for r in records if r.route == "primary"]
    shadow = [r for r in records if r.route == "shadow"]
    assert len(primary) == 10 and len(shadow) == 10
    assert primary[0].inputs["mean radius"] == pytest.approx(X[0, 0])
    assert set(primary[0].scores) == {"0", "1"} and primary[0].prediction in (0, 1)
    assert {r.version for r in shadow} == {"v2"}


def test_metadata_and_health(gw):
    assert httpx.get(f"{gw.url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{gw.url}/v2/health/ready").json() == {"ready": True}
    meta = httpx.get(f"{gw.url}/v2/models/fraud").json()
    assert meta["versions"] == ["v1", "v2"] and meta["inputs"][0]["shape"] == [-1, 30]
    assert httpx.get(f"{gw.url}/v2/models/fraud/versions/v2/ready").json()["ready"] is True
    assert httpx.get(f"{gw.url}/v2").json()["name"] == "aisre"


@pytest.mark.parametrize(
    ("path", "body", "status", "message"),
    [
        ("/v2/models/nope/infer", {"inputs": []}, 404, "model 'nope' not found"),
        ("/v2/models/fraud/versions/v9/infer", {"inputs": []}, 404, "version 'v9' of model 'fraud' not found"),
        ("/v2/models/fraud/infer", {"inputs": []}, 400, "inputs: expected a non-empty list"),
        (
            "/v2/models/fraud/infer",
            {"inputs": [{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [1, 2]}]},
            400,
            "inputs[0].shape: product 6 does not match 2 values",
        ),
        (
            "/v2/models/fraud/infer",
            {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP99", "data": [1, 2]}]},
            400,
            "inputs[0].datatype: unknown 'FP99'; expected one of",
        ),
        (
            "/v2/models/fraud/infer",
            {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": ["a", "b"]}]},
            400,
            "inputs[0].data: expected FP64 numbers",
        ),
        (
            "/v2/models/fraud/infer",
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [1, 2, 3]}]},
            400,
            "expects 30 features per row, got 3",
        ),
    ],
)
def test_bad_inference_requests_name_the_field(gw, path, body, status, message):
    r = httpx.post(gw.url + path, json=body)
    assert r.status_code == status and message in r.json()["error"]


def test_missing_values_are_a_client_error_not_a_crash(gw):
    body = {"inputs": [{"name": "x", "shape": [1, 30], "datatype": "FP64", "data": [None] * 30}]}
    r = httpx.post(f"{gw.url}/v2/models/fraud/infer", json=body)
    assert r.status_code == 400 and "inputs[0].data: expected FP64 numbers, got None" in r.json()["error"]
    assert httpx.post(f"{gw.url}/v2/models/fraud/infer", json=infer_body(np.zeros((1, 30)))).status_code == 200


def test_a_missing_model_file_fails_at_startup_with_the_key(tmp_path: Path):
    from aisre.errors import ConfigError
    from aisre.gateway.app import create_app

    cfg = gateway_config(
        tmp_path, {"m": {"protocol": "oip", "versions": {"v1": {"sklearn": str(tmp_path / "x.joblib")}}}}
    )
    with pytest.raises(ConfigError, match="models.m.versions.v1.sklearn: no such file"):
        create_app(cfg)


def test_the_issue_config_example_is_accepted_as_written(tmp_path: Path, trained):
    from aisre.config import load_config

    models, _, _ = trained
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "fraud-v1.joblib").write_bytes((models / "fraud-v1.joblib").read_bytes())
    (tmp_path / "aisre.yaml").write_text("""store: sqlite:///aisre.db
models:
  chat:
    protocol: openai
    versions:
      v1:
        replicas: ["http://127.0.0.1:9101/v1", "http://127.0.0.1:9102/v1"]
    route: {v1: 100}
  fraud:
    protocol: oip
    versions:
      v1: {sklearn: models/fraud-v1.joblib}
      v2: {replicas: ["http://127.0.0.1:9201"]}
    route: {v1: 90, v2: 10}
    shadow: {version: v2, sample: 0.2}
    fallback: v1
""")
    cfg = load_config(tmp_path / "aisre.yaml")
    assert cfg.models["fraud"].weights == {"v1": 90, "v2": 10} and cfg.models["fraud"].fallback == ["v1"]
    assert cfg.models["fraud"].versions["v1"].sklearn == str(tmp_path / "models" / "fraud-v1.joblib")
    with RunningGateway(cfg) as running:  # v2's replica is down: v1 serves, and the fallback covers v2
        X = np.zeros((3, 30))
        statuses = {
            httpx.post(f"{running.url}/v2/models/fraud/infer", json=infer_body(X)).status_code for _ in range(30)
        }
        assert statuses == {200}


def test_sticky_by_caller_keeps_each_credential_on_one_version(tmp_path: Path, trained):
    models, _, _ = trained
    cfg = gateway_config(
        tmp_path,
        {
            "fraud": {
                "protocol": "oip",
                "sticky": "caller",
                "route": {"v1": 50, "v2": 50},
                "versions": {
                    "v1": {"sklearn": str(models / "fraud-v1.joblib")},
                    "v2": {"sklearn": str(models / "fraud-v2.joblib")},
                },
            }
        },
    )
    with RunningGateway(cfg) as running:
        seen: dict[str, set[str]] = {}
        for i in range(40):
            caller = f"Bearer key-{i % 8}"
            r = httpx.post(
                f"{running.url}/v2/models/fraud/infer",
                json=infer_body(np.zeros((1, 30))),
                headers={"authorization": caller},
            )
            seen.setdefault(caller, set()).add(r.headers["x-aisre-version"])
        assert all(len(v) == 1 for v in seen.values())
        assert set().union(*seen.values()) == {"v1", "v2"}


def test_an_oip_http_replica_is_proxied_and_recorded_per_row(tmp_path: Path, trained, data):
    from aisre.testing.oip_model import OipModel
    from aisre.testing.oip_server import oip_app
    from aisre.testing.server import serve_in_thread
    from aisre.testing.settings import MockSettings

    _, v1, _ = trained
    replica = serve_in_thread(oip_app(MockSettings(model="fraud"), OipModel.from_estimator(v1)))
    try:
        cfg = gateway_config(tmp_path, {"fraud": {"protocol": "oip", "versions": {"v1": {"replicas": [replica.url]}}}})
        with RunningGateway(cfg) as running:
            X = data.data.to_numpy()[:20]
            r = httpx.post(f"{running.url}/v2/models/fraud/infer", json=infer_body(X))
            assert r.status_code == 200, r.text
            outputs = {o["name"]: o for o in r.json()["outputs"]}
            assert outputs["predict"]["data"] == v1.predict(data.data.iloc[:20]).tolist()
            running.gateway.recorder.flush()
            records = running.gateway.recorder.store.records()
            assert len(records) == 20 and [rec.prediction for rec in records] == outputs["predict"]["data"]
            assert records[0].replica == replica.url and records[0].inputs["x0"] == pytest.approx(X[0, 0])
            assert set(records[0].scores) == {"0", "1"}
            httpx.post(f"{replica.url}/_mock/settings", json={"fail_rate": 1.0, "fail_status": 503})
            failed = httpx.post(f"{running.url}/v2/models/fraud/infer", json=infer_body(X[:1]))
            assert failed.status_code == 502 and "answered 503" in failed.json()["error"]
    finally:
        replica.stop()
