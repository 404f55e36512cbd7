"""Keys, limits, budgets, cost and the admin API through a real gateway (one process, state in memory)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from aisre.store.keys import KeyStore
from aisre.testing.openai_server import openai_app
from aisre.testing.server import serve_in_thread
from aisre.testing.settings import MockSettings

from .gateway_helpers import RunningGateway, gateway_config

BODY = {"model": "chat", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 10}
ADMIN = "admin-" + "x" * 30


@pytest.fixture
def upstream():
    server = serve_in_thread(openai_app(MockSettings(completion_tokens=10)))
    yield server
    server.stop()


@pytest.fixture
def gw(tmp_path: Path, upstream, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AISRE_KEY_SECRET", "s" * 40)
    cfg = gateway_config(
        tmp_path,
        {
            "chat": {
                "protocol": "openai",
                "budget": {"usd": 1.0, "period": "daily"},
                "versions": {
                    "v1": {
                        "replicas": [f"{upstream.url}/v1"],
                        "price": {"input_per_1m_usd": 1000, "output_per_1m_usd": 2000},
                    },
                    "v2": {"replicas": [f"{upstream.url}/v1"]},
                },
                "route": {"v1": 100},
            },
            "other": {"protocol": "openai", "versions": {"v1": {"replicas": [f"{upstream.url}/v1"]}}},
        },
        auth={"enabled": True, "admin_key": ADMIN},
    )
    with RunningGateway(cfg) as running:
        running.keys = KeyStore(running.gateway.recorder.store)
        yield running


def post(gw, key: str | None, body: dict = BODY) -> httpx.Response:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(f"{gw.url}/v1/chat/completions", json=body, headers=headers)


def test_keys_are_required_checked_and_revoked_at_once(gw):
    _, secret = gw.keys.create("ci", models=["chat"])
    assert post(gw, secret).status_code == 200
    r = post(gw, None)
    assert r.status_code == 401 and "missing API key" in r.json()["error"]["message"]
    r = post(gw, secret[:-4] + "AAAA")
    assert r.status_code == 401 and r.json()["error"]["message"] == "invalid API key"
    r = post(gw, secret, {**BODY, "model": "other"})
    assert r.status_code == 403 and "may not use model 'other'" in r.json()["error"]["message"]
    gw.keys.revoke("ci")
    r = post(gw, secret)
    assert r.status_code == 401 and "revoked" in r.json()["error"]["message"]
    metrics = httpx.get(f"{gw.url}/metrics", headers={"authorization": f"Bearer {ADMIN}"}).text
    assert secret not in metrics and 'aisre_gateway_rejected_requests_total{reason="unauthenticated"}' in metrics


def test_rpm_of_a_key_answers_429_with_retry_after_and_ratelimit_headers(gw):
    _, secret = gw.keys.create("small", rpm=3)
    statuses = [post(gw, secret).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    ok = post(gw, secret)
    assert ok.status_code == 429
    assert int(ok.headers["retry-after"]) >= 1
    assert ok.headers["x-ratelimit-limit-requests"] == "3" and ok.headers["x-ratelimit-remaining-requests"] == "0"
    assert ok.json()["error"]["code"] == "rate_limit_exceeded" and "key 'small'" in ok.json()["error"]["message"]


def test_cost_on_records_is_usage_times_price_and_budgets_stop_spending(gw):
    _, secret = gw.keys.create("spender", budget_usd=0.05, budget_period="monthly")
    first = post(gw, secret)
    assert first.status_code == 200
    usage = first.json()["usage"]
    expected = usage["prompt_tokens"] * 1000 / 1e6 + usage["completion_tokens"] * 2000 / 1e6
    gw.gateway.recorder.flush()
    record = gw.gateway.recorder.store.get(first.headers["x-aisre-record-id"])
    assert record.cost_usd == pytest.approx(expected, rel=1e-12) and record.key_id.startswith("key_")
    statuses = [post(gw, secret).status_code for _ in range(3)]  # each call costs 0.022 USD
    assert statuses[:1] == [200] and statuses[-1] == 429
    refused = post(gw, secret)
    error = refused.json()["error"]
    assert error["code"] == "insufficient_quota" and "budget of key 'spender' exhausted" in error["message"]
    assert "resets" in error["message"] and "retry-after" in refused.headers


def test_admin_api_sets_weights_and_breakers_and_manages_keys(gw):
    admin = {"authorization": f"Bearer {ADMIN}"}
    assert httpx.get(f"{gw.url}/admin/routes").status_code == 401
    r = httpx.put(f"{gw.url}/admin/models/chat/route", json={"weights": {"v1": 0, "v2": 100}}, headers=admin)
    assert r.status_code == 200
    created = httpx.post(f"{gw.url}/admin/keys", json={"name": "via-admin", "rpm": 100}, headers=admin)
    assert created.status_code == 201 and created.json()["secret"].startswith("sk-aisre-")
    secret = created.json()["secret"]
    served = post(gw, secret)
    assert served.status_code == 200, served.text
    assert served.headers["x-aisre-version"] == "v2"
    r = httpx.put(f"{gw.url}/admin/models/chat/versions/v2/breaker", json={"open": True}, headers=admin)
    assert r.status_code == 200
    assert post(gw, secret).headers["x-aisre-version"] == "v1"  # v2's breaker is open
    listed = httpx.get(f"{gw.url}/admin/keys", headers=admin).json()
    assert [k["name"] for k in listed] == ["via-admin"] and "secret" not in listed[0]
    assert secret not in httpx.get(f"{gw.url}/admin/keys", headers=admin).text
    assert httpx.delete(f"{gw.url}/admin/keys/via-admin", headers=admin).status_code == 200
    assert post(gw, secret).status_code == 401
    bad = httpx.put(f"{gw.url}/admin/models/chat/route", json={"weights": {"v9": 1}}, headers=admin)
    assert bad.status_code == 400 and "unknown versions ['v9']" in bad.json()["error"]["message"]
