"""Who learns what from a real gateway with auth on: the key is checked before anything else, listings
and "not found" hints show only a key's models, /metrics wants a token, and config problems stop the
gateway at start-up instead of failing requests."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from aisre.errors import ConfigError
from aisre.gateway.app import create_app
from aisre.store import JsonlSink
from aisre.store.keys import KeyStore
from aisre.telemetry import Recorder
from aisre.testing.openai_server import openai_app
from aisre.testing.server import serve_in_thread
from aisre.testing.settings import MockSettings

from .gateway_helpers import RunningGateway, gateway_config

ADMIN = "admin-" + "a" * 30
SCRAPE = "scrape-" + "m" * 30
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
OIP_INPUTS = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}


@pytest.fixture
def upstream():
    server = serve_in_thread(openai_app(MockSettings(completion_tokens=5)))
    yield server
    server.stop()


def models(upstream_url: str) -> dict:
    replica = {"replicas": [f"{upstream_url}/v1"]}
    return {
        "chat": {"protocol": "openai", "versions": {"v1": replica}},
        "other": {"protocol": "openai", "versions": {"v1": replica}},
        "fraud": {"protocol": "oip", "versions": {"v1": {"replicas": ["http://127.0.0.1:9"]}}},
        "risk": {"protocol": "oip", "versions": {"v1": {"replicas": ["http://127.0.0.1:9"]}}},
    }


@pytest.fixture
def gw(tmp_path: Path, upstream, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AISRE_KEY_SECRET", "s" * 40)
    cfg = gateway_config(
        tmp_path,
        models(upstream.url),
        auth={"enabled": True, "admin_key": ADMIN, "metrics_token": SCRAPE},
        gateway={"health_checks": {"enabled": False}},
    )
    with RunningGateway(cfg) as running:
        running.keys = KeyStore(running.gateway.recorder.store)
        yield running


def bearer(secret: str) -> dict[str, str]:
    return {"authorization": f"Bearer {secret}"}


def error_of(response: httpx.Response) -> str:
    body = response.json()["error"]
    return body["message"] if isinstance(body, dict) else body


# -- 1. the key first ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {**CHAT, "model": "no-such-model"}),
        ("/v1/chat/completions", {"model": 42}),
        ("/v1/embeddings", {"model": "other", "input": "x"}),
        ("/v2/models/no-such-model/infer", OIP_INPUTS),
        ("/v2/models/fraud/versions/v9/infer", OIP_INPUTS),
    ],
)
@pytest.mark.parametrize("key", [None, "sk-aisre-key_000000000000-" + "A" * 43, "not-a-key"])
def test_callers_without_a_valid_key_get_401_whatever_the_body_or_model(gw, path, body, key):
    r = httpx.post(f"{gw.url}{path}", json=body, headers=bearer(key) if key else {})
    assert r.status_code == 401, r.text
    message = error_of(r)
    assert "no-such-model" not in message and "chat" not in message and "fraud" not in message


@pytest.mark.parametrize("path", ["/v2/models/no-such-model", "/v2/models/fraud", "/v2/models/fraud/ready"])
def test_oip_model_metadata_and_readiness_need_a_key(gw, path):
    r = httpx.get(f"{gw.url}{path}")
    assert r.status_code == 401 and "fraud" not in r.text and "risk" not in r.text


def test_a_request_without_a_key_is_refused_before_its_body_is_read(gw):
    """The headers announce a body that never comes: a gateway reading it first would wait forever."""
    with socket.create_connection(("127.0.0.1", gw.port), timeout=15) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 1000\r\n\r\n{"
        )
        reply = sock.recv(65536)  # raises socket.timeout if the gateway waits for the body
    assert reply.startswith(b"HTTP/1.1 401"), reply[:200]


def test_a_key_gets_403_for_any_model_outside_its_list_whether_or_not_it_exists(gw):
    _, secret = gw.keys.create("team", models=["chat", "fraud"])
    forbidden = httpx.post(f"{gw.url}/v1/chat/completions", json={**CHAT, "model": "other"}, headers=bearer(secret))
    missing = httpx.post(f"{gw.url}/v1/chat/completions", json={**CHAT, "model": "ghost"}, headers=bearer(secret))
    assert forbidden.status_code == missing.status_code == 403
    assert error_of(missing) == error_of(forbidden).replace("'other'", "'ghost'")
    assert httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT, headers=bearer(secret)).status_code == 200
    oip_forbidden = httpx.get(f"{gw.url}/v2/models/risk", headers=bearer(secret))
    oip_missing = httpx.get(f"{gw.url}/v2/models/ghost", headers=bearer(secret))
    assert oip_forbidden.status_code == oip_missing.status_code == 403
    assert httpx.get(f"{gw.url}/v2/models/fraud/ready", headers=bearer(secret)).json()["name"] == "fraud"
    refused = httpx.post(f"{gw.url}/v2/models/risk/infer", json=OIP_INPUTS, headers=bearer(secret))
    assert refused.status_code == 403


def test_not_found_hints_list_only_the_models_the_key_may_use(gw):
    _, secret = gw.keys.create("typo", models=["chat", "ghost", "fraud", "spectre"])  # made without a config
    r = httpx.post(f"{gw.url}/v1/chat/completions", json={**CHAT, "model": "ghost"}, headers=bearer(secret))
    assert r.status_code == 404 and "['chat']" in error_of(r) and "other" not in error_of(r)
    r = httpx.get(f"{gw.url}/v2/models/spectre", headers=bearer(secret))
    assert r.status_code == 404 and "['fraud']" in error_of(r) and "risk" not in error_of(r)


# -- 2. listings -----------------------------------------------------------------------------------
def test_model_list_shows_only_what_the_key_may_use(gw):
    assert httpx.get(f"{gw.url}/v1/models").status_code == 401
    _, limited = gw.keys.create("limited", models=["chat", "fraud"])
    _, everything = gw.keys.create("everything")
    listed = httpx.get(f"{gw.url}/v1/models", headers=bearer(limited)).json()["data"]
    assert [m["id"] for m in listed] == ["chat"]
    listed = httpx.get(f"{gw.url}/v1/models", headers=bearer(everything)).json()["data"]
    assert [m["id"] for m in listed] == ["chat", "other"]


# -- 3. /metrics -------------------------------------------------------------------------------------
def test_metrics_want_the_scrape_token_or_the_admin_key_when_auth_is_on(gw):
    _, secret = gw.keys.create("spender")
    assert httpx.post(f"{gw.url}/v1/chat/completions", json=CHAT, headers=bearer(secret)).status_code == 200
    for headers in ({}, bearer("wrong"), bearer(secret)):
        refused = httpx.get(f"{gw.url}/metrics", headers=headers)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        assert "aisre_spend_usd_total" not in refused.text and "metrics_token" in error_of(refused)
    for token in (SCRAPE, ADMIN):
        scraped = httpx.get(f"{gw.url}/metrics", headers=bearer(token))
        assert scraped.status_code == 200 and "aisre_spend_usd_total" in scraped.text


def test_metrics_can_be_made_public_explicitly(tmp_path: Path, upstream, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AISRE_KEY_SECRET", "s" * 40)
    cfg = gateway_config(tmp_path, models(upstream.url), auth={"enabled": True, "metrics": "public"})
    with RunningGateway(cfg) as running:
        assert httpx.get(f"{running.url}/metrics").status_code == 200
        assert httpx.get(f"{running.url}/v1/models").status_code == 401  # the rest stays protected


@pytest.mark.parametrize(
    ("auth", "message"),
    [
        ({"enabled": True}, "set auth.metrics_token"),
        ({"enabled": True, "metrics": "public", "metrics_token": SCRAPE}, "auth.metrics is public but"),
        ({"metrics": "protected"}, "nothing can read it"),
    ],
)
def test_metrics_access_that_cannot_work_is_a_config_error(tmp_path: Path, auth: dict, message: str):
    with pytest.raises(ConfigError) as caught:
        gateway_config(tmp_path, {}, auth=auth)
    assert any(p.startswith("auth:") and message in p for p in caught.value.problems), caught.value.problems


def test_without_auth_metrics_stay_public(tmp_path: Path, upstream):
    with RunningGateway(gateway_config(tmp_path, models(upstream.url))) as running:
        assert httpx.get(f"{running.url}/metrics").status_code == 200


# -- 4. configuration problems at start-up, not 500s -------------------------------------------------
def test_a_weak_key_secret_stops_the_gateway_at_start_naming_the_config_key(
    tmp_path: Path, upstream, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AISRE_KEY_SECRET", "short")
    cfg = gateway_config(tmp_path, models(upstream.url), auth={"enabled": True, "admin_key": ADMIN})
    with pytest.raises(ConfigError) as caught:
        create_app(cfg)
    (problem,) = caught.value.problems
    assert problem.startswith("auth.key_secret_env:") and "at least 32" in problem


def test_keys_on_a_store_that_cannot_hold_them_stop_the_gateway_at_start(
    tmp_path: Path, upstream, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("AISRE_KEY_SECRET", "s" * 40)
    cfg = gateway_config(tmp_path, models(upstream.url), auth={"enabled": True, "admin_key": ADMIN})
    recorder = Recorder(JsonlSink(str(tmp_path / "records.jsonl")))
    try:
        with pytest.raises(ConfigError) as caught:
            create_app(cfg, recorder)
    finally:
        recorder.close()
    (problem,) = caught.value.problems
    assert problem.startswith("auth.enabled:") and "JsonlSink" in problem


# -- 5, 6. POST /admin/keys ----------------------------------------------------------------------------
@pytest.mark.parametrize("expires", ["30d", "12h", "2999-01-31", "2999-01-31T18:00Z", 32_503_680_000, "32503680000"])
def test_admin_api_accepts_every_expiry_form_the_cli_accepts(gw, expires):
    r = httpx.post(f"{gw.url}/admin/keys", json={"name": "k", "expires": expires}, headers=bearer(ADMIN))
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"] > r.json()["created_at"]


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"expires": "soon"}, "expires", "expected a duration from now like 30d"),
        ({"expires": "2001-01-01"}, "expires", "expected a time in the future"),
        ({"expires_at": "next week"}, "expires_at", "ISO 8601"),
        ({"models": ["chat", "nosuchmodel"]}, "models", "got 'nosuchmodel'"),
        ({"rpm": 0}, "rpm", "a whole number from 1 to 100,000,000"),
        ({"color": "red"}, "color", "accepts: budget_period, budget_usd, expires"),
    ],
)
def test_admin_api_names_the_bad_field_and_what_it_accepts(gw, body, param, message):
    r = httpx.post(f"{gw.url}/admin/keys", json={"name": "k", **body}, headers=bearer(ADMIN))
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and message in error["message"] and param in error["message"]
    assert gw.keys.list() == []


def test_admin_api_refuses_unknown_models_naming_the_known_ones(gw):
    r = httpx.post(f"{gw.url}/admin/keys", json={"name": "k", "models": ["nosuchmodel"]}, headers=bearer(ADMIN))
    assert r.status_code == 400
    assert "(chat, fraud, other, risk)" in error_of(r) and "'nosuchmodel'" in error_of(r)
    ok = httpx.post(f"{gw.url}/admin/keys", json={"name": "k", "models": ["chat"]}, headers=bearer(ADMIN))
    assert ok.status_code == 201 and ok.json()["models"] == ["chat"]
