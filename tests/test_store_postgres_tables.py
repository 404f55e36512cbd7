"""The model registry, incidents and evaluations on both backends: every test runs on a real SQLite file
and on a real PostgreSQL 15 (tests/postgres_helpers.py) and asserts the same results, including the
append-only triggers, the one-unresolved-incident-per-trigger index and write transactions that
serialise processes racing to promote or to open the same incident."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from aisre.clock import ManualClock
from aisre.errors import IllegalTransitionError, IncidentError, PromotionRefusedError, RegistryError, StoreError
from aisre.respond import Incidents, Registry
from aisre.store import open_store
from aisre.store.evaluations import EvaluationStore

from .postgres_helpers import pg_server, pg_url  # noqa: F401 - the session's PostgreSQL and a fresh schema per test

PYTHON = sys.executable
ACTOR = "test:tables"


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'aisre.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(start=1_000.0)


# -- the registry ---------------------------------------------------------------------------------
def test_the_registry_lifecycle_gives_the_same_versions_pointer_and_history_on_both_backends(url, clock):
    reg = Registry(url, clock=clock)
    try:
        for v in ("v1", "v2", "v3"):
            reg.register("fraud", v, actor=ACTOR, endpoint=f"http://10.0.0.{v[1]}:8080", metadata={"v": v})
            clock.advance(1)
        reg.register("churn", "a", actor=ACTOR, artifact="/models/a.joblib")
        reg.promote("fraud", "v1", "stable", actor="cli:ana", reason="first release")
        clock.advance(10)
        reg.promote("fraud", "v2", "canary", actor="api:admin")
        with pytest.raises(IllegalTransitionError, match="canary"):
            reg.promote("fraud", "v1", "canary", actor=ACTOR)  # a stable version leaves only by supersede/rollback
        reg.promote("fraud", "v2", "stable", actor="api:admin", reason="canary passed")
        assert reg.stable("fraud").version == "v2" and reg.get("fraud", "v1").status == "retired"
        result = reg.rollback("fraud", actor="playbook:drift-rollback", reason="psi 0.31 > 0.2")
        assert (result.kind, result.stable, result.rolled_back) == ("stable", "v1", ("v2",))
        with pytest.raises(RegistryError, match="no previous stable"):
            reg.rollback("fraud", actor=ACTOR)

        assert [(v.model, v.version, v.status, v.endpoint, v.artifact, v.metadata) for v in reg.list()] == [
            ("churn", "a", "candidate", None, "/models/a.joblib", {}),
            ("fraud", "v1", "stable", "http://10.0.0.1:8080", None, {"v": "v1"}),
            ("fraud", "v2", "retired", "http://10.0.0.2:8080", None, {"v": "v2"}),
            ("fraud", "v3", "candidate", "http://10.0.0.3:8080", None, {"v": "v3"}),
        ]
        history = reg.history("fraud")
        assert [
            (h.version, h.action, h.from_status, h.to_status, h.actor, h.stable_before, h.stable_after) for h in history
        ][3:] == [
            ("v1", "promote", "candidate", "stable", "cli:ana", None, "v1"),
            ("v2", "promote", "candidate", "canary", "api:admin", "v1", "v1"),
            ("v1", "supersede", "stable", "retired", "api:admin", "v1", "v2"),
            ("v2", "promote", "canary", "stable", "api:admin", "v1", "v2"),
            ("v2", "rollback", "stable", "retired", "playbook:drift-rollback", "v2", "v1"),
            ("v1", "rollback", "retired", "stable", "playbook:drift-rollback", "v2", "v1"),
        ]
        assert [h.seq for h in history] == sorted(h.seq for h in history)
        assert reg.revision() == max(h.seq for h in reg.history("fraud") + reg.history("churn"))
        assert history[-1].at == 1_013.0 and history[-1].reason == "psi 0.31 > 0.2"
    finally:
        reg.close()


def test_the_history_refuses_update_and_delete_on_both_backends(url):
    reg = Registry(url)
    try:
        reg.register("fraud", "v1", actor=ACTOR, endpoint="http://x")
        for statement in ("UPDATE model_history SET actor = ?", "DELETE FROM model_history WHERE actor != ?"):
            with pytest.raises(reg.tables.integrity_errors, match="model_history is append-only"):
                with reg.tables.immediate() as conn:
                    conn.execute(statement, ("someone else",))
        if reg.tables.dialect == "postgresql":  # TRUNCATE skips row triggers: a statement trigger refuses it
            with pytest.raises(reg.tables.integrity_errors, match="append-only"):
                with reg.tables.immediate() as conn:
                    conn.execute("TRUNCATE model_history")
        reg.promote("fraud", "v1", "canary", actor=ACTOR)  # the refused statements were rolled back, nothing stuck
        assert [(h.action, h.actor) for h in reg.history("fraud")] == [("register", ACTOR), ("promote", ACTOR)]
    finally:
        reg.close()


def test_a_registry_given_a_store_uses_it_and_leaves_it_open(url):
    store = open_store(url)
    try:
        reg = Registry(store)
        reg.register("fraud", "v1", actor=ACTOR, endpoint="http://x")
        reg.close()
        assert reg.store is store and store.count() == 0  # still open: reads work
        assert [v.version for v in Registry(store).list("fraud")] == ["v1"]
    finally:
        store.close()


_PROMOTER = r"""
import json, pathlib, sys, time
from aisre.respond import Registry
url, go, versions = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3].split(",")
reg = Registry(url)
reg.list()
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
for v in versions:
    reg.promote("fraud", v, "stable", actor="proc:" + v)
reg.close()
print(json.dumps(versions), flush=True)
"""


def _race(code: str, url: str, go: Path, args: list[str]) -> list[str]:
    """Start one process per arg, wait until each says it is ready, release them together; their last lines."""
    procs = [
        subprocess.Popen(
            [PYTHON, "-c", code, url, str(go), arg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for arg in args
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready", p.stderr.read() if p.stderr else ""
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    assert [p.returncode for p in procs] == [0] * len(procs), [err for _, err in outs]
    return [out.strip().splitlines()[-1] for out, _ in outs]


def test_two_processes_promoting_to_stable_at_once_are_serialised(url, tmp_path):
    reg = Registry(url)
    try:
        versions = {name: [f"{name}{i}" for i in range(10)] for name in ("a", "b")}
        for v in versions["a"] + versions["b"]:
            reg.register("fraud", v, actor=ACTOR, endpoint="http://x")
        _race(_PROMOTER, url, tmp_path / "go", [",".join(versions["a"]), ",".join(versions["b"])])

        statuses = {v.version: v.status for v in reg.list("fraud")}
        stable = [v for v, s in statuses.items() if s == "stable"]
        assert len(stable) == 1 and list(statuses.values()).count("retired") == 19
        to_stable = [h for h in reg.history("fraud") if h.to_status == "stable"]
        assert len(to_stable) == 20
        # Each promotion saw the one before it: the stable pointer moved as one chain, never forked.
        for before, after in zip(to_stable, to_stable[1:], strict=False):
            assert after.stable_before == before.stable_after == before.version
        assert reg.stable("fraud").version == stable[0] == to_stable[-1].version
    finally:
        reg.close()


# -- incidents ------------------------------------------------------------------------------------
def test_incidents_ack_resolve_and_timeline_are_the_same_on_both_backends(url, clock):
    inc = Incidents(url, clock=clock)
    try:
        first = inc.open("error rate 12% > 5%", actor="breaker:fraud", trigger="breaker:fraud", model="fraud",
                         severity="high", evidence={"error_rate": 0.12})  # fmt: skip
        clock.advance(5)
        again = inc.open("error rate 14% > 5%", actor="breaker:fraud", trigger="breaker:fraud", model="fraud")
        assert first.created and not again.created and again.incident.id == first.incident.id
        other = inc.open("latency p99 3 s", actor="slo:latency", trigger="slo:latency")
        clock.advance(5)
        inc.ack(first.incident.id, actor="oncall:ana", note="looking")
        with pytest.raises(IncidentError, match="already acknowledged"):
            inc.ack(first.incident.id, actor="oncall:bo")
        clock.advance(5)
        done = inc.resolve(first.incident.id, actor="oncall:ana", note="upstream fixed")
        assert (done.status, done.acked_by, done.acked_at, done.resolved_by, done.resolved_at) == (
            "resolved", "oncall:ana", 1_010.0, "oncall:ana", 1_015.0,
        )  # fmt: skip
        assert [(e.kind, e.actor, e.summary, e.data) for e in done.events] == [
            ("trigger", "breaker:fraud", "error rate 12% > 5%", {"error_rate": 0.12}),
            ("retrigger", "breaker:fraud", "error rate 14% > 5%", {}),
            ("ack", "oncall:ana", "looking", {}),
            ("resolve", "oncall:ana", "upstream fixed", {}),
        ]
        reopened = inc.open("error rate 9% > 5%", actor="breaker:fraud", trigger="breaker:fraud")
        assert reopened.created and reopened.incident.id not in (first.incident.id, other.incident.id)
        assert [(i.id, i.status) for i in inc.list()] == [
            (reopened.incident.id, "open"), (other.incident.id, "open"), (first.incident.id, "resolved"),
        ]  # fmt: skip
        assert [i.id for i in inc.list(status="resolved", model="fraud")] == [first.incident.id]
    finally:
        inc.close()


def test_the_timeline_refuses_update_and_delete_and_the_index_refuses_a_second_unresolved_incident(url):
    inc = Incidents(url)
    try:
        opened = inc.open("drift", actor=ACTOR, trigger="drift:fraud")
        for statement in ("UPDATE incident_events SET summary = ?", "DELETE FROM incident_events WHERE actor != ?"):
            with pytest.raises(inc.tables.integrity_errors, match="incident_events is append-only"):
                with inc.tables.immediate() as conn:
                    conn.execute(statement, ("rewritten",))
        with pytest.raises(inc.tables.integrity_errors):  # even a write that skips the lifecycle code
            with inc.tables.transaction() as tx:
                tx.insert(model=None, version=None, title="dup", severity="high", trigger_key="drift:fraud", at=1.0,
                          actor=ACTOR)  # fmt: skip
        inc.resolve(opened.incident.id, actor=ACTOR)
        with inc.tables.transaction() as tx:  # resolved ones do not count: a new unresolved one is allowed
            tx.insert(model=None, version=None, title="new", severity="high", trigger_key="drift:fraud", at=2.0,
                      actor=ACTOR)  # fmt: skip
        assert [e.kind for e in inc.get(opened.incident.id).events] == ["trigger", "resolve"]
    finally:
        inc.close()


_OPENER = r"""
import json, pathlib, sys, time
from aisre.respond import Incidents
url, go, name = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
inc = Incidents(url)
inc.list()
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
opened = inc.open("breaker open on fraud", actor="proc:" + name, trigger="breaker:fraud", model="fraud")
inc.close()
print(json.dumps([opened.incident.id, opened.created]), flush=True)
"""


def test_processes_racing_to_open_the_same_incident_open_exactly_one(url, tmp_path):
    inc = Incidents(url)
    try:
        results = [json.loads(line) for line in _race(_OPENER, url, tmp_path / "go", ["p0", "p1", "p2", "p3"])]
        assert sorted(created for _, created in results) == [False, False, False, True]
        assert len({incident_id for incident_id, _ in results}) == 1
        [only] = inc.list()
        assert only.status == "open" and only.trigger_key == "breaker:fraud"
        kinds = [e.kind for e in inc.get(only.id).events]
        assert kinds == ["trigger", "retrigger", "retrigger", "retrigger"]
    finally:
        inc.close()


# -- evaluations ----------------------------------------------------------------------------------
def test_evaluations_latest_and_history_are_the_same_on_both_backends(url):
    with EvaluationStore(url) as table:
        runs = [
            ("fraud", "v1", 100.0, True, {"checks": [{"name": "auc", "value": 0.91}]}),
            ("fraud", "v1", 200.0, False, {"checks": [{"name": "auc", "value": 0.71}]}),
            ("fraud", "v1", 200.0, True, {"checks": [], "note": "same second, later run"}),
            ("fraud", "v2", 50.0, True, {"checks": []}),
            ("churn", "a", 300.0, False, {}),
        ]
        seqs = [table.add(*run) for run in runs]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        latest = table.latest("fraud", "v1")
        assert latest is not None and (latest.seq, latest.ts, latest.passed) == (seqs[2], 200.0, True)
        assert latest.report == {"checks": [], "note": "same second, later run"}
        assert table.latest("fraud", "v9") is None
        history = table.history("fraud")
        assert [(h.version, h.ts, h.passed) for h in history] == [
            ("v1", 200.0, True), ("v1", 200.0, False), ("v1", 100.0, True), ("v2", 50.0, True),
        ]  # fmt: skip
        assert all(type(h.passed) is bool and type(h.seq) is int for h in history)
        assert [h.seq for h in table.history("fraud", "v1", limit=2)] == [seqs[2], seqs[1]]


def test_the_write_lock_is_released_when_a_transaction_fails(url):
    reg = Registry(url)
    try:
        reg.register("fraud", "v1", actor=ACTOR, endpoint="http://x")
        with pytest.raises(RuntimeError):
            with reg.tables.transaction() as tx:
                tx.set_status("fraud", "v1", "retired", 5.0)
                raise RuntimeError("a check failed half-way")
        assert reg.get("fraud", "v1").status == "candidate"  # rolled back
        start = time.monotonic()
        other = Registry(url)  # another connection takes the lock at once: the failed one released it
        try:
            other.promote("fraud", "v1", "canary", actor=ACTOR)
        finally:
            other.close()
        assert time.monotonic() - start < 60 and reg.get("fraud", "v1").status == "canary"
    finally:
        reg.close()


# -- the users of these tables: the CLI and the gateway's admin API ------------------------------
def test_the_models_and_incidents_commands_work_on_postgresql(pg_url):  # noqa: F811 - SQLite: test_cli_models.py
    from .test_cli import aisre_cli

    def ok(*args: str) -> str:
        out = aisre_cli(*args, "--store", pg_url)
        assert out.returncode == 0, out.stderr
        return out.stdout

    reg = Registry(pg_url)
    reg.register("fraud", "v1", actor=ACTOR, endpoint="http://10.0.0.1:8080")
    reg.close()
    ok("models", "register", "fraud", "v2", "--endpoint", "http://10.0.0.2:8080")
    ok("models", "promote", "fraud", "v2", "--to", "stable", "--reason", "first release")
    listed = json.loads(ok("models", "list", "--json"))
    assert [(v["version"], v["status"]) for v in listed] == [("v1", "candidate"), ("v2", "stable")]
    refused = aisre_cli("models", "promote", "fraud", "v2", "--to", "canary", "--store", pg_url)
    assert refused.returncode == 2 and "stable" in refused.stderr and "Traceback" not in refused.stderr
    inc = Incidents(pg_url)
    inc.open("drift on amount", actor=ACTOR, trigger="drift:fraud")
    inc.close()
    assert "drift on amount" in ok("incidents", "list")


def test_the_gateway_admin_api_promotes_and_rolls_back_on_both_backends(url, tmp_path, request):
    import httpx

    from aisre.telemetry.recorder import Recorder

    from .gateway_helpers import RunningGateway, gateway_config

    down = {"replicas": ["http://127.0.0.1:9"]}  # never called: only routing changes
    models = {"fraud": {"protocol": "oip", "versions": {"v1": down, "v2": down}, "route": {"v1": 80, "v2": 20}}}
    admin = "admin-" + "t" * 30
    cfg = gateway_config(tmp_path, models, auth={"admin_key": admin}, gateway={"health_checks": {"enabled": False}},
                         dashboard={"enabled": False})  # fmt: skip
    store = open_store(url)
    reg = Registry(store)
    for v in ("v1", "v2"):
        reg.register("fraud", v, actor=ACTOR, endpoint="http://x")
    with (
        RunningGateway(cfg, Recorder(store, durability="fast")) as gw,
        httpx.Client(base_url=gw.url, headers={"authorization": f"Bearer {admin}"}, timeout=30) as c,
    ):
        promoted = c.post("/admin/models/fraud/versions/v1/promote", json={"to": "stable", "reason": "first"})
        assert promoted.status_code == 200, promoted.text
        assert promoted.json()["routing"]["weights"] == {"v1": 100.0}
        c.post("/admin/models/fraud/versions/v2/promote", json={"to": "canary"}).raise_for_status()
        assert dict(gw.gateway.routing.models["fraud"].weights) == {"v1": 80.0, "v2": 20.0}
        rolled = c.post("/admin/models/fraud/rollback", json={"reason": "accuracy fell"}).json()
        assert (rolled["kind"], rolled["rolled_back"], rolled["stable"]) == ("canary", ["v2"], "v1")
        refused = c.post("/admin/models/fraud/versions/v1/promote", json={"to": "canary"})
        assert refused.status_code == 409
        assert c.get("/admin/incidents").status_code == 200
        if url.startswith("postgresql://"):  # the database down: a 503 naming the store, then back to 200
            server = request.getfixturevalue("pg_server")
            server.stop()
            try:
                down = c.get("/admin/models")
                assert down.status_code == 503 and "the store is unavailable" in down.json()["error"]["message"]
            finally:
                server.start()
            assert c.get("/admin/models").status_code == 200
    assert [(h.version, h.action, h.actor) for h in reg.history("fraud")][-1] == ("v2", "rollback", "api:admin")
    store.close()


def test_the_evaluation_gate_reads_the_newest_evaluation_on_both_backends(url):
    from aisre.respond import evaluation_gate
    from aisre.respond.evaluation import EvaluationResult, save_evaluation

    def result(ts: float, passed: bool) -> EvaluationResult:
        return EvaluationResult("fraud", "v2", ts, passed, [], "binary", {"path": "golden.csv"}, {}, {})

    reg = Registry(url, gate=evaluation_gate(url))
    try:
        reg.register("fraud", "v2", actor=ACTOR, endpoint="http://x")
        with pytest.raises(PromotionRefusedError, match="has no offline evaluation"):
            reg.promote("fraud", "v2", "canary", actor=ACTOR)
        saved = save_evaluation(url, result(100.0, False))
        assert saved.seq is not None and saved.passed is False
        with pytest.raises(PromotionRefusedError, match="failed its latest offline evaluation"):
            reg.promote("fraud", "v2", "canary", actor=ACTOR)
        save_evaluation(url, result(200.0, True))
        assert reg.promote("fraud", "v2", "canary", actor=ACTOR).status == "canary"
        store = open_store(url)  # save_evaluation also wrote the offline_evaluation_passed signal
        try:
            assert [s.value for _, s in store.signals(model="fraud", name="offline_evaluation_passed")] == [0.0, 1.0]
        finally:
            store.close()
    finally:
        reg.close()


def test_a_database_restart_between_calls_is_absorbed_by_a_new_connection(pg_server, pg_url):  # noqa: F811
    reg = Registry(pg_url)
    inc = Incidents(reg.store)
    try:
        reg.register("fraud", "v1", actor=ACTOR, endpoint="http://x")
        assert inc.list() == []  # this thread's connection is open...
        pg_server.restart()  # ...and the server closes it
        assert [v.version for v in reg.list("fraud")] == ["v1"]  # a read re-runs on a new connection
        pg_server.restart()
        opened = inc.open("after a restart", actor=ACTOR, trigger="t")  # a write transaction begins on a new one
        assert opened.created and [i.title for i in inc.list()] == ["after a restart"]
        pg_server.stop()
        try:
            with pytest.raises(StoreError, match="PostgreSQL store"):  # down: a clear error, not a psycopg one
                reg.list("fraud")
            with pytest.raises(StoreError, match="PostgreSQL store"):
                inc.open("while down", actor=ACTOR, trigger="t2")
        finally:
            pg_server.start()
        assert reg.revision() == 1
    finally:
        inc.close()
        reg.close()
