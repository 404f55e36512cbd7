"""Playbooks: a quality condition fires actions once per episode, with an incident timeline, retries, cooldown and dry-run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from aisre.clock import ManualClock
from aisre.config.loader import config_from_dict
from aisre.config.playbooks import PlaybookConfig
from aisre.records import Signal
from aisre.respond.incidents import Incidents
from aisre.respond.playbooks import AdminActuator, PlaybookRunner, playbook_freeze
from aisre.respond.registry import Registry
from aisre.store import SQLiteStore
from aisre.testing.openai_server import openai_app
from aisre.testing.server import serve_in_thread
from tests.gateway_helpers import RunningGateway, gateway_config

T0 = 1_767_225_600.0
HOUR = 3600.0
ADMIN = "admin-" + "p" * 30


def at(clock: ManualClock, t: float) -> None:
    clock.advance(t - clock.now())


def drift(store: SQLiteStore, k: int, breached: bool, version: str = "v2") -> None:
    start = T0 + k * HOUR
    signal = Signal("fraud", version, "dataset_drift", float(breached), 0.5, breached, {}, start, start + HOUR)
    store.write_signals([signal], start + HOUR)


def playbook(**extra: Any) -> PlaybookConfig:
    doc = {
        "name": "drift-rollback",
        "model": "fraud",
        "version": "v2",
        "when": {"signal": "dataset_drift", "breached": True},
        "do": ["rollback", "freeze_promotions"],
        **extra,
    }
    return PlaybookConfig.model_validate(doc)


@pytest.fixture
def world(tmp_path: Path) -> tuple[SQLiteStore, Registry, Incidents, ManualClock]:
    clock = ManualClock(T0)
    store = SQLiteStore(tmp_path / "aisre.db")
    registry = Registry(store, clock=clock)
    for version in ("v1", "v2"):
        registry.register("fraud", version, actor="test", endpoint=f"http://127.0.0.1:9/{version}")
        registry.promote("fraud", version, "stable", actor="test", reason="release")
    return store, registry, Incidents(store, clock=clock), clock


def test_drift_fires_the_playbook_once_rolls_back_and_tells_the_story_on_an_incident(world: Any) -> None:
    store, registry, incidents, clock = world
    runner = PlaybookRunner([playbook(cooldown="2h")], store, registry=registry, incidents=incidents, clock=clock)
    drift(store, 0, breached=False)
    at(clock, T0 + HOUR)
    assert runner.tick() == []
    drift(store, 1, breached=True)
    at(clock, T0 + 2 * HOUR)
    events = runner.tick()
    assert [e.kind for e in events] == ["fired", "action", "action"]
    assert all(e.ok for e in events)
    assert registry.stable("fraud").version == "v1"  # rolled back
    assert playbook_freeze(store, clock=clock)("fraud", "v2") == ["playbook drift-rollback"]
    assert runner.tick() == []  # still drifting: one episode, one firing
    (incident,) = incidents.list()
    assert incident.model == "fraud" and incident.version == "v2" and incident.status == "open"
    timeline = [(e.kind, e.summary) for e in incidents.get(incident.id).events]
    assert timeline[0] == ("trigger", "drift-rollback: dataset_drift breached=True")
    assert [k for k, _ in timeline[1:]] == ["action", "action"]
    assert timeline[1][1].startswith("rolled back fraud")
    drift(store, 2, breached=False)
    at(clock, T0 + 3 * HOUR)
    assert [e.kind for e in runner.tick()] == ["cleared"]
    drift(store, 3, breached=True)  # drifting again within the cooldown: noted, nothing done
    at(clock, T0 + 3.5 * HOUR)
    assert [e.kind for e in runner.tick()] == ["cooldown"]
    assert incidents.get(incident.id).events[-1].kind == "outcome"


def test_for_holds_the_playbook_until_the_condition_has_lasted(world: Any) -> None:
    store, registry, incidents, clock = world
    runner = PlaybookRunner(
        [playbook(when={"signal": "dataset_drift", "breached": True, "for": "30m"})],
        store,
        registry=registry,
        clock=clock,
    )
    drift(store, 0, breached=True)
    at(clock, T0 + HOUR)
    assert runner.tick() == []
    at(clock, T0 + HOUR + 29 * 60)
    assert runner.tick() == []
    at(clock, T0 + HOUR + 30 * 60)
    assert [e.kind for e in runner.tick()][0] == "fired"


def test_a_failing_action_is_recorded_and_retried_while_the_others_still_run(world: Any) -> None:
    store, registry, incidents, clock = world
    dead = AdminActuator("http://127.0.0.1:9", ADMIN, timeout_s=0.5)  # nothing listens on port 9
    p = playbook(do=[{"open_breaker": "v2"}, "freeze_promotions"], retries=2)
    runner = PlaybookRunner([p], store, registry=registry, incidents=incidents, actuator=dead, clock=clock)
    drift(store, 0, breached=True)
    at(clock, T0 + HOUR)
    first = runner.tick()
    assert [(e.kind, e.ok) for e in first] == [("fired", True), ("action", False), ("action", True)]
    assert "open_breaker v2 failed" in first[1].detail and "retrying (1/3)" in first[1].detail
    assert [e.ok for e in runner.tick()] == [False]  # retried alone; the freeze is done
    last = runner.tick()
    assert "giving up" in last[0].detail
    assert runner.tick() == []
    (incident,) = incidents.list()
    actions = [e for e in incidents.get(incident.id).events if e.kind == "action"]
    assert [e.data["ok"] for e in actions] == [False, True, False, False]


def test_dry_run_records_what_it_would_do_and_changes_nothing(world: Any) -> None:
    store, registry, incidents, clock = world
    runner = PlaybookRunner([playbook(dry_run=True)], store, registry=registry, incidents=incidents, clock=clock)
    drift(store, 0, breached=True)
    at(clock, T0 + HOUR)
    details = [e.detail for e in runner.tick() if e.kind == "action"]
    assert details == ["would rollback (dry run)", "would freeze_promotions (dry run)"]
    assert registry.stable("fraud").version == "v2"
    assert playbook_freeze(store, clock=clock)("fraud", "v2") == []


def test_the_admin_actuator_opens_a_breaker_and_shifts_weights_on_a_real_gateway(tmp_path: Path) -> None:
    upstream = serve_in_thread(openai_app())
    models = {
        "chat": {
            "protocol": "openai",
            "versions": {"v1": {"replicas": [f"{upstream.url}/v1"]}, "v2": {"replicas": [f"{upstream.url}/v1"]}},
            "route": {"v1": 90, "v2": 10},
        }
    }
    config = gateway_config(tmp_path, models, auth={"enabled": True, "admin_key": ADMIN})
    try:
        with RunningGateway(config) as gw:
            actuator = AdminActuator(gw.url, ADMIN)
            actuator.set_breaker("chat", "v2", True)
            actuator.set_weights("chat", {"v1": 100.0, "v2": 0.0})
            routes = httpx.get(f"{gw.url}/admin/routes", headers={"authorization": f"Bearer {ADMIN}"}).json()
            assert "v2" in str(routes["chat"]["open_breakers"])
            assert routes["chat"]["weights"]["v2"] == 0
            with pytest.raises(RuntimeError, match="HTTP 4"):
                actuator.set_breaker("nosuchmodel", "v1", True)
    finally:
        upstream.stop()


def test_bad_playbooks_are_refused_at_their_key_path() -> None:
    models = {"fraud": {"protocol": "oip", "versions": {"v1": {"replicas": ["http://127.0.0.1:9/v2"]}}}}
    base = {"name": "p", "model": "fraud", "version": "v1", "when": {"signal": "dataset_drift", "breached": True}}
    cases = [
        ({**base, "do": ["explode"]}, "playbooks.0.do: unknown action 'explode'"),
        ({**base, "do": ["open_breaker"]}, "open_breaker needs an argument"),
        ({**base, "do": [{"set_weights": {"v1": -1}}]}, "set_weights: expected {version: weight >= 0"),
        ({**base, "do": [{"open_breaker": "v9"}]}, "playbooks.0.do.0.open_breaker: model 'fraud' has no version 'v9'"),
        ({**base, "do": [{"notify": ["pager"]}]}, "unknown receiver 'pager'"),
        ({**base, "when": {"error_rate": 0.5}, "do": ["rollback"]}, "error_rate / latency belong to breakers"),
        (
            {**base, "when": {"slo": "nope", "alert": "page"}, "do": ["rollback"]},
            "playbooks.0.when.slo: unknown SLO 'nope'",
        ),
        ({**base, "model": "other", "do": ["rollback"]}, "playbooks.0.model: unknown model 'other'"),
    ]
    for doc, expected in cases:
        with pytest.raises(Exception) as info:
            config_from_dict({"models": models, "playbooks": [doc]})
        assert expected in str(info.value), (expected, str(info.value))


def test_the_judge_runs_the_playbooks_after_each_tick_even_without_slos(tmp_path: Path) -> None:
    from aisre.slo.service import SLOService

    db = tmp_path / "aisre.db"
    config = config_from_dict(
        {
            "store": f"sqlite:///{db}",
            "playbooks": [
                {
                    "name": "drift-freeze",
                    "model": "fraud",
                    "version": "v2",
                    "when": {"signal": "dataset_drift", "breached": True},
                    "do": ["freeze_promotions"],
                }
            ],
        }
    )
    store = SQLiteStore(db)
    clock = ManualClock(T0 + HOUR)
    drift(store, 0, breached=True)
    service = SLOService(config, store, clock)
    try:
        assert service.tick() == []  # no SLOs to report...
        assert service.playbooks is not None
        assert [e.kind for e in service.playbooks.events] == ["fired", "action"]  # ...but the playbook acted
        assert playbook_freeze(store, clock=clock)("fraud", "v1") == ["playbook drift-freeze"]
        (incident,) = Incidents(store, clock=clock).list()
        assert incident.title == "drift-freeze: dataset_drift breached=True"
    finally:
        service.close()


def test_watch_once_runs_a_playbook_against_a_real_gateway_admin_api(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    import yaml

    upstream = serve_in_thread(openai_app())
    models = {
        "chat": {
            "protocol": "openai",
            "versions": {"v1": {"replicas": [f"{upstream.url}/v1"]}, "v2": {"replicas": [f"{upstream.url}/v1"]}},
            "route": {"v1": 90, "v2": 10},
        }
    }
    db = tmp_path / "aisre.db"
    book = {
        "name": "drift-off",
        "model": "chat",
        "version": "v2",
        "when": {"signal": "dataset_drift", "breached": True},
        "do": [{"open_breaker": "v2"}, {"set_weights": {"v1": 100, "v2": 0}}],
    }
    config = tmp_path / "aisre.yaml"
    config.write_text(yaml.safe_dump({"store": f"sqlite:///{db}", "models": models, "playbooks": [book]}))
    gateway_cfg = gateway_config(tmp_path, models, auth={"enabled": True, "admin_key": ADMIN})
    store = SQLiteStore(db)
    now = __import__("time").time()
    store.write_signals([Signal("chat", "v2", "dataset_drift", 1.0, 0.5, True, {}, now - 120, now - 60)], now - 60)
    try:
        with RunningGateway(gateway_cfg) as gw:
            env = {**os.environ, "AISRE_ADMIN_KEY": ADMIN}
            cmd = [sys.executable, "-m", "aisre", "watch", "-c", str(config), "--once", "--gateway", gw.url]
            result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
            assert result.returncode == 0, result.stderr
            assert "playbook drift-off: fired: dataset_drift breached=True" in result.stdout
            assert "opened the breaker of chat v2" in result.stdout
            routes = httpx.get(f"{gw.url}/admin/routes", headers={"authorization": f"Bearer {ADMIN}"}).json()
            assert "v2" in str(routes["chat"]["open_breakers"]) and routes["chat"]["weights"]["v2"] == 0
            missing_key = subprocess.run(
                cmd, capture_output=True, text=True, env={k: v for k, v in env.items() if k != "AISRE_ADMIN_KEY"}
            )
            assert missing_key.returncode == 2 and "AISRE_ADMIN_KEY" in missing_key.stderr
    finally:
        upstream.stop()


def test_a_playbook_freeze_refuses_promotions_of_the_configured_registry_until_unfrozen(tmp_path: Path) -> None:
    from aisre.respond.promotion import configured_registry

    db = tmp_path / "aisre.db"
    config = config_from_dict({"store": f"sqlite:///{db}"})
    store = SQLiteStore(db)
    clock = ManualClock(T0)
    registry = configured_registry(config, store, clock)
    registry.register("fraud", "v1", actor="test")
    runner = PlaybookRunner([playbook(do=["freeze_promotions"])], store, registry=registry, clock=clock)
    drift(store, 0, breached=True)
    at(clock, T0 + HOUR)
    runner.tick()
    with pytest.raises(Exception, match="playbook drift-rollback"):
        registry.promote("fraud", "v1", "stable", actor="test")
    recovered = playbook(
        name="recovered", when={"signal": "dataset_drift", "breached": False}, do=["unfreeze_promotions"]
    )
    unfreeze = PlaybookRunner([recovered], store, clock=clock)  # another playbook lifts every freeze
    drift(store, 1, breached=False)
    at(clock, T0 + 2 * HOUR)
    assert [e.kind for e in unfreeze.tick()] == ["fired", "action"]
    assert registry.promote("fraud", "v1", "stable", actor="test").status == "stable"
