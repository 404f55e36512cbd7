"""Fuzzing the gateway over its request schemas and raw malformed bodies (hypothesis).

Whatever arrives, the answer is a 2xx/4xx, or a 502/503/504 when an upstream is at fault:
never a 500, never a crash, and the gateway keeps serving afterwards.
"""

from __future__ import annotations

import json

import httpx
import joblib
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from aisre.testing.openai_server import openai_app
from aisre.testing.server import serve_in_thread
from aisre.testing.settings import MockSettings

from .gateway_helpers import RunningGateway, gateway_config

json_scalar = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=30)
json_value = st.recursive(
    json_scalar, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4), max_leaves=15
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant"]) | json_scalar},
    optional={"content": st.text(max_size=40) | json_value},
)
openai_body = st.fixed_dictionaries(
    {"model": st.sampled_from(["chat", "fraud", "nope", ""]) | json_scalar},
    optional={
        "messages": st.lists(message, max_size=3) | json_value,
        "stream": st.booleans() | json_scalar,
        "max_tokens": st.integers(-5, 50) | json_scalar,
        "prompt": st.text(max_size=20) | json_value,
        "input": st.lists(st.text(max_size=10), max_size=3) | json_value,
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": json_scalar}) | json_value,
        "n": st.integers(-1, 3) | json_scalar,
    },
)
tensor = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=8) | json_scalar,
        "shape": st.lists(st.integers(-2, 6), max_size=3) | json_value,
        "datatype": st.sampled_from(["FP64", "FP32", "INT64", "BOOL", "BYTES", "FP99"]) | json_scalar,
        "data": st.lists(st.floats() | st.integers(-(2**66), 2**66) | st.text(max_size=4), max_size=12) | json_value,
    },
)
oip_body = st.fixed_dictionaries({}, optional={"inputs": st.lists(tensor, max_size=3) | json_value, "id": json_scalar})


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    model = LogisticRegression().fit(np.random.default_rng(0).normal(size=(40, 3)), [0, 1] * 20)
    joblib.dump(model, tmp / "m.joblib")
    flaky = serve_in_thread(openai_app(MockSettings(fail_rate=0.3, fail_status=503, seed=1)))
    cfg = gateway_config(
        tmp,
        {
            "chat": {"protocol": "openai", "versions": {"v1": {"replicas": [f"{flaky.url}/v1"]}}},
            "fraud": {"protocol": "oip", "versions": {"v1": {"sklearn": str(tmp / "m.joblib")}}},
        },
        gateway={"max_body_bytes": 50_000, "retries": {"attempts": 1}},
    )
    with RunningGateway(cfg) as gw, httpx.Client(base_url=gw.url, timeout=10) as client:
        yield gw, client
    flaky.stop()


def _post(client: httpx.Client, path: str, body: object) -> httpx.Response:
    # json.dumps writes NaN/Infinity as bare tokens: not JSON, which is one more thing to survive.
    return client.post(path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


def _check(response: httpx.Response) -> None:
    assert response.status_code < 500 or response.status_code in (502, 503, 504), response.text
    if response.status_code >= 400:
        assert "error" in response.json()


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(body=openai_body, path=st.sampled_from(["/v1/chat/completions", "/v1/completions", "/v1/embeddings"]))
def test_openai_schema_fuzz(gateway, body, path):
    _, client = gateway
    _check(_post(client, path, body))


@FUZZ
@given(
    body=oip_body,
    path=st.sampled_from(
        ["/v2/models/fraud/infer", "/v2/models/fraud/versions/v1/infer", "/v2/models/chat/infer", "/v2/models/x/infer"]
    ),
)
def test_oip_schema_fuzz(gateway, body, path):
    _, client = gateway
    _check(_post(client, path, body))


@FUZZ
@given(
    raw=st.binary(max_size=300) | st.text(max_size=300).map(str.encode),
    path=st.sampled_from(["/v1/chat/completions", "/v1/embeddings", "/v2/models/fraud/infer"]),
    content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]),
)
def test_raw_malformed_bodies(gateway, raw, path, content_type):
    _, client = gateway
    _check(client.post(path, content=raw, headers={"content-type": content_type}))


def test_the_gateway_is_still_serving_after_fuzzing(gateway):
    gw, client = gateway
    for path in ("/healthz", "/v2/health/live"):
        assert client.get(path).status_code == 200
    body = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64", "data": [0.1, 0.2, 0.3]}]}
    assert client.post("/v2/models/fraud/infer", json=body).status_code == 200
    assert "aisre_gateway_rejected_requests_total" in client.get("/metrics").text
