"""The AI circuit breaker: opened by errors, latency and quality (each alone), half-open probes, recovery, config checks."""

from __future__ import annotations

import random
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from aisre.clock import ManualClock
from aisre.config.breakers import BreakerConfig
from aisre.config.loader import config_from_dict
from aisre.records import Signal
from aisre.respond.breaker import BreakerState, CircuitBreaker
from aisre.respond.conditions import Held, judge
from aisre.respond.rules import RuleLoadError, load_rule
from aisre.slo.evaluate import SLOReport
from aisre.store import SQLiteStore

T0 = 1_767_225_600.0


def breaker(*conditions: dict[str, Any], clock: ManualClock | None = None, **extra: Any) -> CircuitBreaker:
    config = BreakerConfig.model_validate(
        {"model": "fraud", "version": "v2", "fallback": {"version": "v1"}, "open_when": list(conditions), **extra}
    )
    return CircuitBreaker(config, "v2", clock or ManualClock(T0), random.Random(0))


ERRORS = {"error_rate": 0.2, "window_requests": 50, "min_requests": 20}
LATENCY = {"latency_p99_s": 0.5, "window_requests": 100, "min_requests": 20}


def test_errors_open_the_breaker_only_once_enough_requests_are_in() -> None:
    b = breaker(ERRORS)
    for _ in range(19):
        assert b.record(False, 0.01) is None  # 100% errors, but fewer than min_requests
    transition = b.record(False, 0.01)
    assert transition is not None and transition.after is BreakerState.OPEN
    assert "error rate 1.000 > 0.2 over 20 requests" in transition.reason
    assert not b.admit()


def test_a_latency_spike_alone_does_not_trip_the_quality_breaker_and_a_quality_drop_alone_not_the_latency_one() -> None:
    quality_only = breaker({"signal": "estimated_accuracy", "min": 0.9})
    for _ in range(200):
        quality_only.record(True, 5.0)  # every request slow, none failed
    assert quality_only.state is BreakerState.CLOSED
    latency_only = breaker(LATENCY)
    assert (
        latency_only.set_quality("signal:estimated_accuracy", True, "accuracy 0.6 < 0.9") is None
    )  # not its condition
    assert latency_only.state is BreakerState.CLOSED
    for _ in range(200):
        latency_only.record(True, 0.05)
    assert latency_only.state is BreakerState.CLOSED
    for _ in range(3):
        latency_only.record(True, 2.0)  # 3 slow of the last 100: the p99 is one of them
    assert latency_only.state is BreakerState.OPEN
    opened = quality_only.set_quality("signal:estimated_accuracy", True, "estimated_accuracy 0.6 < 0.9")
    assert opened is not None and opened.after is BreakerState.OPEN


def test_open_turns_half_open_after_open_for_and_healthy_probes_close_it() -> None:
    clock = ManualClock(T0)
    b = breaker(ERRORS, clock=clock, open_for="30s", probes=10, probe_share=0.5)
    for _ in range(20):
        b.record(False)
    assert b.state is BreakerState.OPEN
    clock.advance(29)
    assert not any(b.admit() for _ in range(100))
    clock.advance(1)
    admitted = sum(b.admit() for _ in range(1000))
    assert b.state is BreakerState.HALF_OPEN and 400 < admitted < 600  # probe_share of the traffic
    for _ in range(9):
        assert b.record(True, 0.01) is None
    closed = b.record(True, 0.01)
    assert closed is not None and closed.after is BreakerState.CLOSED
    assert [t.after for t in b.transitions] == [BreakerState.OPEN, BreakerState.HALF_OPEN, BreakerState.CLOSED]


def test_failed_probes_reopen_with_the_wait_doubled_up_to_the_maximum() -> None:
    clock = ManualClock(T0)
    b = breaker(ERRORS, clock=clock, open_for="10s", max_open_for="30s", probes=5)
    for _ in range(20):
        b.record(False)
    waits = []
    for _ in range(4):
        opened = clock.now()
        while b.state is BreakerState.OPEN:
            clock.advance(1)
            b.tick()
        waits.append(clock.now() - opened)
        for _ in range(5):
            b.record(False)
    assert waits == [10, 20, 30, 30]
    assert "probes failed" in b.transitions[-1].reason


def test_a_quality_fault_keeps_a_half_open_breaker_from_closing_until_a_good_verdict() -> None:
    clock = ManualClock(T0)
    b = breaker({"signal": "dataset_drift", "breached": True}, clock=clock, open_for="10s", probes=5)
    opened = b.set_quality("signal:dataset_drift", True, "dataset_drift breached=True")
    assert opened is not None and opened.reason == "dataset_drift breached=True"
    clock.advance(10)
    b.tick()
    for _ in range(20):
        assert b.record(True, 0.01) is None  # healthy probes, but the drift verdict still stands
    assert b.state is BreakerState.HALF_OPEN
    closed = b.set_quality("signal:dataset_drift", False)  # the next window is clean
    assert closed is not None and closed.after is BreakerState.CLOSED


def test_conditions_judge_the_newest_signal_window_and_slo_burn_rates(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "a.db")
    hour = 3600.0
    store.write_signals([Signal("fraud", "v2", "estimated_accuracy", 0.95, 0.9, False, {}, T0, T0 + hour)], T0 + hour)
    store.write_signals(
        [Signal("fraud", "v2", "estimated_accuracy", 0.7, 0.9, True, {}, T0 + hour, T0 + 2 * hour)], T0 + 2 * hour
    )
    store.write_signals(
        [Signal("fraud", "v1", "estimated_accuracy", 0.99, 0.9, False, {}, T0 + hour, T0 + 2 * hour)], T0 + 2 * hour
    )
    cfg = BreakerConfig.model_validate(
        {
            "model": "fraud",
            "version": "v2",
            "fallback": {"rule": "os.path:basename"},
            "open_when": [
                {"signal": "estimated_accuracy", "min": 0.9},
                {"slo": "fraud-correctness", "burn_rate": 14.4, "window": "1h"},
                {"slo": "fraud-correctness", "alert": "page", "for": "10m"},
            ],
        }
    )
    accuracy, burn, page = cfg.open_when
    verdict = judge(accuracy, "fraud", "v2", store, {}, T0 + 2 * hour)
    assert verdict.bad and verdict.reason == "estimated_accuracy 0.7 < 0.9" and verdict.evidence["value"] == 0.7
    assert not judge(accuracy, "fraud", "v1", store, {}, T0 + 2 * hour).bad  # v1's own signal is fine
    report = SLOReport(
        "fraud-correctness", "fraud", 0.99, "events", T0, burn_rates={"1h": 20.0}, alerts={"page": "firing"}
    )
    assert judge(burn, "fraud", "v2", store, {"fraud-correctness": report}, T0).bad
    assert not judge(burn, "fraud", "v2", store, {}, T0).bad  # an SLO not judged yet is not a fault
    held = Held()
    first = held.apply(judge(page, "fraud", "v2", store, {"fraud-correctness": report}, T0), page.for_s, T0)
    later = held.apply(judge(page, "fraud", "v2", store, {"fraud-correctness": report}, T0), page.for_s, T0 + 600)
    assert (first.bad, later.bad) == (False, True)
    assert "pending" in first.reason


def test_rule_functions_load_by_dotted_path_and_bad_ones_are_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "fraud_rules.py").write_text(
        textwrap.dedent(
            """
            LIMIT = 3
            def flag_large(rows):
                return [int(r.get("amount", 0) > 1000) for r in rows]
            def two_args(rows, extra):
                return rows
            """
        )
    )
    (tmp_path / "broken_rules.py").write_text("import nosuchpackage_aisre\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_rule("fraud_rules:flag_large")([{"amount": 5000}, {"amount": 10}]) == [1, 0]
    for dotted, message in [
        ("broken_rules:f", "cannot import module 'broken_rules': ModuleNotFoundError"),
        ("fraud_rules:missing", "has no attribute 'missing'"),
        ("fraud_rules:LIMIT", "is a int, not a function"),
        ("fraud_rules:two_args", "must take one argument"),
    ]:
        with pytest.raises(RuleLoadError, match=message):
            load_rule(dotted)
    sys.modules.pop("fraud_rules", None)


MODELS = {
    "fraud": {
        "protocol": "oip",
        "versions": {"v1": {"replicas": ["http://127.0.0.1:9/v2"]}, "v2": {"replicas": ["http://127.0.0.1:9/v2"]}},
    }
}


def refusals(breakers: list[dict[str, Any]], slos: list[dict[str, Any]] | None = None) -> str:
    with pytest.raises(Exception) as info:
        config_from_dict({"models": MODELS, "breakers": breakers, "slos": slos or []})
    return str(info.value)


def test_bad_breakers_are_refused_at_their_key_path() -> None:
    slo = {"name": "fraud-correctness", "model": "fraud", "objective": 0.99, "sli": {"kind": "correctness"}}
    cases = [
        (
            [{"model": "fraud", "version": "v2", "fallback": {"version": "v1"}, "open_when": [{"error_rat": 0.2}]}],
            "breakers.0.open_when.0",
        ),
        (
            [{"model": "fraud", "version": "v2", "fallback": {"version": "v1"}, "open_when": [{}]}],
            "expected exactly one of error_rate",
        ),
        (
            [{"model": "fraud", "version": "v9", "fallback": {"version": "v1"}, "open_when": [ERRORS]}],
            "breakers.0.version",
        ),
        (
            [{"model": "fraud", "version": "v2", "fallback": {"version": "v7"}, "open_when": [ERRORS]}],
            "breakers.0.fallback.version",
        ),
        (
            [{"model": "fraud", "version": "v2", "fallback": {"rule": "not a path"}, "open_when": [ERRORS]}],
            "package.module:function",
        ),
        (
            [
                {
                    "model": "fraud",
                    "version": "v2",
                    "fallback": {"version": "v1"},
                    "open_when": [{"slo": "nope", "alert": "page"}],
                }
            ],
            "unknown SLO 'nope'",
        ),
        (
            [
                {
                    "model": "fraud",
                    "version": "v2",
                    "fallback": {"version": "v1"},
                    "open_when": [{"slo": "fraud-correctness", "burn_rate": 2, "window": "7m"}],
                }
            ],
            "has no 7m burn rate",
        ),
        (
            [
                {"model": "fraud", "version": "v2", "fallback": {"version": "v1"}, "open_when": [ERRORS]},
                {"model": "fraud", "version": "v1", "fallback": {"version": "v2"}, "open_when": [ERRORS]},
            ],
            "fallback cycle: v2 -> v1 -> v2",
        ),
    ]
    for breakers, expected in cases:
        assert expected in refusals(breakers, [slo]), expected
    ok = config_from_dict(
        {
            "models": MODELS,
            "slos": [slo],
            "breakers": [
                {
                    "model": "fraud",
                    "version": "v2",
                    "fallback": {"version": "v1"},
                    "open_when": [ERRORS, {"slo": "fraud-correctness", "burn_rate": 14.4}],
                }
            ],
        }
    )
    assert ok.breakers[0].open_when[1].window == "1h"


def test_check_config_imports_the_fallback_rule(tmp_path: Path) -> None:
    from tests.test_cli import aisre_cli

    config = tmp_path / "aisre.yaml"
    config.write_text(
        "models:\n  fraud:\n    protocol: oip\n    versions:\n      v1: {replicas: ['http://127.0.0.1:9/v2']}\n"
        "breakers:\n  - model: fraud\n    version: v1\n    fallback: {rule: 'nosuch_rules_module:f'}\n"
        "    open_when: [{error_rate: 0.5}]\n"
    )
    result = aisre_cli("check-config", "-c", str(config))
    assert result.returncode != 0
    assert "breakers.0.fallback.rule: cannot import module 'nosuch_rules_module'" in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
