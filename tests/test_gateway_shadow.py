"""The OpenAI shadow with keys on: the shadow replica gets the client's request, and the shadow
record carries the caller's key id (a real gateway, a real key, real mock replicas)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from aisre.store.keys import KeyStore
from aisre.testing.openai_server import openai_app
from aisre.testing.server import serve_in_thread
from aisre.testing.settings import MockSettings

from .gateway_helpers import RunningGateway, eventually, gateway_config

BODY = {"model": "chat", "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 5}


def test_a_shadow_gets_the_request_and_records_the_callers_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AISRE_KEY_SECRET", "s" * 40)
    served, shadow = (serve_in_thread(openai_app(MockSettings(replica_id=r))) for r in ("served", "shadow"))
    try:
        models = {
            "chat": {
                "protocol": "openai",
                "versions": {"v1": {"replicas": [f"{served.url}/v1"]}, "v2": {"replicas": [f"{shadow.url}/v1"]}},
                "route": {"v1": 100},
                "shadow": {"version": "v2", "sample": 1.0},
            }
        }
        config = gateway_config(tmp_path, models, auth={"enabled": True, "admin_key": "admin-" + "x" * 30})
        with RunningGateway(config) as gw:
            key, secret = KeyStore(gw.gateway.recorder.store).create("ci", models=["chat"])
            r = httpx.post(f"{gw.url}/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {secret}"})
            assert r.status_code == 200, r.text

            def shadow_record():
                gw.gateway.recorder.flush()
                return next((x for x in gw.gateway.recorder.store.records() if x.route == "shadow"), None)

            eventually(lambda: shadow_record() is not None)
            record = shadow_record()
            assert record.status == "ok" and record.key_id == key.id
            (mirrored,) = httpx.get(f"{shadow.url}/_mock/requests").json()
            assert mirrored["body"]["messages"] == BODY["messages"]
    finally:
        served.stop()
        shadow.stop()
