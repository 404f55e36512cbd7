"""Act: the model registry, incidents, and (as they land) playbooks, breakers and canary/shadow/A-B analysis.

    >>> from aisre import respond
    >>> reg = respond.Registry("sqlite:///aisre.db")             # doctest: +SKIP
    >>> incidents = respond.Incidents("sqlite:///aisre.db")      # doctest: +SKIP

The registry and the incidents live in the store (SQLite), so a notebook, the CLI, the admin API and the
gateway's playbooks read and change the same state.

Every name loads on first use (PEP 562), as in `aisre/__init__`: the registry, the incidents and the CLI that
uses them do not pay for scipy, which the experiment statistics need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aisre.respond import stats
    from aisre.respond.ab import ABReport, Comparison, ab_report, compare_arms
    from aisre.respond.canary import (
        CanaryAnalysis,
        CanaryPolicy,
        NextAction,
        analyze_canary,
        analyze_canary_in_store,
        next_action,
    )
    from aisre.respond.evaluation import (
        EvaluationResult,
        config_gate,
        evaluate_version,
        gate_problem,
        latest_evaluation,
    )
    from aisre.respond.incidents import EVENT_KINDS, INCIDENT_STATUSES, SEVERITIES, Incident, Incidents, Opened
    from aisre.respond.registry import (
        STATUSES,
        TRANSITIONS,
        FrozenBy,
        Gate,
        Registry,
        RollbackResult,
        configured_registry,
        evaluation_gate,
        slo_freeze,
    )
    from aisre.respond.samples import ArmSample, arm_from_store
    from aisre.respond.shadow import ShadowCriteria, ShadowReport, evaluate_pairs, pair_records, shadow_report
    from aisre.respond.traffic import DEFAULT_CANARY_PERCENT, TrafficPlan, traffic_plan
    from aisre.store.incidents import IncidentEvent
    from aisre.store.registry import HistoryEntry, ModelVersion

_LAZY = {
    "EvaluationResult": "aisre.respond.evaluation",
    "config_gate": "aisre.respond.evaluation",
    "evaluate_version": "aisre.respond.evaluation",
    "gate_problem": "aisre.respond.evaluation",
    "latest_evaluation": "aisre.respond.evaluation",
    "ABReport": "aisre.respond.ab",
    "ArmSample": "aisre.respond.samples",
    "CanaryAnalysis": "aisre.respond.canary",
    "CanaryPolicy": "aisre.respond.canary",
    "Comparison": "aisre.respond.ab",
    "NextAction": "aisre.respond.canary",
    "ShadowCriteria": "aisre.respond.shadow",
    "ShadowReport": "aisre.respond.shadow",
    "ab_report": "aisre.respond.ab",
    "analyze_canary": "aisre.respond.canary",
    "analyze_canary_in_store": "aisre.respond.canary",
    "arm_from_store": "aisre.respond.samples",
    "compare_arms": "aisre.respond.ab",
    "evaluate_pairs": "aisre.respond.shadow",
    "next_action": "aisre.respond.canary",
    "pair_records": "aisre.respond.shadow",
    "shadow_report": "aisre.respond.shadow",
    "stats": "aisre.respond.stats",
    "DEFAULT_CANARY_PERCENT": "aisre.respond.traffic",
    "EVENT_KINDS": "aisre.respond.incidents",
    "FrozenBy": "aisre.respond.registry",
    "Gate": "aisre.respond.registry",
    "HistoryEntry": "aisre.store.registry",
    "INCIDENT_STATUSES": "aisre.respond.incidents",
    "Incident": "aisre.respond.incidents",
    "IncidentEvent": "aisre.store.incidents",
    "Incidents": "aisre.respond.incidents",
    "ModelVersion": "aisre.store.registry",
    "Opened": "aisre.respond.incidents",
    "Registry": "aisre.respond.registry",
    "RollbackResult": "aisre.respond.registry",
    "SEVERITIES": "aisre.respond.incidents",
    "STATUSES": "aisre.respond.registry",
    "TRANSITIONS": "aisre.respond.registry",
    "TrafficPlan": "aisre.respond.traffic",
    "configured_registry": "aisre.respond.registry",
    "evaluation_gate": "aisre.respond.registry",
    "slo_freeze": "aisre.respond.registry",
    "traffic_plan": "aisre.respond.traffic",
}

__all__ = [
    "EvaluationResult",
    "config_gate",
    "evaluate_version",
    "gate_problem",
    "latest_evaluation",
    "ABReport",
    "ArmSample",
    "CanaryAnalysis",
    "CanaryPolicy",
    "Comparison",
    "NextAction",
    "ShadowCriteria",
    "ShadowReport",
    "ab_report",
    "analyze_canary",
    "analyze_canary_in_store",
    "arm_from_store",
    "compare_arms",
    "evaluate_pairs",
    "next_action",
    "pair_records",
    "shadow_report",
    "stats",
    "DEFAULT_CANARY_PERCENT",
    "EVENT_KINDS",
    "FrozenBy",
    "Gate",
    "HistoryEntry",
    "INCIDENT_STATUSES",
    "Incident",
    "IncidentEvent",
    "Incidents",
    "ModelVersion",
    "Opened",
    "Registry",
    "RollbackResult",
    "SEVERITIES",
    "STATUSES",
    "TRANSITIONS",
    "TrafficPlan",
    "configured_registry",
    "evaluation_gate",
    "slo_freeze",
    "traffic_plan",
]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'aisre.respond' has no attribute {name!r}")
    loaded = importlib.import_module(module)
    value: object = loaded if module == f"aisre.respond.{name}" else getattr(loaded, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
