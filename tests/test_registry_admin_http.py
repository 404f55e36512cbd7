"""The registry and incidents through a real gateway's admin API (uvicorn on 127.0.0.1): the admin key is required,
a promote or rollback moves the served model's routing, errors name their field with 400/404/409, and a change
made by the CLI in another process reaches the running gateway through the registry follower."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from aisre.gateway.registry_sync import RegistryFollower
from aisre.respond import Incidents, Registry

from .gateway_helpers import RunningGateway, eventually, gateway_config
from .test_cli import aisre_cli

ADMIN = "admin-" + "r" * 30
DOWN = {"replicas": ["http://127.0.0.1:9"]}  # never called: these tests only route


@pytest.fixture
def gw(tmp_path: Path):
    models = {
        "fraud": {"protocol": "oip", "versions": {"v1": DOWN, "v2": DOWN, "v3": DOWN}, "route": {"v1": 80, "v2": 20}}
    }
    cfg = gateway_config(tmp_path, models, auth={"admin_key": ADMIN}, gateway={"health_checks": {"enabled": False}})
    with RunningGateway(cfg) as running:
        running.registry = Registry(running.gateway.recorder.store)
        for v in ("v1", "v2", "v3"):
            running.registry.register("fraud", v, actor="test")
        running.client = httpx.Client(base_url=running.url, headers={"authorization": f"Bearer {ADMIN}"}, timeout=30)
        yield running
        running.client.close()


def weights(gw: RunningGateway) -> dict[str, float]:
    return dict(gw.gateway.routing.models["fraud"].weights)


def error(response: httpx.Response) -> dict:
    return response.json()["error"]


def test_registry_routes_require_the_admin_key(gw):
    for method, path in [
        ("GET", "/admin/models"),
        ("POST", "/admin/models/fraud/versions/v2/promote"),
        ("POST", "/admin/models/fraud/rollback"),
        ("GET", "/admin/incidents"),
        ("POST", "/admin/incidents/1/ack"),
    ]:
        response = httpx.request(method, gw.url + path, json={"to": "stable"})
        assert response.status_code == 401, path
        wrong = httpx.request(method, gw.url + path, json={"to": "stable"}, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401, path
    assert gw.registry.stable("fraud") is None  # nothing was promoted


def test_promote_and_rollback_move_the_routing(gw):
    c = gw.client
    stable = c.post("/admin/models/fraud/versions/v1/promote", json={"to": "stable", "reason": "first release"})
    assert stable.status_code == 200 and stable.json()["routing"]["weights"] == {"v1": 100.0}
    canary = c.post("/admin/models/fraud/versions/v2/promote", json={"to": "canary"}).json()
    assert canary["status"] == "canary" and canary["stable"] == "v1"
    assert weights(gw) == {"v1": 80.0, "v2": 20.0}  # the canary's weight from the config's route
    shadow = c.post("/admin/models/fraud/versions/v3/promote", json={"to": "shadow"}).json()
    assert shadow["routing"]["shadow"] == "v3" and gw.gateway.routing.models["fraud"].shadow_version == "v3"
    rolled = c.post("/admin/models/fraud/rollback", json={"reason": "accuracy fell"}).json()
    assert (rolled["kind"], rolled["rolled_back"], rolled["stable"]) == ("canary", ["v2"], "v1")
    assert weights(gw) == {"v1": 100.0}
    c.post("/admin/models/fraud/versions/v3/promote", json={"to": "stable"}).raise_for_status()
    assert weights(gw) == {"v3": 100.0}
    back = c.post("/admin/models/fraud/rollback")  # no body: the reason is optional
    assert back.status_code == 200 and back.json()["stable"] == "v1" and weights(gw) == {"v1": 100.0}
    detail = c.get("/admin/models/fraud").json()
    assert detail["stable"] == "v1" and detail["served"] is True
    history = [(h["version"], h["action"], h["to_status"], h["actor"]) for h in detail["history"]]
    assert history[-2:] == [("v3", "rollback", "retired", "api:admin"), ("v1", "rollback", "stable", "api:admin")]
    assert detail["history"][3]["reason"] == "first release"
    listed = c.get("/admin/models").json()["models"]
    assert [(m["model"], m["stable"]) for m in listed] == [("fraud", "v1")]


@pytest.mark.parametrize(
    ("path", "body", "status", "param", "text"),
    [
        ("/admin/models/fraud/versions/v2/promote", {"to": "production"}, 400, "to", "must be one of candidate"),
        ("/admin/models/fraud/versions/v2/promote", {}, 400, "to", "field 'to'"),
        ("/admin/models/fraud/versions/v2/promote", {"to": "canary", "why": "x"}, 400, "why", "unknown field 'why'"),
        ("/admin/models/fraud/versions/v2/promote", {"to": "canary", "reason": 5}, 400, "reason", "'reason'"),
        ("/admin/models/fraud/versions/v9/promote", {"to": "canary"}, 404, "version", "no version 'v9'"),
        ("/admin/models/churn/versions/v1/promote", {"to": "canary"}, 404, "model", "'churn' is not registered"),
        ("/admin/models/fraud/versions/v2/promote", {"to": "candidate"}, 409, "to", "it already is"),
        ("/admin/models/fraud/rollback", {}, 409, None, "nothing to roll back"),
        ("/admin/incidents/abc/ack", {}, 400, "id", "must be a number"),
        ("/admin/incidents/77/resolve", {}, 404, "id", "no incident 77"),
    ],
)
def test_bad_requests_answer_400_404_409_naming_what_was_wrong(gw, path, body, status, param, text):
    response = gw.client.post(path, json=body)
    assert response.status_code == status
    assert text in error(response)["message"] and error(response)["param"] == param


def test_a_get_for_an_unknown_model_or_incident_is_404(gw):
    assert gw.client.get("/admin/models/churn").status_code == 404
    assert gw.client.get("/admin/incidents/5").status_code == 404
    bad = gw.client.get("/admin/incidents", params={"status": "closed"})
    assert bad.status_code == 400 and error(bad)["param"] == "status"


def test_incidents_list_show_ack_resolve(gw):
    incidents = Incidents(gw.gateway.recorder.store)
    opened = incidents.open("fraud v2 drift", model="fraud", version="v2", trigger="drift:fraud", actor="playbook:x")
    number = opened.incident.id
    c = gw.client
    assert [i["id"] for i in c.get("/admin/incidents", params={"status": "open"}).json()["incidents"]] == [number]
    acked = c.post(f"/admin/incidents/{number}/ack", json={"note": "looking"})
    assert (
        acked.status_code == 200
        and acked.json()["status"] == "acknowledged"
        and acked.json()["acked_by"] == "api:admin"
    )
    again = c.post(f"/admin/incidents/{number}/ack")
    assert again.status_code == 409 and "already acknowledged" in error(again)["message"]
    assert c.post(f"/admin/incidents/{number}/resolve", json={"note": "rolled back"}).json()["status"] == "resolved"
    shown = c.get(f"/admin/incidents/{number}").json()
    assert [(e["kind"], e["summary"]) for e in shown["events"]] == [
        ("trigger", "fraud v2 drift"),
        ("ack", "looking"),
        ("resolve", "rolled back"),
    ]
    assert c.get("/admin/incidents", params={"status": "open"}).json()["incidents"] == []


def test_a_promotion_made_by_the_cli_reaches_the_running_gateway(gw):
    loop = gw.server.servers[0].get_loop()  # the gateway's event loop
    follower = RegistryFollower(gw.gateway, Registry(gw.gateway.recorder.store), interval_s=0.1)
    asyncio.run_coroutine_threadsafe(follower.start(), loop).result(30)
    try:
        store = gw.gateway.recorder.store.url
        assert weights(gw) == {"v1": 80.0, "v2": 20.0}  # no stable version registered: the config's route holds
        for version, to in (("v3", "stable"), ("v2", "canary")):
            out = aisre_cli("models", "promote", "fraud", version, "--to", to, "--store", store)
            assert out.returncode == 0, out.stderr
        eventually(lambda: weights(gw) == {"v3": 80.0, "v2": 20.0})
        out = aisre_cli("models", "rollback", "fraud", "--reason", "from the CLI", "--store", store)
        assert out.returncode == 0, out.stderr
        eventually(lambda: weights(gw) == {"v3": 100.0})
    finally:
        asyncio.run_coroutine_threadsafe(follower.stop(), loop).result(30)


def test_weights_set_by_hand_stay_until_the_models_plan_changes(gw):
    loop = gw.server.servers[0].get_loop()
    registry = gw.registry
    registry.promote("fraud", "v1", "stable", actor="test")
    follower = RegistryFollower(gw.gateway, Registry(gw.gateway.recorder.store), interval_s=0.1)
    asyncio.run_coroutine_threadsafe(follower.start(), loop).result(30)
    try:
        assert weights(gw) == {"v1": 100.0}
        shifted = gw.client.put("/admin/models/fraud/route", json={"weights": {"v1": 50, "v3": 50}})
        assert shifted.status_code == 200  # e.g. a playbook moving traffic off a sick version
        registry.register("fraud", "v4", actor="test")  # the revision moves, fraud's plan does not
        registry.register("churn", "v1", actor="test")
        eventually(lambda: follower.revision == registry.revision())
        assert weights(gw) == {"v1": 50.0, "v3": 50.0}
        registry.promote("fraud", "v2", "canary", actor="test")  # the plan changes: the registry routes again
        eventually(lambda: weights(gw) == {"v1": 80.0, "v2": 20.0})
    finally:
        asyncio.run_coroutine_threadsafe(follower.stop(), loop).result(30)


def test_a_model_shows_each_versions_newest_offline_evaluation(gw):
    from aisre.respond.evaluation import EvaluationResult, save_evaluation
    from aisre.respond.evaluation_checks import Check

    low = Check("quality", "accuracy", 0.7, 0.65, 0.75, 0.9, "min", 0.7, "value", False)
    store = gw.gateway.recorder.store
    common = {"task": "binary", "data": {}, "target": {}, "metrics": {}}
    save_evaluation(store, EvaluationResult("fraud", "v2", 1.0, False, [low], **common))
    save_evaluation(store, EvaluationResult("fraud", "v3", 2.0, True, [], **common))
    versions = {v["version"]: v["evaluation"] for v in gw.client.get("/admin/models/fraud").json()["versions"]}
    assert versions["v1"] is None
    assert (versions["v2"]["passed"], versions["v2"]["failed"]) == (False, ["accuracy"])
    assert (versions["v3"]["passed"], versions["v3"]["ts"]) == (True, 2.0)
