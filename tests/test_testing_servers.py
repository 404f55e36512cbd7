"""The mock model servers of `aisre.testing`, driven by the official openai client and plain HTTP."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import httpx
import joblib
import numpy as np
import openai
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

from aisre.testing import (
    MockSettings,
    OipModel,
    TensorError,
    decode_inputs,
    decode_outputs,
    encode_inputs,
    oip_app,
    openai_app,
    serve_in_subprocess,
    serve_in_thread,
)
from aisre.testing.server import RunningServer

CHAT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there, mock"}]


@pytest.fixture
def mock() -> Iterator[RunningServer]:
    with serve_in_thread(openai_app(MockSettings(replica_id="r1"))) as server:
        yield server


def client(server: RunningServer, **kwargs: object) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0, **kwargs)


def set_mock(server: RunningServer, **changes: object) -> dict:
    response = httpx.post(server.url + "/_mock/settings", json=changes)
    assert response.status_code == 200, response.text
    return response.json()


# --- OpenAI mock: the happy paths -------------------------------------------------------------------


def test_chat_reply_is_deterministic_honours_max_tokens_and_counts_words(mock: RunningServer) -> None:
    raw = client(mock).chat.completions.with_raw_response.create(model="m", messages=CHAT, max_tokens=5)
    reply = raw.parse()
    assert raw.headers["x-mock-replica"] == "r1"
    assert reply.choices[0].message.content == "mock reply [r1] 0 1"
    assert reply.choices[0].finish_reason == "length"
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (5, 5, 10)

    full = client(mock).chat.completions.create(model="m", messages=CHAT, max_completion_tokens=100)
    assert full.choices[0].finish_reason == "stop"
    assert full.usage.completion_tokens == 16 == len(full.choices[0].message.content.split())


def test_chat_stream_with_include_usage_ends_with_a_usage_chunk_then_done(mock: RunningServer) -> None:
    chunks = list(
        client(mock).chat.completions.create(
            model="m", messages=CHAT, max_tokens=6, stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "mock reply [r1] 0 1 2"
    assert chunks[-2].choices[0].finish_reason == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 6
    assert all(c.usage is None for c in chunks[:-1])

    raw = httpx.post(mock.url + "/v1/chat/completions", json={"model": "m", "messages": CHAT, "stream": True})
    assert raw.headers["content-type"].startswith("text/event-stream")
    events = raw.text.split("\n\n")
    assert events[-2] == "data: [DONE]" and events[-1] == ""


def test_completions_plain_and_streaming_agree(mock: RunningServer) -> None:
    plain = client(mock).completions.create(model="m", prompt="one two three", max_tokens=4)
    assert plain.choices[0].text == "mock reply [r1] 0"
    assert (plain.usage.prompt_tokens, plain.usage.completion_tokens) == (3, 4)
    chunks = list(
        client(mock).completions.create(
            model="m", prompt="one two three", max_tokens=4, stream=True, stream_options={"include_usage": True}
        )
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == plain.choices[0].text
    assert chunks[-1].usage.prompt_tokens == 3


def test_embeddings_are_deterministic_unit_vectors_in_float_and_base64(mock: RunningServer) -> None:
    c = client(mock)
    first = c.embeddings.create(model="m", input=["alpha", "beta", "alpha"])
    vectors = np.array([d.embedding for d in first.data])
    assert vectors.shape == (3, 64) and first.usage.prompt_tokens == 3
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(vectors[0], vectors[2])
    assert not np.allclose(vectors[0], vectors[1])
    again = c.embeddings.create(model="m", input="alpha", dimensions=64)
    np.testing.assert_array_equal(again.data[0].embedding, vectors[0])

    raw = httpx.post(mock.url + "/v1/embeddings", json={"model": "m", "input": "alpha", "encoding_format": "base64"})
    decoded = np.frombuffer(base64.b64decode(raw.json()["data"][0]["embedding"]), dtype="<f4")
    np.testing.assert_array_equal(decoded, vectors[0].astype(np.float32))
    assert len(c.embeddings.create(model="m", input="x", dimensions=8).data[0].embedding) == 8


def test_models_list_names_the_configured_model(mock: RunningServer) -> None:
    assert [m.id for m in client(mock).models.list()] == ["mock-model"]
    assert httpx.get(mock.url + "/health").json() == {"status": "ok"}


# --- OpenAI mock: bad requests ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"model": "m"}, "messages", "missing_required_parameter"),
        ({"messages": CHAT}, "model", "missing_required_parameter"),
        ({"model": "m", "messages": "hi"}, "messages", "invalid_type"),
        ({"model": "m", "messages": []}, "messages", "empty_array"),
        ({"model": "m", "messages": [{"role": "user", "content": 3}]}, "messages[0].content", "invalid_type"),
        ({"model": "m", "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role", "invalid_value"),
        ({"model": "m", "messages": CHAT, "max_tokens": "5"}, "max_tokens", "invalid_type"),
        ({"model": "m", "messages": CHAT, "max_tokens": 0}, "max_tokens", "integer_below_min_value"),
        ({"model": "m", "messages": CHAT, "stream": "yes"}, "stream", "invalid_type"),
        (
            {"model": "m", "messages": CHAT, "stream_options": {"include_usage": True}},
            "stream_options",
            "invalid_value",
        ),
        ({"model": "m", "messages": CHAT, "temperature": 7}, "temperature", "invalid_value"),
    ],
)
def test_bad_chat_bodies_get_400_in_openai_error_shape(mock: RunningServer, body: dict, param: str, code: str) -> None:
    response = httpx.post(mock.url + "/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, code)


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b""])
def test_unparseable_bodies_get_400(mock: RunningServer, raw: bytes) -> None:
    response = httpx.post(mock.url + "/v1/chat/completions", content=raw)
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"


def test_bad_client_requests_surface_as_openai_exceptions(mock: RunningServer) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client(mock).embeddings.create(model="m", input=[])
    assert caught.value.body["param"] == "input"
    set_mock(mock, strict_model=True)
    with pytest.raises(openai.NotFoundError):
        client(mock).chat.completions.create(model="other", messages=CHAT)
    assert httpx.get(mock.url + "/v1/nothing").json()["error"]["code"] == "unknown_url"


# --- OpenAI mock: failure modes and control ---------------------------------------------------------


def test_fail_rate_one_answers_with_the_configured_status(mock: RunningServer) -> None:
    set_mock(mock, fail_rate=1.0, fail_status=503)
    with pytest.raises(openai.InternalServerError) as caught:
        client(mock).chat.completions.create(model="m", messages=CHAT)
    assert caught.value.status_code == 503
    assert caught.value.body["type"] == "server_error"
    assert httpx.get(mock.url + "/_mock/stats").json()["failures_injected"] == 1


def test_partial_fail_rate_is_seeded_and_reproducible() -> None:
    def failures(seed: int) -> list[int]:
        with serve_in_thread(openai_app(MockSettings(fail_rate=0.5, seed=seed))) as server:
            body = {"model": "m", "input": "x"}
            return [httpx.post(server.url + "/v1/embeddings", json=body).status_code for _ in range(20)]

    first = failures(7)
    assert first == failures(7)
    assert 0 < first.count(500) < 20


def test_garbage_is_a_200_the_client_cannot_parse(mock: RunningServer) -> None:
    set_mock(mock, garbage=True)
    raw = httpx.post(mock.url + "/v1/chat/completions", json={"model": "m", "messages": CHAT})
    assert raw.status_code == 200
    with pytest.raises(ValueError):
        raw.json()
    with pytest.raises(ValueError):  # the openai client fails to decode the body
        client(mock).chat.completions.create(model="m", messages=CHAT)


def test_truncated_stream_ends_without_done_and_the_client_sees_an_error(mock: RunningServer) -> None:
    set_mock(mock, truncate_stream_after=3)
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in client(mock).chat.completions.create(model="m", messages=CHAT, stream=True):
            received.append(chunk)
    assert len(received) == 3


def test_hang_times_out_the_client_and_is_released_when_switched_off(mock: RunningServer) -> None:
    set_mock(mock, hang=True)
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        client(mock, timeout=0.3).chat.completions.create(model="m", messages=CHAT)
    assert time.monotonic() - started < 2
    set_mock(mock, hang=False)
    assert client(mock).chat.completions.create(model="m", messages=CHAT).choices
    time.sleep(0.1)
    assert httpx.get(mock.url + "/_mock/stats").json()["in_flight"] == 0


def test_latency_and_token_pace(mock: RunningServer) -> None:
    set_mock(mock, latency_s=0.15, tokens_per_s=100)
    started = time.monotonic()
    stream = client(mock).chat.completions.create(model="m", messages=CHAT, max_tokens=11, stream=True)
    first_content = None
    for chunk in stream:
        if first_content is None and chunk.choices and chunk.choices[0].delta.content:
            first_content = time.monotonic() - started
    total = time.monotonic() - started
    assert first_content is not None and first_content >= 0.15
    assert total >= 0.15 + 0.1 * 0.9  # 10 gaps between 11 tokens at 100 tokens/s


def test_control_endpoint_merges_settings_counts_calls_and_keeps_recent_bodies(mock: RunningServer) -> None:
    assert set_mock(mock, completion_tokens=3)["completion_tokens"] == 3
    assert client(mock).chat.completions.create(model="m", messages=CHAT).usage.completion_tokens == 3
    client(mock).embeddings.create(model="m", input="x")
    stats = httpx.get(mock.url + "/_mock/stats").json()
    assert stats["by_endpoint"] == {"/v1/chat/completions": 1, "/v1/embeddings": 1}
    assert stats["requests_total"] == 2 and stats["replica_id"] == "r1"
    recent = httpx.get(mock.url + "/_mock/requests?limit=1").json()
    assert recent[0]["path"] == "/v1/embeddings" and recent[0]["body"]["input"] == "x"

    bad = httpx.post(mock.url + "/_mock/settings", json={"fail_rat": 1, "latency_s": "slow"})
    assert bad.status_code == 400
    assert "fail_rat: unknown setting" in bad.json()["error"] and "latency_s: expected float" in bad.json()["error"]
    assert httpx.post(mock.url + "/_mock/settings", json={"fail_rate": 2}).status_code == 400
    assert httpx.post(mock.url + "/_mock/reset").json()["requests_total"] == 0


# --- Open Inference Protocol mock -------------------------------------------------------------------


@pytest.fixture(scope="module")
def iris_model() -> LogisticRegression:
    x, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=500).fit(x, y)


@pytest.fixture
def oip(iris_model: LogisticRegression) -> Iterator[RunningServer]:
    settings = MockSettings(model="iris", version="2", replica_id="o1")
    with serve_in_thread(oip_app(settings, OipModel.from_estimator(iris_model))) as server:
        yield server


def test_oip_infer_with_sklearn_equals_the_estimator(oip: RunningServer, iris_model: LogisticRegression) -> None:
    x, _ = load_iris(return_X_y=True)
    body = {"id": "req-1", "inputs": encode_inputs({"input-0": x})}
    response = httpx.post(oip.url + "/v2/models/iris/infer", json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert (result["model_name"], result["model_version"], result["id"]) == ("iris", "2", "req-1")
    assert response.headers["x-mock-replica"] == "o1"
    outputs = decode_outputs(result)
    np.testing.assert_array_equal(outputs["predict"], iris_model.predict(x))
    np.testing.assert_allclose(outputs["predict_proba"], iris_model.predict_proba(x), rtol=1e-12)

    one_output = {
        "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [[5.1, 3.5, 1.4, 0.2]]}],
        "outputs": [{"name": "predict"}],
    }
    versioned = httpx.post(oip.url + "/v2/models/iris/versions/2/infer", json=one_output).json()
    assert [o["name"] for o in versioned["outputs"]] == ["predict"]
    assert versioned["outputs"][0]["data"] == [0] and versioned["outputs"][0]["datatype"] == "INT64"


def test_oip_metadata_health_and_unknown_names(oip: RunningServer) -> None:
    assert httpx.get(oip.url + "/v2").json()["name"] == "aisre-mock-oip"
    assert httpx.get(oip.url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(oip.url + "/v2/health/ready").json() == {"ready": True}
    meta = httpx.get(oip.url + "/v2/models/iris").json()
    assert meta["versions"] == ["2"] and meta["platform"] == "sklearn"
    assert meta["inputs"][0]["shape"] == [-1, 4]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    assert httpx.get(oip.url + "/v2/models/iris/ready").json()["ready"] is True
    missing = httpx.post(oip.url + "/v2/models/nope/infer", json={})
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    assert httpx.post(oip.url + "/v2/models/iris/versions/9/infer", json={}).status_code == 404
    set_mock(oip, healthy=False)
    assert httpx.get(oip.url + "/v2/health/ready").status_code == 503


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "inputs: required"),
        ({"inputs": []}, "inputs: expected a non-empty list"),
        (
            {"inputs": [{"name": "x", "shape": [3, 2], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
            "inputs[0].shape: product 6 does not match 4 values",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP33", "data": [1, 2, 3, 4]}]},
            "inputs[0].datatype: unknown 'FP33'",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, "a", 3, 4]}]},
            "inputs[0].data: expected FP32 numbers, got 'a' at flat index 1",
        ),
        ({"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32"}]}, "inputs[0].data: required"),
        ({"inputs": [{"name": "x", "shape": "1x4", "datatype": "FP32", "data": [1, 2, 3, 4]}]}, "inputs[0].shape"),
        (
            {"inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3]]}]},
            "inputs[0].data: nested lists are ragged",
        ),
        (
            {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]},
            "inputs: 3 features per row, the model expects 4",
        ),
        (
            {
                "inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}],
                "outputs": [{"name": "logits"}],
            },
            "outputs[0].name: unknown output 'logits'",
        ),
    ],
)
def test_malformed_oip_payloads_get_400_naming_the_field(oip: RunningServer, body: dict, message: str) -> None:
    response = httpx.post(oip.url + "/v2/models/iris/infer", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_oip_failure_modes_and_bad_json(oip: RunningServer) -> None:
    assert httpx.post(oip.url + "/v2/models/iris/infer", content=b"{").status_code == 400
    set_mock(oip, fail_rate=1.0, fail_status=503)
    failed = httpx.post(oip.url + "/v2/models/iris/infer", json={})
    assert failed.status_code == 503 and "error" in failed.json()
    set_mock(oip, fail_rate=0.0, hang=True)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(oip.url + "/v2/models/iris/infer", json={}, timeout=0.2)


def test_oip_tensor_helpers_round_trip_and_check_values() -> None:
    arrays = {
        "f": np.arange(6, dtype=np.float32).reshape(2, 3),
        "i": np.array([1, 2], dtype=np.int64),
        "s": np.array(["a", "b"]),
        "b": np.array([True, False]),
    }
    tensors = encode_inputs(arrays)
    assert [t["datatype"] for t in tensors] == ["FP32", "INT64", "BYTES", "BOOL"]
    decoded = decode_inputs({"inputs": tensors})
    for name, array in arrays.items():
        np.testing.assert_array_equal(decoded[name], array)
    assert decoded["f"].dtype == np.float32 and decoded["s"].dtype == object
    nested = decode_inputs({"inputs": [{"name": "n", "shape": [2, 2], "datatype": "INT32", "data": [[1, 2], [3, 4]]}]})
    assert nested["n"].tolist() == [[1, 2], [3, 4]]
    with pytest.raises(TensorError, match=r"inputs\[0\].data: expected INT64 integers, got 1.5"):
        decode_inputs({"inputs": [{"name": "i", "shape": [1], "datatype": "INT64", "data": [1.5]}]})
    with pytest.raises(TensorError, match=r"out of range for UINT8"):
        decode_inputs({"inputs": [{"name": "u", "shape": [1], "datatype": "UINT8", "data": [300]}]})
    with pytest.raises(TensorError, match=r"inputs\[1\].name: duplicate"):
        decode_inputs({"inputs": [tensors[1], tensors[1]]})


# --- subprocess servers -----------------------------------------------------------------------------


def test_subprocess_server_can_be_killed_and_restarted_on_the_same_port() -> None:
    with serve_in_subprocess("openai", replica_id="p1", completion_tokens=2) as process:
        url = process.url + "/v1/chat/completions"
        body = {"model": "m", "messages": CHAT}
        first = httpx.post(url, json=body)
        assert first.json()["choices"][0]["message"]["content"] == "mock reply"
        assert first.headers["x-mock-replica"] == "p1"
        port, pid = process.port, process.pid
        process.kill()
        assert not process.alive
        with pytest.raises(httpx.ConnectError):
            httpx.post(url, json=body)
        process.restart()
        assert (process.port, process.alive) == (port, True) and process.pid != pid
        assert httpx.post(url, json=body).status_code == 200
    assert not process.alive


def test_subprocess_oip_server_serves_a_joblib_model(tmp_path, iris_model: LogisticRegression) -> None:
    path = tmp_path / "iris.joblib"
    joblib.dump(iris_model, path)
    x, _ = load_iris(return_X_y=True)
    with serve_in_subprocess("oip", sklearn=path, model="iris", latency_s=0.0) as process:
        body = {"inputs": encode_inputs({"x": x[:10]})}
        result = httpx.post(process.url + "/v2/models/iris/infer", json=body, timeout=10).json()
        np.testing.assert_array_equal(decode_outputs(result)["predict"], iris_model.predict(x[:10]))
