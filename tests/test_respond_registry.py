"""The model registry as a library over a real SQLite file: legal moves only, freezes and the gate refuse with
reasons, rollback goes back through the stable pointer's past, and the history says who did what, when, why."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from aisre.clock import ManualClock
from aisre.errors import IllegalTransitionError, PromotionRefusedError, RegistryError, UnknownVersionError
from aisre.respond import TRANSITIONS, Registry, configured_registry, traffic_plan
from aisre.store import SQLiteStore

ACTOR = "test:registry"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def reg(store, clock) -> Registry:
    return Registry(store, clock=clock)


def registered(reg: Registry, *versions: str, model: str = "fraud") -> Registry:
    for v in versions:
        reg.register(model, v, actor=ACTOR)
    return reg


@pytest.mark.parametrize(("start", "target"), [(s, t) for s in TRANSITIONS for t in TRANSITIONS if t != "retired"])
def test_every_promotion_is_allowed_exactly_when_the_transition_table_says_so(reg, start, target):
    registered(reg, "base", "v")
    reg.promote("fraud", "base", "stable", actor=ACTOR)
    path = {
        "candidate": [],
        "shadow": ["shadow"],
        "canary": ["canary"],
        "stable": ["stable"],
        "retired": ["retired"],
    }[start]
    for step in path:
        reg.promote("fraud", "v", step, actor=ACTOR)
    assert reg.get("fraud", "v").status == start
    if target in TRANSITIONS[start]:
        assert reg.promote("fraud", "v", target, actor=ACTOR).status == target
    else:
        with pytest.raises(IllegalTransitionError) as err:
            reg.promote("fraud", "v", target, actor=ACTOR)
        message = str(err.value)
        assert f"is {start}" in message and f"cannot go to {target}" in message
        assert err.value.allowed == TRANSITIONS[start]
        assert reg.get("fraud", "v").status == start  # nothing changed


def test_an_unknown_status_or_version_is_refused_with_what_exists(reg):
    registered(reg, "v1", "v2")
    with pytest.raises(RegistryError, match=r"to: expected one of candidate, shadow, canary, stable, retired"):
        reg.promote("fraud", "v1", "production", actor=ACTOR)
    with pytest.raises(UnknownVersionError, match=r"fraud has no version 'v9'; registered versions: v1, v2"):
        reg.promote("fraud", "v9", "canary", actor=ACTOR)
    with pytest.raises(UnknownVersionError, match=r"model 'churn' is not registered; registered models: fraud"):
        reg.get("churn", "v1")


def test_register_refuses_duplicates_bad_names_and_both_endpoint_and_artifact(reg):
    registered(reg, "v1")
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("fraud", "v1", actor=ACTOR)
    with pytest.raises(RegistryError, match=r"version: expected printable characters without '/'"):
        reg.register("fraud", "a/b", actor=ACTOR)
    with pytest.raises(RegistryError, match="endpoint, artifact: give one of them"):
        reg.register("fraud", "v2", actor=ACTOR, endpoint="http://x:1", artifact="/m.joblib")
    with pytest.raises(RegistryError, match="endpoint: expected an http"):
        reg.register("fraud", "v2", actor=ACTOR, endpoint="10.0.0.1:80")
    with pytest.raises(RegistryError, match="actor: expected who makes the change"):
        reg.register("fraud", "v2", actor="")


def test_register_records_the_training_time_as_a_freshness_mark(reg, store, clock):
    reg.register("fraud", "v1", actor=ACTOR, trained_at=1_700_000_000.0, artifact="/models/v1.joblib")
    marks = [s for _, s in store.signals() if s.name == "model_trained_at"]
    assert [(m.model, m.version, m.value) for m in marks] == [("fraud", "v1", 1_700_000_000.0)]
    assert reg.get("fraud", "v1").trained_at == 1_700_000_000.0


def test_promoting_to_stable_retires_the_previous_stable_and_rollback_restores_it(reg):
    registered(reg, "v1", "v2")
    reg.promote("fraud", "v1", "stable", actor=ACTOR)
    reg.promote("fraud", "v2", "stable", actor=ACTOR, reason="canary passed")
    assert reg.get("fraud", "v1").status == "retired" and reg.stable("fraud").version == "v2"
    result = reg.rollback("fraud", actor="playbook:drift-rollback", reason="drift on amount")
    assert (result.kind, result.stable, result.rolled_back) == ("stable", "v1", ("v2",))
    assert reg.stable("fraud").version == "v1" and reg.get("fraud", "v2").status == "retired"


def test_rollback_with_canaries_retires_them_and_keeps_the_stable_version(reg):
    registered(reg, "v1", "v2", "v3")
    reg.promote("fraud", "v1", "stable", actor=ACTOR)
    reg.promote("fraud", "v2", "canary", actor=ACTOR)
    reg.promote("fraud", "v3", "canary", actor=ACTOR)
    result = reg.rollback("fraud", actor=ACTOR)
    assert (result.kind, result.stable, set(result.rolled_back)) == ("canary", "v1", {"v2", "v3"})
    assert [v.status for v in reg.list("fraud")] == ["stable", "retired", "retired"]


def test_rollback_without_a_previous_stable_says_why(reg):
    registered(reg, "v1")
    with pytest.raises(RegistryError, match="fraud has no stable version and no canary"):
        reg.rollback("fraud", actor=ACTOR)
    reg.promote("fraud", "v1", "stable", actor=ACTOR)
    with pytest.raises(RegistryError, match="no previous stable version to roll back to: v1 is the only version"):
        reg.rollback("fraud", actor=ACTOR)
    with pytest.raises(UnknownVersionError, match="model 'churn' is not registered"):
        reg.rollback("churn", actor=ACTOR)


def test_rolling_back_twice_goes_two_steps_back_and_a_retired_version_is_skipped(reg):
    registered(reg, "v1", "v2", "v3", "v4")
    for v in ("v1", "v2", "v3", "v4"):
        reg.promote("fraud", v, "stable", actor=ACTOR)
    reg.retire("fraud", "v2", actor=ACTOR, reason="artifact deleted")  # no longer a rollback target
    assert reg.rollback("fraud", actor=ACTOR).stable == "v3"
    assert reg.rollback("fraud", actor=ACTOR).stable == "v1"
    with pytest.raises(RegistryError, match="no previous stable"):
        reg.rollback("fraud", actor=ACTOR)


def test_the_stable_version_cannot_be_retired(reg):
    registered(reg, "v1")
    reg.promote("fraud", "v1", "stable", actor=ACTOR)
    with pytest.raises(IllegalTransitionError, match="promote another version to stable, or roll back, first"):
        reg.retire("fraud", "v1", actor=ACTOR)


def test_a_freeze_refuses_canary_and_stable_but_not_shadow(store, clock):
    asked = []

    def frozen_by(model, version):
        asked.append((model, version))
        return ["fraud-accuracy"]

    reg = registered(Registry(store, clock=clock, frozen_by=frozen_by), "v1", "v2")
    for target in ("canary", "stable"):
        with pytest.raises(PromotionRefusedError, match="frozen by the budget policy of SLO fraud-accuracy") as err:
            reg.promote("fraud", "v2", target, actor=ACTOR)
        assert err.value.reasons == ["fraud-accuracy"]
    assert reg.promote("fraud", "v2", "shadow", actor=ACTOR).status == "shadow"
    assert asked == [("fraud", "v2"), ("fraud", "v2")]
    assert [h.action for h in reg.history("fraud")] == ["register", "register", "promote"]  # refusals change nothing


def test_an_illegal_move_is_reported_as_illegal_before_any_freeze(store):
    reg = registered(Registry(store, frozen_by=lambda m, v: ["slo"]), "v1")
    reg.promote("fraud", "v1", "retired", actor=ACTOR)
    with pytest.raises(IllegalTransitionError, match="is retired"):
        reg.promote("fraud", "v1", "canary", actor=ACTOR)


def test_the_gate_refuses_shadow_canary_and_stable_until_it_passes(store):
    passed = set()

    def gate(model, version, to):
        return None if version in passed else f"{model} {version} has no passing evaluation"

    reg = registered(Registry(store, gate=gate), "v1", "v2")
    for target in ("shadow", "canary", "stable"):
        with pytest.raises(PromotionRefusedError, match=r"offline-evaluation gate: fraud v2 has no passing evaluation"):
            reg.promote("fraud", "v2", target, actor=ACTOR)
    assert reg.promote("fraud", "v2", "retired", actor=ACTOR).status == "retired"  # leaving needs no gate
    passed.add("v1")
    assert reg.promote("fraud", "v1", "canary", actor=ACTOR).status == "canary"


def test_history_is_complete_ordered_and_append_only(reg, store, clock):
    registered(reg, "v1", "v2")
    clock.advance(10)
    reg.promote("fraud", "v1", "stable", actor="cli:ana", reason="first release")
    clock.advance(10)
    reg.promote("fraud", "v2", "canary", actor="api:admin", reason="eval passed")
    clock.advance(10)
    reg.rollback("fraud", actor="playbook:drift-rollback", reason="psi 0.31 > 0.2")
    history = reg.history("fraud")
    assert [(h.version, h.action, h.from_status, h.to_status, h.actor) for h in history] == [
        ("v1", "register", None, "candidate", ACTOR),
        ("v2", "register", None, "candidate", ACTOR),
        ("v1", "promote", "candidate", "stable", "cli:ana"),
        ("v2", "promote", "candidate", "canary", "api:admin"),
        ("v2", "rollback", "canary", "retired", "playbook:drift-rollback"),
    ]
    assert [h.seq for h in history] == sorted(h.seq for h in history)
    assert [h.at for h in history] == sorted(h.at for h in history) and history[-1].at - history[0].at == 30
    assert history[2].stable_before is None and history[2].stable_after == "v1"
    assert history[-1].reason == "psi 0.31 > 0.2"
    assert reg.revision() == history[-1].seq
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store._conn().execute("UPDATE model_history SET actor = 'someone else'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store._conn().execute("DELETE FROM model_history")


def test_concurrent_promotions_to_stable_leave_exactly_one_stable_version(db_path):
    Registry(db_path).close()
    setup = Registry(db_path)
    registered(setup, *(f"v{i}" for i in range(8)))
    errors: list[BaseException] = []

    def promote(version: str) -> None:
        reg = Registry(db_path)  # its own connection, as another process would have
        try:
            reg.promote("fraud", version, "stable", actor=f"thread:{version}")
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            reg.close()

    threads = [threading.Thread(target=promote, args=(f"v{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    statuses = [v.status for v in setup.list("fraud")]
    assert statuses.count("stable") == 1 and statuses.count("retired") == 7
    last = setup.history("fraud")[-1]
    assert setup.stable("fraud").version == last.version == last.stable_after


def test_traffic_plan_gives_the_stable_version_what_the_canaries_leave(reg):
    registered(reg, "v1", "v2", "v3", "v4")
    reg.promote("fraud", "v1", "stable", actor=ACTOR)
    assert traffic_plan(reg.list("fraud"), {"v1", "v2", "v3"}) is not None
    reg.promote("fraud", "v2", "canary", actor=ACTOR)
    reg.promote("fraud", "v3", "shadow", actor=ACTOR)
    plan = traffic_plan(reg.list("fraud"), {"v1", "v2", "v3"}, {"v2": 25.0})
    assert plan.weights == {"v1": 75.0, "v2": 25.0} and plan.stable == "v1" and plan.shadow == "v3"
    assert traffic_plan(reg.list("fraud"), {"v2", "v3"}) is None  # the stable version is not served here


def test_the_configured_registry_is_frozen_by_a_spent_slo_budget(tmp_path):
    from aisre.config import load_config

    from .slo_helpers import SLOS_YAML, fraud_traffic

    db = tmp_path / "aisre.db"
    end = fraud_traffic(db, hours_right=3, hours_wrong=1)  # the last hour is all wrong: the budget is spent
    text = SLOS_YAML.format(db=db).replace(
        "    sli: {kind: correctness}",
        "    sli: {kind: correctness}\n    policy: {freeze_promotions_when_exhausted: true}",
    )
    (tmp_path / "aisre.yaml").write_text(text, encoding="utf-8")
    cfg = load_config(str(tmp_path / "aisre.yaml"))
    reg = registered(configured_registry(cfg, SQLiteStore(db), ManualClock(end)), "v1", "v2")
    with pytest.raises(PromotionRefusedError, match="frozen by the budget policy of SLO fraud-correctness") as err:
        reg.promote("fraud", "v2", "canary", actor=ACTOR)
    assert err.value.reasons == ["fraud-correctness"]
    assert reg.promote("fraud", "v2", "shadow", actor=ACTOR).status == "shadow"
    other = registered(configured_registry(cfg, SQLiteStore(db), ManualClock(end)), "v1", model="churn")
    assert other.promote("churn", "v1", "stable", actor=ACTOR).status == "stable"  # another model is not frozen


def test_the_configured_registry_needs_a_passing_offline_evaluation(tmp_path, store):
    from aisre.config import parse_config

    cfg = parse_config(
        f"store: {store.url}\n"
        "models:\n  fraud: {protocol: oip, versions: {v1: {replicas: ['http://127.0.0.1:9']}}}\n"
        "evaluation:\n  fraud: {metrics: {accuracy: {min: 0.9}}, required_for: [canary]}\n"
    )
    reg = registered(configured_registry(cfg, store), "v1")
    with pytest.raises(PromotionRefusedError, match="needs a passing offline evaluation before canary"):
        reg.promote("fraud", "v1", "canary", actor=ACTOR)
    assert reg.promote("fraud", "v1", "shadow", actor=ACTOR).status == "shadow"  # not in required_for
