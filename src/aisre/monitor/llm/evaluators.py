"""LLM evaluator hooks: the Evaluator contract, running evaluators safely, OTel `gen_ai.evaluation.result` events.

The contract and the event attributes are defined in docs/statistics-importance-llm.md.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from aisre.errors import DataError, InvalidParameterError
from aisre.records import InferenceRecord

EVENT_NAME = "gen_ai.evaluation.result"


@dataclass(frozen=True, slots=True)
class EvaluationResult:
    """What an evaluator says of one response: a score in [0, 1] and/or a label, and why."""

    score: float | None = None
    label: str | None = None
    explanation: str | None = None


class Evaluator(Protocol):
    """`(prompt, response, record) -> EvaluationResult | float | str | mapping`.

    A number is a score, a string a label, a mapping has keys score/label/explanation.
    `record` is None when plain texts are evaluated. Raising counts as an error, never
    crashes the window. Name it with a `name` attribute, a mapping key, or its __name__.
    """

    def __call__(self, prompt: Any, response: str | None, record: InferenceRecord | None) -> Any: ...


@dataclass(frozen=True, slots=True)
class EvaluationOutcome:
    """One evaluator's verdict on one response, or the error it raised."""

    name: str
    score: float | None = None
    label: str | None = None
    explanation: str | None = None
    error_type: str | None = None
    error: str | None = None

    def event(self, response_id: str | None = None) -> dict[str, Any]:
        """As an OpenTelemetry `gen_ai.evaluation.result` event: {"name", "attributes"}."""
        attributes: dict[str, Any] = {"gen_ai.evaluation.name": self.name}
        for key, value in (
            ("gen_ai.evaluation.score.value", self.score),
            ("gen_ai.evaluation.score.label", self.label),
            ("gen_ai.evaluation.explanation", self.explanation),
            ("gen_ai.response.id", response_id),
            ("error.type", self.error_type),
        ):
            if value is not None:
                attributes[key] = value
        return {"name": EVENT_NAME, "attributes": attributes}


@dataclass(slots=True)
class EvaluationSummary:
    """One evaluator over a window: mean score (of responses that got one), labels, errors."""

    name: str
    count: int = 0
    scored: int = 0
    mean_score: float | None = None
    labels: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    error_messages: list[str] = field(default_factory=list)


def named_evaluators(evaluators: Any) -> dict[str, Evaluator]:
    """Evaluators by name: a mapping as given, else each one's `name` or `__name__`; names must be unique."""
    pairs = (
        list(evaluators.items())
        if isinstance(evaluators, Mapping)
        else [(getattr(e, "name", None) or getattr(e, "__name__", None), e) for e in evaluators]
    )
    named: dict[str, Evaluator] = {}
    for i, (name, fn) in enumerate(pairs):
        if not isinstance(name, str) or not name:
            raise InvalidParameterError(f"evaluators[{i}]: cannot name it; give it a `name` or pass a mapping")
        if not callable(fn):
            raise InvalidParameterError(f"evaluators[{name!r}]: expected a callable, got {type(fn).__name__}")
        if name in named:
            raise InvalidParameterError(f"evaluators: two evaluators are named {name!r}")
        named[name] = fn
    return named


def run_evaluator(name: str, fn: Evaluator, prompt: Any, text: str | None, record: Any) -> EvaluationOutcome:
    """One evaluator on one response; whatever it raises becomes an outcome with `error` set."""
    try:
        result = fn(prompt, text, record)
        score, label, explanation = _coerce(result)
    except Exception as exc:  # a broken evaluator is a counted error, never a crashed window
        message = f"{type(exc).__name__}: {exc}"
        return EvaluationOutcome(name, error_type=type(exc).__qualname__, error=message)
    return EvaluationOutcome(name, score, label, explanation)


def _coerce(result: Any) -> tuple[float | None, str | None, str | None]:
    if isinstance(result, EvaluationResult):
        score, label, explanation = result.score, result.label, result.explanation
    elif isinstance(result, Mapping):
        score, label, explanation = result.get("score"), result.get("label"), result.get("explanation")
    elif isinstance(result, bool | int | float | np.number | np.bool_):
        score, label, explanation = float(result), None, None
    elif isinstance(result, str):
        score, label, explanation = None, result, None
    else:
        raise DataError(
            f"evaluator returned {type(result).__name__}; expected a score, a label, a mapping or an EvaluationResult"
        )
    if score is not None:
        score = float(score)
        if not 0.0 <= score <= 1.0:  # also rejects NaN
            raise DataError(f"score {score!r} is outside [0, 1]")
    if score is None and label is None:
        raise DataError("evaluator returned neither a score nor a label")
    return score, None if label is None else str(label), None if explanation is None else str(explanation)


def summarise_evaluations(
    named: Mapping[str, Evaluator], outcomes: Iterable[Sequence[EvaluationOutcome]]
) -> dict[str, EvaluationSummary]:
    """Per evaluator over a window; `outcomes` holds each response's list of evaluation outcomes."""
    out = {name: EvaluationSummary(name) for name in named}
    scores: dict[str, list[float]] = {name: [] for name in named}
    labels: dict[str, Counter] = {name: Counter() for name in named}
    for evaluations in outcomes:
        for e in evaluations:
            s = out[e.name]
            s.count += 1
            if e.error is not None:
                s.errors += 1
                if len(s.error_messages) < 10:  # the first few say enough; a window may hold millions
                    s.error_messages.append(e.error)
                continue
            if e.score is not None:
                scores[e.name].append(e.score)
            if e.label is not None:
                labels[e.name][e.label] += 1
    for name, s in out.items():
        s.scored = len(scores[name])
        s.mean_score = math.fsum(scores[name]) / s.scored if s.scored else None
        s.labels = dict(labels[name])
    return out
