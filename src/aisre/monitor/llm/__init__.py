"""LLM output quality: per-response checks (empty, truncated, refusal, invalid JSON, schema), the
evaluator hook, and quality per window as signals."""

from aisre.monitor.llm.evaluators import named_evaluators, run_evaluator
from aisre.monitor.llm.quality import (
    DEFAULT_MAX_RATES,
    DEFAULT_REFUSAL_PATTERNS,
    EVENT_NAME,
    TRUNCATION_FINISH_REASONS,
    EvaluationOutcome,
    EvaluationResult,
    EvaluationSummary,
    Evaluator,
    LengthDrift,
    LLMQualityReport,
    ResponseChecker,
    ResponseFlags,
    llm_quality,
)

__all__ = [
    "DEFAULT_MAX_RATES",
    "DEFAULT_REFUSAL_PATTERNS",
    "EVENT_NAME",
    "EvaluationOutcome",
    "EvaluationResult",
    "EvaluationSummary",
    "Evaluator",
    "LLMQualityReport",
    "LengthDrift",
    "ResponseChecker",
    "ResponseFlags",
    "TRUNCATION_FINISH_REASONS",
    "llm_quality",
    "named_evaluators",
    "run_evaluator",
]
