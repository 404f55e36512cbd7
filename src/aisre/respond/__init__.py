"""Act: the model registry, incidents, and (as they land) playbooks, breakers and canary/shadow/A-B analysis.

    >>> from aisre import respond
    >>> reg = respond.Registry("sqlite:///aisre.db")             # doctest: +SKIP
    >>> incidents = respond.Incidents("sqlite:///aisre.db")      # doctest: +SKIP

The registry and the incidents live in the store (SQLite), so a notebook, the CLI, the admin API and the
gateway's playbooks read and change the same state.
"""

from __future__ import annotations

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
