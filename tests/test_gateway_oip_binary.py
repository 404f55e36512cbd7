"""Open Inference Protocol clients with their defaults: tritonclient.http's binary tensor data, both ways."""

from __future__ import annotations

import struct
from pathlib import Path

import httpx
import joblib
import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as triton
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from tritonclient.utils import InferenceServerException

from .gateway_helpers import RunningGateway, gateway_config

COLORS = ["red", "green", "blue", "żółty"]  # one non-ASCII word: BYTES are UTF-8, not Latin-1


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """A classifier with integer classes, one with string classes over string features, a regressor."""
    data = load_breast_cancer()
    X, y = data.data, data.target
    rng = np.random.default_rng(0)
    words = pd.DataFrame({"color": rng.choice(COLORS, 200), "size": rng.choice(["small", "large"], 200)})
    labels = np.where((words["color"] == "red") | (words["size"] == "large"), "alarm", "quiet")
    estimators = {
        "fraud": make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y),
        "words": make_pipeline(OneHotEncoder(handle_unknown="ignore"), LogisticRegression()).fit(words, labels),
        "price": LinearRegression().fit(X[:, :3], X[:, 3]),
    }
    folder = tmp_path_factory.mktemp("models")
    for name, estimator in estimators.items():
        joblib.dump(estimator, folder / f"{name}.joblib")
    return folder, estimators, X, words


@pytest.fixture(scope="module")
def gw(models, tmp_path_factory):
    folder, estimators, _, _ = models
    cfg = gateway_config(
        tmp_path_factory.mktemp("gw"),
        {
            name: {"protocol": "oip", "versions": {"v1": {"sklearn": str(folder / f"{name}.joblib")}}}
            for name in estimators
        },
    )
    with RunningGateway(cfg) as running:
        running.estimators = estimators
        yield running


def client(url: str) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(url.removeprefix("http://"))


def tensor(name: str, array: np.ndarray, datatype: str, binary: bool = True) -> triton.InferInput:
    inp = triton.InferInput(name, list(array.shape), datatype)
    inp.set_data_from_numpy(array, binary_data=binary)
    return inp


def test_tritonclient_defaults_send_binary_inputs_and_get_binary_outputs_equal_to_the_estimator(gw, models):
    _, estimators, X, _ = models
    result = client(gw.url).infer("fraud", [tensor("input-0", X[:40], "FP64")])
    predict, proba = result.get_output("predict"), result.get_output("predict_proba")
    assert predict["parameters"] == {"binary_data_size": 40 * 8} and "data" not in predict
    assert proba["parameters"] == {"binary_data_size": 40 * 2 * 8}
    assert np.array_equal(result.as_numpy("predict"), estimators["fraud"].predict(X[:40]))
    assert np.array_equal(result.as_numpy("predict_proba"), estimators["fraud"].predict_proba(X[:40]))


def test_outputs_come_back_as_json_or_binary_as_each_one_asks_and_only_those_asked_for(gw, models):
    _, estimators, X, _ = models
    c = client(gw.url)
    inputs = [tensor("input-0", X[:7], "FP64")]
    as_json = c.infer("fraud", inputs, outputs=[triton.InferRequestedOutput("predict", binary_data=False)])
    doc = as_json.get_response()
    assert [o["name"] for o in doc["outputs"]] == ["predict"]
    assert doc["outputs"][0]["data"] == estimators["fraud"].predict(X[:7]).tolist()
    mixed = c.infer(
        "fraud",
        inputs,
        outputs=[
            triton.InferRequestedOutput("predict_proba", binary_data=True),
            triton.InferRequestedOutput("predict", binary_data=False),
        ],
    )
    proba, predict = mixed.get_response()["outputs"]
    assert proba["name"] == "predict_proba" and proba["parameters"]["binary_data_size"] == 7 * 2 * 8
    assert "data" in predict and "parameters" not in predict
    assert np.array_equal(mixed.as_numpy("predict_proba"), estimators["fraud"].predict_proba(X[:7]))
    with pytest.raises(InferenceServerException, match="outputs\\[0\\].name: unknown output 'score'") as err:
        c.infer("fraud", inputs, outputs=[triton.InferRequestedOutput("score")])
    assert err.value.status() == "400"


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT64"])
@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_numeric_input_datatypes_reach_the_model_unchanged(gw, models, datatype, binary):
    _, estimators, X, _ = models
    values = X[:25].astype(triton.triton_to_np_dtype(datatype))
    result = client(gw.url).infer("fraud", [tensor("input-0", values, datatype, binary)])
    assert np.array_equal(result.as_numpy("predict"), estimators["fraud"].predict(values))
    gw.gateway.recorder.flush()
    record = gw.gateway.recorder.store.records()[-1]
    assert record.inputs["x0"] == values[-1, 0].item()  # recorded exactly as sent


def test_bytes_tensors_in_and_out_as_binary_and_as_json(gw, models):
    _, estimators, _, words = models
    rows = words.iloc[:30].to_numpy().astype(object)
    expected = estimators["words"].predict(words.iloc[:30])
    c = client(gw.url)
    result = c.infer("words", [tensor("input-0", rows, "BYTES")])
    assert result.get_output("predict")["datatype"] == "BYTES"
    assert [v.decode() for v in result.as_numpy("predict")] == expected.tolist()
    json_out = c.infer(
        "words", [tensor("input-0", rows, "BYTES")], outputs=[triton.InferRequestedOutput("predict", False)]
    )
    assert json_out.get_response()["outputs"][0]["data"] == expected.tolist()
    # one input per feature, one sent as binary data and one as JSON, named as the model's features
    by_feature = [
        tensor("color", rows[:, 0], "BYTES", binary=True),
        tensor("size", rows[:, 1], "BYTES", binary=False),
    ]
    result = c.infer("words", by_feature)
    assert [v.decode() for v in result.as_numpy("predict")] == expected.tolist()


def test_metadata_declares_the_datatypes_responses_send(gw, models):
    _, _, X, words = models
    c = client(gw.url)
    cases = {
        "fraud": tensor("input-0", X[:3], "FP64"),
        "words": tensor("input-0", words.iloc[:3].to_numpy().astype(object), "BYTES"),
        "price": tensor("input-0", X[:3, :3], "FP64"),
    }
    declared_predict = {}
    for model, inp in cases.items():
        meta = c.get_model_metadata(model)
        for binary in (True, False):
            outputs = [triton.InferRequestedOutput(o["name"], binary_data=binary) for o in meta["outputs"]]
            sent = {o["name"]: o["datatype"] for o in c.infer(model, [inp], outputs=outputs).get_response()["outputs"]}
            assert sent == {o["name"]: o["datatype"] for o in meta["outputs"]}
        declared_predict[model] = meta["outputs"][0]["datatype"]
    assert declared_predict == {"fraud": "INT64", "words": "BYTES", "price": "FP64"}
    assert httpx.get(f"{gw.url}/v2").json()["extensions"] == ["binary_tensor_data"]


def test_a_binary_data_size_that_does_not_match_the_shape_is_a_400_naming_the_input(gw, models):
    _, _, X, _ = models
    inp = tensor("input-0", X[:5], "FP64")
    inp.set_shape([2, 30])  # the data stays 5 rows: 1200 bytes declared for a shape of 480
    with pytest.raises(InferenceServerException) as err:
        client(gw.url).infer("fraud", [inp])
    assert err.value.status() == "400"
    assert "inputs[0].parameters.binary_data_size: 'input-0' declares 1200 bytes" in err.value.message()
    assert "shape [2, 30] of FP64 needs 480 bytes" in err.value.message()


def _binary_request(header: dict, binary: bytes, header_length: int | None = None) -> tuple[bytes, dict]:
    head = orjson.dumps(header)
    length = len(head) if header_length is None else header_length
    return head + binary, {"inference-header-content-length": str(length)}


ROW = np.arange(30, dtype="<f8").tobytes()


def _fp64(size: int, **extra) -> dict:
    return {
        "inputs": [
            {"name": "x", "shape": [1, 30], "datatype": "FP64", "parameters": {"binary_data_size": size}, **extra}
        ]
    }


@pytest.mark.parametrize(
    ("body", "headers", "message"),
    [
        (*_binary_request(_fp64(480), ROW), "'x' declares 480 bytes, but only 240 bytes of binary data are left"),
        (*_binary_request(_fp64(240), ROW + b"\0" * 8), "248 bytes of binary data, but the binary_data_size"),
        (*_binary_request(_fp64(240, data=[0] * 30), ROW), "'x' has both 'data' and parameters.binary_data_size"),
        (*_binary_request(_fp64(-1), ROW), "inputs[0].parameters.binary_data_size: expected a byte count >= 0"),
        (*_binary_request(_fp64(240), ROW, 10_000), "Inference-Header-Content-Length header: expected the size"),
        (*_binary_request(_fp64(240), ROW, 5), "inference header (the first 5 bytes of the body) is not valid JSON"),
        (orjson.dumps(_fp64(240)) + ROW, {}, "binary tensor data needs an Inference-Header-Content-Length header"),
        (orjson.dumps(_fp64(240)), {}, "'x' is sent as binary data, but the request has no Inference-Header"),
        (
            *_binary_request(
                {"inputs": [{"name": "w", "shape": [1], "datatype": "BYTES", "parameters": {"binary_data_size": 6}}]},
                struct.pack("<I", 9) + b"ab",
            ),
            "BYTES element 0 of 'w' declares 9 bytes, only 2 are left",
        ),
        (
            *_binary_request(
                {"inputs": [{"name": "b", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": 2}}]},
                b"\x01\x07",
            ),
            "BOOL byte 7 at flat index 1; expected 0 or 1",
        ),
        (
            *_binary_request({**_fp64(240), "parameters": {"binary_data_output": "yes"}}, ROW),
            "parameters.binary_data_output: expected true or false",
        ),
    ],
)
def test_malformed_binary_requests_are_400s_naming_what_is_wrong(gw, body, headers, message):
    r = httpx.post(f"{gw.url}/v2/models/fraud/infer", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_a_hand_built_binary_request_with_bool_and_fp16_decodes_exactly(gw):
    """The wire format itself (not only tritonclient's side of it): little-endian, BOOL one byte a value."""
    from aisre.gateway.oip_binary import split_body
    from aisre.gateway.oip_tensors import decode_inputs

    fp16 = np.array([[0.5, -2.0, 65504.0]], dtype="<f2")
    header = {
        "inputs": [
            {"name": "h", "shape": [1, 3], "datatype": "FP16", "parameters": {"binary_data_size": 6}},
            {"name": "b", "shape": [3], "datatype": "BOOL", "parameters": {"binary_data_size": 3}},
        ]
    }
    body, headers = _binary_request(header, fp16.tobytes() + b"\x01\x00\x01")
    head, binary = split_body(body, headers["inference-header-content-length"])
    arrays = decode_inputs(orjson.loads(head), binary)
    assert arrays["h"].dtype == np.float16 and np.array_equal(arrays["h"], fp16)
    assert arrays["b"].tolist() == [True, False, True]


def test_an_http_replica_behind_the_gateway_serves_tritonclient_binary_requests(tmp_path: Path, models):
    from aisre.testing.oip_model import OipModel
    from aisre.testing.oip_server import oip_app
    from aisre.testing.server import serve_in_thread
    from aisre.testing.settings import MockSettings

    _, estimators, X, _ = models
    fraud = estimators["fraud"]
    replica = serve_in_thread(oip_app(MockSettings(model="fraud"), OipModel.from_estimator(fraud)))
    try:
        cfg = gateway_config(tmp_path, {"fraud": {"protocol": "oip", "versions": {"v1": {"replicas": [replica.url]}}}})
        with RunningGateway(cfg) as running:
            c = client(running.url)
            values = X[:12].astype(np.float32)
            result = c.infer("fraud", [tensor("input-0", values, "FP32")])
            assert np.array_equal(result.as_numpy("predict"), fraud.predict(values))
            assert np.array_equal(result.as_numpy("predict_proba"), fraud.predict_proba(values))
            assert result.get_output("predict")["parameters"]["binary_data_size"] == 12 * 8
            # the replica was sent plain JSON with the exact float32 values, and asked for JSON outputs
            sent = httpx.get(f"{replica.url}/_mock/requests").json()[-1]
            assert "inference-header-content-length" not in sent["headers"]
            (tensor_sent,) = sent["body"]["inputs"]
            assert "parameters" not in tensor_sent and "binary_data_output" not in sent["body"].get("parameters", {})
            assert np.array_equal(np.asarray(tensor_sent["data"], dtype=np.float32).reshape(12, 30), values)
            json_out = c.infer(
                "fraud", [tensor("input-0", values, "FP32")], outputs=[triton.InferRequestedOutput("predict", False)]
            )
            assert json_out.get_response()["outputs"][0]["data"] == fraud.predict(values).tolist()
            running.gateway.recorder.flush()
            records = running.gateway.recorder.store.records()
            assert [r.prediction for r in records[:12]] == fraud.predict(values).tolist()
            assert records[0].inputs["x0"] == values[0, 0].item() and set(records[0].scores) == {"0", "1"}
            # metadata is the replica's own, and agrees with what responses send
            meta = c.get_model_metadata("fraud")
            assert meta["name"] == "fraud" and meta["versions"] == ["v1"]
            assert {o["name"]: o["datatype"] for o in meta["outputs"]} == {
                o["name"]: o["datatype"] for o in result.get_response()["outputs"]
            }
            nan = values.copy()
            nan[0, 0] = np.nan
            with pytest.raises(InferenceServerException, match="'input-0' holds NaN or infinity") as err:
                c.infer("fraud", [tensor("input-0", nan, "FP32")])
            assert err.value.status() == "400"
    finally:
        replica.stop()


def test_replica_metadata_that_cannot_be_read_is_a_502_naming_the_replica(tmp_path: Path):
    from aisre.testing.oip_server import oip_app
    from aisre.testing.server import serve_in_thread
    from aisre.testing.settings import MockSettings

    replica = serve_in_thread(oip_app(MockSettings(model="other-name")))
    try:
        cfg = gateway_config(tmp_path, {"fraud": {"protocol": "oip", "versions": {"v1": {"replicas": [replica.url]}}}})
        with RunningGateway(cfg) as running:
            r = httpx.get(f"{running.url}/v2/models/fraud")
            assert r.status_code == 502
            assert f"metadata of fraud/v1: replica {replica.url} answered 404" in r.json()["error"]
    finally:
        replica.stop()


odd = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=3)
fuzz_tensor = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["input-0", "color", "size"]) | odd,
        "shape": st.lists(st.integers(0, 6), max_size=3) | odd,
        "datatype": st.sampled_from(["FP64", "FP32", "FP16", "INT64", "UINT8", "BOOL", "BYTES", "FP99"]),
    },
    optional={
        "parameters": st.fixed_dictionaries({}, optional={"binary_data_size": st.integers(-2, 300) | odd}) | odd,
        "data": st.lists(st.floats(allow_nan=False) | st.text(max_size=3), max_size=6),
    },
)
fuzz_output = st.fixed_dictionaries(
    {"name": st.sampled_from(["predict", "predict_proba", "z"]) | odd},
    optional={
        "parameters": st.fixed_dictionaries({}, optional={"binary_data": st.booleans() | odd, "class_count": odd}) | odd
    },
)
fuzz_header = st.fixed_dictionaries(
    {"inputs": st.lists(fuzz_tensor, min_size=1, max_size=3)},
    optional={
        "outputs": st.lists(fuzz_output, max_size=3) | odd,
        "parameters": st.fixed_dictionaries({}, optional={"binary_data_output": st.booleans() | odd}) | odd,
    },
)


@settings(max_examples=120, deadline=None)
@given(
    header=fuzz_header,
    tail=st.binary(max_size=400),
    length_error=st.sampled_from([0, 0, 0, -3, 7]),
    model=st.sampled_from(["fraud", "words"]),
)
def test_fuzzed_binary_requests_get_an_answer_never_a_500(gw, header, tail, length_error, model):
    head = orjson.dumps(header)
    r = httpx.post(
        f"{gw.url}/v2/models/{model}/infer",
        content=head + tail,
        headers={"inference-header-content-length": str(len(head) + length_error)},
    )
    assert r.status_code in (200, 400), r.text
    if r.status_code == 400:
        assert r.json()["error"]
