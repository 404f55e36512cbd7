"""The dashboard's JSON API (docs/dashboard.md) over a store a real drill filled, through a real server.

One drill (examples/drills/canary-full-loop.yaml: v2's inputs drift, its correctness SLO pages, its
breaker opens, the playbook rolls it back with an incident) runs once for the module; every number the
API answers is checked against an independent computation on the same store (SQL counts of the
records, `aisre.slo.evaluate`, the incident and registry tables).
"""

from __future__ import annotations

import math
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import uvicorn
from starlette.testclient import TestClient

from aisre.clock import ManualClock
from aisre.config.gateway import AuthConfig
from aisre.config.loader import config_from_dict
from aisre.dashboard.app import Prefixed, dashboard_app
from aisre.dashboard.data import DashboardData
from aisre.drills import Drill, load_scenario
from aisre.drills.engine import DrillContext, DrillHooks
from aisre.respond.registry import Registry
from aisre.slo import evaluate, history
from aisre.store import rollups
from aisre.store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[1]
API = "/dashboard/api/v1"


class Capture(DrillHooks):
    """Keeps the drill's models section and asks the live gateway's dashboard for its overview at the end."""

    models_section: dict[str, Any]
    live: dict[str, Any]
    live_breaker: str

    def models(self, models: dict[str, Any]) -> dict[str, Any]:
        self.models_section = models
        return models

    async def finished(self, ctx: DrillContext) -> None:
        transport = httpx.ASGITransport(app=ctx.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://drill") as client:
            self.live = (await client.get(f"{API}/overview")).json()
        self.live_weights = dict(ctx.gateway.routing.models["fraud"].weights)
        self.live_breaker = ctx.gateway.breakers.breakers[("fraud", "v2")].state.value


class Server:
    """uvicorn on 127.0.0.1 with a free port, in a thread."""

    def __init__(self, app: Any) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "dashboard server did not start"
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="module")
def drilled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("drill")
    hooks = Capture()
    drill = Drill(load_scenario(ROOT / "examples/drills/canary-full-loop.yaml"), workdir, hooks)
    drill.run()
    config = drill._config(hooks.models_section)  # the drill's full config (the gateway ran without its monitors)
    return {"config": config, "now": drill.clock.now(), "db": workdir / "aisre.db", "hooks": hooks, "dir": workdir}


@pytest.fixture(scope="module")
def store(drilled: dict[str, Any]) -> SQLiteStore:
    return SQLiteStore(drilled["db"])


@pytest.fixture(scope="module")
def clock(drilled: dict[str, Any]) -> ManualClock:
    return ManualClock(drilled["now"])


@pytest.fixture(scope="module")
def server(drilled: dict[str, Any], store: SQLiteStore, clock: ManualClock) -> Any:
    running = Server(Prefixed(dashboard_app(drilled["config"], store, clock)))
    yield running
    running.stop()


def get(server: Server, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{server.url}{API}{path}", params=params, timeout=30)


def sql(db: Path, query: str, *args: Any) -> list[tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(query, args).fetchall()
    finally:
        conn.close()


# -- overview -------------------------------------------------------------------------------------------------
def test_the_serving_gateways_dashboard_shows_its_routing_and_breakers(drilled: dict[str, Any]) -> None:
    hooks = drilled["hooks"]
    (fraud,) = hooks.live["models"]
    versions = {v["version"]: v for v in fraud["versions"]}
    assert fraud["stable"] == "v1"
    assert {v: versions[v]["weight"] for v in hooks.live_weights} == hooks.live_weights
    assert versions["v2"]["weight"] == 0.0  # rolled back
    assert versions["v2"]["breaker"]["state"] == hooks.live_breaker
    assert versions["v2"]["breaker"]["fallback"] == "rule:aisre.drills.rules:radius_rule"
    assert versions["v1"]["breaker"] is None  # no breaker configured on v1


def test_the_dashboard_alone_infers_weights_from_the_registry_and_breakers_from_the_incident_log(
    server: Server, drilled: dict[str, Any]
) -> None:
    body = get(server, "/overview").json()
    assert body["now"] == drilled["now"]  # the injected (drill) clock, not the machine's
    (fraud,) = body["models"]
    versions = {v["version"]: v for v in fraud["versions"]}
    assert (versions["v1"]["status"], versions["v1"]["weight"]) == ("stable", 100.0)
    assert (versions["v2"]["status"], versions["v2"]["weight"]) == ("retired", 0.0)
    live = {v["version"]: v for v in drilled["hooks"].live["models"][0]["versions"]}
    assert versions["v2"]["breaker"]["state"] == live["v2"]["breaker"]["state"]
    (opened_at,) = sql(drilled["db"], "SELECT opened_at FROM incidents WHERE trigger_key = 'breaker:fraud:v2'")[0]
    assert versions["v2"]["breaker"]["since"] >= opened_at
    unresolved = sql(drilled["db"], "SELECT status, count(*) FROM incidents WHERE status != 'resolved' GROUP BY 1")
    assert body["incidents"] == {"open": 0, "acknowledged": 0} | dict(unresolved)
    assert [s["name"] for s in body["slos"]] == ["fraud-v2-correctness"]


def test_last_hour_counts_equal_the_records_of_the_last_sixty_minutes(server: Server, drilled: dict[str, Any]) -> None:
    body = get(server, "/overview").json()
    minute = math.floor(drilled["now"] / 60)
    lo, hi = (minute - 59) * 60, (minute + 1) * 60
    for v in body["models"][0]["versions"]:
        ((n, errors, fallbacks),) = sql(
            drilled["db"],
            "SELECT count(*), total(status = 'error'), total(route = 'fallback') FROM inferences"
            " WHERE model = 'fraud' AND version = ? AND ts >= ? AND ts < ?",
            v["version"],
            lo,
            hi,
        )
        last = v["last_hour"]
        assert (last["requests"], last["errors"], last["fallbacks"]) == (n, errors, fallbacks)
        assert (last["latency_p50_s"] is None) == (n == 0)


# -- traffic --------------------------------------------------------------------------------------------------
def test_traffic_counts_equal_a_sql_count_of_the_records_per_step(server: Server, drilled: dict[str, Any]) -> None:
    body = get(server, "/models/fraud/traffic", since="12h", step="30m").json()
    step = body["step"]
    assert step == 1800 and all(b - a == step for a, b in zip(body["t"], body["t"][1:], strict=False))
    assert body["t"][0] <= drilled["now"] - 12 * 3600 < body["t"][0] + step
    assert set(body["versions"]) >= {"v1", "v2"}
    db = drilled["db"]
    for version, series in body["versions"].items():
        assert all(len(values) == len(body["t"]) for values in series.values())
        for k, start in enumerate(body["t"]):
            rows = sql(
                db,
                "SELECT status, route, latency_s FROM inferences WHERE model = 'fraud' AND version = ?"
                " AND ts >= ? AND ts < ?",
                version,
                start,
                start + step,
            )
            assert series["requests"][k] == len(rows)
            assert series["errors"][k] == sum(s == "error" for s, _, _ in rows)
            assert series["fallbacks"][k] == sum(r == "fallback" for _, r, _ in rows)
            latencies = [x for _, _, x in rows if x is not None]
            if not latencies:
                assert series["latency_p50_s"][k] is None  # no data: null, never a made-up 0
                continue
            for name, q in (("latency_p50_s", 50), ("latency_p99_s", 99)):
                exact = float(np.percentile(latencies, q, method="inverted_cdf"))
                lower, upper = rollups.bucket_bounds(exact)
                assert lower <= series[name][k] <= upper, (version, start, name)
    total = sum(sum(s["requests"]) for s in body["versions"].values())
    ((in_range,),) = sql(
        db, "SELECT count(*) FROM inferences WHERE ts >= ? AND ts < ?", body["t"][0], drilled["now"] + 1
    )
    assert total == in_range > 0


def test_traffic_of_one_version_and_a_default_step_of_at_most_720_points(server: Server) -> None:
    body = get(server, "/models/fraud/traffic", version="v1", since="30d").json()
    assert list(body["versions"]) == ["v1"]
    assert len(body["t"]) <= 720 and body["step"] % 60 == 0


# -- signals --------------------------------------------------------------------------------------------------
def test_drift_signals_are_the_stored_windows_grouped_by_feature(server: Server, drilled: dict[str, Any]) -> None:
    body = get(server, "/models/fraud/signals", kind="drift", since="2d").json()
    stored = sql(
        drilled["db"],
        "SELECT name, version, labels, window_end, value, breached FROM signals WHERE model = 'fraud'"
        " AND name IN ('data_drift_score', 'data_drift_share', 'dataset_drift') ORDER BY window_end, seq",
    )
    assert stored, "the drill's monitor wrote drift signals"
    by_key: dict[tuple[str, str, str], list[tuple[float, float, bool]]] = {}
    for name, version, labels, end, value, breached in stored:
        key = (name, version, orjson.dumps(orjson.loads(labels), option=orjson.OPT_SORT_KEYS).decode())
        by_key.setdefault(key, []).append((end, value, bool(breached)))
    got = {
        (s["name"], s["version"], orjson.dumps(s["labels"], option=orjson.OPT_SORT_KEYS).decode()): s
        for s in body["series"]
        if s["name"] in ("data_drift_score", "data_drift_share", "dataset_drift")
    }
    assert set(got) == set(by_key)
    for key, points in by_key.items():
        s = got[key]
        assert list(zip(s["t"], s["value"], s["breached"], strict=True)) == points
    assert any(s["name"] == "dataset_drift" and any(s["breached"]) for s in body["series"])  # the drill's drift
    assert {s["kind"] for s in body["series"]} == {"drift"}


def test_signals_of_one_kind_leave_the_others_out(server: Server) -> None:
    everything = get(server, "/models/fraud/signals", since="2d").json()["series"]
    drift = get(server, "/models/fraud/signals", kind="drift", since="2d").json()["series"]
    llm = get(server, "/models/fraud/signals", kind="llm", since="2d").json()["series"]
    assert llm == [] and 0 < len(drift) < len(everything)  # bookkeeping (window_rows) shows with `all` only


# -- SLOs -----------------------------------------------------------------------------------------------------
def test_slo_summaries_are_the_embedded_evaluators_numbers(
    server: Server, drilled: dict[str, Any], store: SQLiteStore, clock: ManualClock
) -> None:
    (report,) = evaluate(drilled["config"].slos, store, clock)
    (summary,) = get(server, "/slos").json()["slos"]
    assert report.budget is not None and summary["name"] == report.name
    assert summary["budget_remaining"] == pytest.approx(report.budget.remaining)
    assert summary["budget_consumed"] == pytest.approx(report.budget.consumed)
    assert summary["sli"] == pytest.approx(report.budget.sli)
    assert summary["burn_rates"] == pytest.approx(report.burn_rates)
    assert summary["freeze_promotions"] == report.freeze_promotions
    assert {a["severity"] for a in summary["alerts"]} == {"page", "ticket"}


def test_the_burn_down_series_equals_the_budget_history(
    server: Server, drilled: dict[str, Any], store: SQLiteStore
) -> None:
    until = math.floor(drilled["now"] / 3600) * 3600
    body = get(server, "/slos/fraud-v2-correctness", since=str(until - 12 * 3600), until=str(until), step="1h").json()
    assert len(body["t"]) == 12 and body["t"][0] == until - 12 * 3600
    slo = drilled["config"].slos[0]
    expected = dict(history(slo, store, until, 3600))
    for start, remaining in zip(body["t"], body["budget_remaining"], strict=True):
        want = expected[start + 3600]  # each point is the budget at the end of its step
        assert remaining == (None if want is None else pytest.approx(want))
    assert set(body["burn_rate"]) == {"1h", "6h"} and len(body["burn_rate"]["1h"]) == 12
    fired = [e for e in body["events"] if e["severity"] == "page" and e["state"] == "firing"]
    assert fired and until - 12 * 3600 <= fired[0]["t"] <= until  # the drill's page, replayed


# -- incidents and registry -----------------------------------------------------------------------------------
def test_incidents_are_the_incident_tables(server: Server, drilled: dict[str, Any]) -> None:
    listed = get(server, "/incidents").json()["incidents"]
    rows = sql(
        drilled["db"],
        "SELECT i.id, i.status, i.model, count(e.seq) FROM incidents i JOIN incident_events e"
        " ON e.incident_id = i.id GROUP BY i.id ORDER BY i.id DESC",
    )
    assert [(i["id"], i["status"], i["model"], i["events"]) for i in listed] == rows
    assert len(rows) >= 2  # the breaker's and the playbook's
    unresolved = get(server, "/incidents", status="unresolved").json()["incidents"]
    assert {i["id"] for i in unresolved} == {r[0] for r in rows if r[1] != "resolved"}
    assert len(get(server, "/incidents", limit="1").json()["incidents"]) == 1
    assert get(server, "/incidents", model="nope").json()["incidents"] == []


def test_an_incident_has_its_timeline(server: Server, drilled: dict[str, Any]) -> None:
    newest = get(server, "/incidents").json()["incidents"][0]
    body = get(server, f"/incidents/{newest['id']}").json()
    events = sql(
        drilled["db"],
        "SELECT at, kind, actor, summary FROM incident_events WHERE incident_id = ? ORDER BY seq",
        newest["id"],
    )
    assert [(e["at"], e["kind"], e["actor"], e["summary"]) for e in body["timeline"]] == events
    assert body["title"] == newest["title"] and body["events"] == len(events)
    assert any(e["kind"] == "action" for e in body["timeline"])  # the playbook's rollback


def test_the_registry_shows_versions_and_history(server: Server, store: SQLiteStore) -> None:
    body = get(server, "/models/fraud/registry").json()
    registry = Registry(store)
    assert body["stable"] == "v1"
    assert [(v["version"], v["status"]) for v in body["versions"]] == [
        (v.version, v.status) for v in registry.list("fraud")
    ]
    assert [(h["version"], h["to"], h["actor"]) for h in body["history"]] == [
        (h.version, h.to_status, h.actor) for h in registry.history("fraud")
    ]
    assert any(h["to"] == "retired" or h["version"] == "v2" and h["actor"] != "drill" for h in body["history"])


def test_a_model_served_from_the_config_but_never_registered_has_an_empty_registry(
    drilled: dict[str, Any], store: SQLiteStore, clock: ManualClock
) -> None:
    models = {
        **drilled["hooks"].models_section,
        "assistant": {"protocol": "openai", "versions": {"v1": {"replicas": ["http://127.0.0.1:9/v1"]}}},
    }
    config = drilled["config"].model_copy(update={"models": config_from_dict({"models": models}, "test").models})
    data = DashboardData(config, store, clock=clock)
    assert data.registry("assistant") == {
        "model": "assistant",
        "now": clock.now(),
        "stable": None,
        "versions": [],
        "history": [],
    }


# -- the drift report -----------------------------------------------------------------------------------------
def test_the_drift_report_is_the_html_page_of_the_newest_checked_window(server: Server) -> None:
    response = get(server, "/models/fraud/versions/v2/drift-report")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "Drift: fraud v2" in response.text and "fraud-v2-drift" in response.text
    missing = get(server, "/models/fraud/versions/v2/drift-report", monitor="nope")
    assert missing.status_code == 404 and missing.json()["error"]["param"] == "monitor"
    assert "fraud-v2-drift" in missing.json()["error"]["message"]  # names the jobs that exist


# -- bad input ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "params", "param"),
    [
        ("/models/fraud/traffic", {"since": "yesterday-ish"}, "since"),
        ("/models/fraud/traffic", {"until": "x"}, "until"),
        ("/models/fraud/traffic", {"since": "1h", "until": "2h"}, "until"),
        ("/models/fraud/traffic", {"step": "soon"}, "step"),
        ("/models/fraud/traffic", {"step": "90"}, "step"),
        ("/models/fraud/traffic", {"since": "30d", "step": "1m"}, "step"),
        ("/models/fraud/traffic", {"bogus": "1"}, "bogus"),
        ("/models/fraud/signals", {"kind": "vibes"}, "kind"),
        ("/slos/fraud-v2-correctness", {"step": "-5m"}, "step"),
        ("/incidents", {"status": "closed"}, "status"),
        ("/incidents", {"limit": "0"}, "limit"),
        ("/incidents", {"limit": "many"}, "limit"),
        ("/incidents/abc", {}, "id"),
        ("/incidents/99999999999999999999999", {}, "id"),
        ("/slos/fraud-v2-correctness", {"since": "1970-01-01"}, "since"),
        ("/models/fraud/traffic", {"since": "1e400"}, "since"),
        ("/models/fraud/traffic", {"step": "inf"}, "step"),
        ("/models/fraud/versions/v2/drift-report", {"since": "nope"}, "since"),
        ("/models/fraud/versions/v2/drift-report", {"since": "30d"}, "since"),
    ],
)
def test_a_bad_parameter_answers_400_naming_it(server: Server, path: str, params: dict[str, str], param: str) -> None:
    response = get(server, path, **params)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and error["message"].startswith(f"{param}:")


@pytest.mark.parametrize(
    ("path", "params", "param", "named"),
    [
        ("/models/nope/traffic", {}, "model", "fraud"),
        ("/models/fraud/traffic", {"version": "v9"}, "version", "v1"),
        ("/models/nope/registry", {}, "model", "fraud"),
        ("/slos/nope", {}, "name", "fraud-v2-correctness"),
        ("/incidents/9999", {}, "id", "newest"),
        ("/models/fraud/versions/v9/drift-report", {}, "version", "v2"),
        ("/no/such/endpoint", {}, "path", "Not Found"),
    ],
)
def test_an_unknown_name_answers_404_naming_what_exists(
    server: Server, path: str, params: dict[str, str], param: str, named: str
) -> None:
    response = get(server, path, **params)
    assert response.status_code == 404, response.text
    assert response.json()["error"]["param"] == param and named in response.json()["error"]["message"]


# -- access, pages and static files ---------------------------------------------------------------------------
def test_with_an_admin_key_the_api_wants_the_bearer_token_or_the_login_cookie(
    drilled: dict[str, Any], store: SQLiteStore, clock: ManualClock
) -> None:
    config = drilled["config"].model_copy(update={"auth": AuthConfig(admin_key="s3cret-admin")})
    with TestClient(Prefixed(dashboard_app(config, store, clock)), base_url="http://dash") as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-admin"}):
            refused = client.get(f"{API}/overview", headers=headers)
            assert refused.status_code == 401 and refused.json()["error"]["param"] == "authorization"
        assert client.get(f"{API}/overview", headers={"Authorization": "Bearer s3cret-admin"}).status_code == 200
        assert client.get("/dashboard/").status_code == 200  # the page is public: it shows the login form
        bad = client.post("/dashboard/login", data={"key": "guess"}, follow_redirects=False)
        assert bad.status_code == 401 and "aisre_dashboard" not in bad.cookies
        good = client.post("/dashboard/login", data={"key": "s3cret-admin"}, follow_redirects=False)
        assert good.status_code == 303 and good.headers["location"] == "/dashboard/"
        assert "s3cret-admin" not in good.headers["set-cookie"]  # the cookie holds an HMAC, not the key
        assert client.get(f"{API}/overview").status_code == 200  # the cookie now
        client.post("/dashboard/logout", follow_redirects=False)
        assert client.get(f"{API}/overview").status_code == 401


def test_pages_redirect_and_static_files_have_types_and_cache_headers(server: Server) -> None:
    redirect = httpx.get(f"{server.url}/dashboard", follow_redirects=False)
    assert redirect.status_code in (307, 308) and redirect.headers["location"].endswith("/dashboard/")
    page = httpx.get(f"{server.url}/dashboard/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    from aisre.dashboard.app import STATIC_DIR

    files = [p for p in STATIC_DIR.rglob("*") if p.is_file() and p.suffix in (".js", ".css")]
    if not files:
        pytest.skip("no static files in this build yet")
    for path in files[:3]:
        response = httpx.get(f"{server.url}/dashboard/static/{path.relative_to(STATIC_DIR).as_posix()}")
        # revalidated on every load (no stale mix of modules after an upgrade): 304 while unchanged
        assert response.status_code == 200 and response.headers["cache-control"] == "no-cache"
        again = httpx.get(
            f"{server.url}/dashboard/static/{path.relative_to(STATIC_DIR).as_posix()}",
            headers={"if-none-match": response.headers["etag"]},
        )
        assert again.status_code == 304
        want = "text/css" if path.suffix == ".css" else "javascript"
        assert want in response.headers["content-type"]
    assert httpx.get(f"{server.url}/dashboard/static/../data.py").status_code == 404


def test_the_library_answers_the_same_dicts_as_the_api(
    server: Server, drilled: dict[str, Any], store: SQLiteStore, clock: ManualClock
) -> None:
    data = DashboardData(drilled["config"], store, clock)
    assert get(server, "/incidents").json() == orjson.loads(orjson.dumps(data.incidents()))
    assert get(server, "/models/fraud/registry").json() == orjson.loads(orjson.dumps(data.registry("fraud")))


def test_the_gateway_serves_inference_first_and_the_dashboard_beside_it(
    drilled: dict[str, Any], tmp_path: Path
) -> None:
    from aisre.drills.traffic import ReferenceData, oip_request
    from tests.gateway_helpers import RunningGateway, eventually, gateway_config

    model_file = drilled["dir"] / "models" / "fraud-v1.joblib"
    models = {"fraud": {"protocol": "oip", "versions": {"v1": {"sklearn": str(model_file)}}}}
    config = gateway_config(
        tmp_path, models, store={"url": f"sqlite:///{tmp_path / 'gw.db'}", "flush_interval_s": 0.05}
    )
    rows = [
        {str(c): v for c, v in r.items()}
        for r in ReferenceData("breast_cancer", "mean_radius", 1).draw(5).X.to_dict("records")
    ]
    with RunningGateway(config) as gw:
        for row in rows:
            answer = httpx.post(f"{gw.url}/v2/models/fraud/infer", json=oip_request(row), timeout=30)
            assert answer.status_code == 200, answer.text

        def five_requests() -> bool:
            body = httpx.get(f"{gw.url}{API}/overview", timeout=30).json()
            versions = {v["version"]: v for m in body["models"] for v in m["versions"]}
            return versions["v1"]["last_hour"]["requests"] == 5

        eventually(five_requests)
    disabled = config.model_copy(update={"dashboard": config.dashboard.model_copy(update={"enabled": False})})
    with RunningGateway(disabled) as gw:
        assert httpx.get(f"{gw.url}{API}/overview").status_code == 404


def test_alone_with_shared_state_the_weights_and_breaker_flags_come_from_redis(
    drilled: dict[str, Any], store: SQLiteStore, clock: ManualClock
) -> None:
    import asyncio

    from aisre.config.gateway import StateConfig
    from aisre.gateway.shared_state import RedisState
    from tests.test_redis_state import REDIS_SERVER, RedisServer

    if REDIS_SERVER is None:
        pytest.skip("redis-server not installed")
    redis = RedisServer()
    redis.start()
    try:

        async def share() -> None:
            state = RedisState(redis.url)
            await state.set_route_weights("fraud", {"v1": 70.0, "v2": 30.0})  # as a playbook in another process
            await state.set_breaker("fraud", "v1", True)
            await state.close()

        asyncio.run(share())
        config = drilled["config"].model_copy(update={"state": StateConfig(url=redis.url)})
        versions = {v["version"]: v for v in DashboardData(config, store, clock).overview()["models"][0]["versions"]}
        assert (versions["v1"]["weight"], versions["v2"]["weight"]) == (70.0, 30.0)
        assert versions["v1"]["breaker"]["state"] == "open" and "shared state" in versions["v1"]["breaker"]["reason"]
    finally:
        redis.kill()
    # Redis gone: the registry and the incident log answer, and the breaker says where its state came from
    versions = {v["version"]: v for v in DashboardData(config, store, clock).overview()["models"][0]["versions"]}
    assert (versions["v1"]["weight"], versions["v2"]["weight"]) == (100.0, 0.0)
    assert "did not answer" in versions["v2"]["breaker"]["reason"]
