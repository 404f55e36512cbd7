"""LLM output quality per response and per window: empty, truncated, refused, invalid JSON/schema,
length drift, and user-supplied evaluators, as signals. No network.

    report = llm_quality(store.records(RecordFilter(model="chat")), schema=..., reference=ref_report)
    store.write_signals(report.signals("chat", "v1", start, end), ts=now)

Every rule (the refusal patterns, the truncation rule, the schema subset, the evaluator
contract and its OpenTelemetry `gen_ai.evaluation.result` attributes) is defined in
docs/statistics-importance-llm.md.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from aisre.monitor.frame import DataError
from aisre.monitor.jsonschema_lite import check_schema, schema_errors
from aisre.records import InferenceRecord, Signal, Status

DEFAULT_REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bI(?:['’]m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:['’]|no)?t|cannot|won['’]t|will not|"
    r"am unable|['’]m unable|am not able)\b",
    r"\bI can(?:['’]|no)?t (?:help|assist)(?: you)? with\b",
    r"\bI cannot (?:help|assist|provide|comply|fulfil|fulfill|do that)\b",
    r"\bI(?:['’]m| am) (?:not able|unable) to (?:help|assist|provide|comply|fulfil|fulfill)\b",
    r"\bI (?:won['’]t|will not) be able to (?:help|assist|provide)\b",
    r"\bI must (?:decline|refuse)\b",
    r"\bI(?:['’]m| am) not (?:allowed|permitted) to\b",
    r"\bas an AI(?: language model| assistant| model)?\b",
)
"""Case-insensitive regexes searched in the first `refusal_scan_chars` characters."""
TRUNCATION_FINISH_REASONS = frozenset({"length", "max_tokens", "max_output_tokens"})
"""Finish reasons (lower-cased) meaning the token limit cut the response: OpenAI `length`,
Anthropic `max_tokens`, Gemini `MAX_TOKENS`, OpenAI Responses `max_output_tokens`."""
DEFAULT_MAX_RATES: dict[str, float] = {
    "llm_empty_rate": 0.01, "llm_truncated_rate": 0.05, "llm_refusal_rate": 0.05,
    "llm_json_invalid_rate": 0.01, "llm_schema_invalid_rate": 0.01,
}  # fmt: skip
EVENT_NAME = "gen_ai.evaluation.result"


# -- evaluators -------------------------------------------------------------------------------
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
        for key, value in (("gen_ai.evaluation.score.value", self.score),
                           ("gen_ai.evaluation.score.label", self.label),
                           ("gen_ai.evaluation.explanation", self.explanation),
                           ("gen_ai.response.id", response_id), ("error.type", self.error_type)):  # fmt: skip
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


# -- one response -----------------------------------------------------------------------------
@dataclass(slots=True)
class ResponseFlags:
    """Quality flags of one response. `truncated` is None when neither a finish reason nor a
    token count and limit were known; `json_valid`/`schema_errors` are None when not checked."""

    index: int
    record_id: str | None
    empty: bool
    truncated: bool | None
    refusal: bool
    chars: int
    tokens: int | None = None
    finish_reason: str | None = None
    refusal_pattern: str | None = None
    response_id: str | None = None
    json_valid: bool | None = None
    schema_errors: list[str] | None = None
    evaluations: list[EvaluationOutcome] = field(default_factory=list)

    @property
    def schema_valid(self) -> bool | None:
        return None if self.schema_errors is None else not self.schema_errors

    def to_dict(self) -> dict[str, Any]:
        names = ("index", "record_id", "empty", "truncated", "refusal", "chars", "tokens", "finish_reason",
                 "refusal_pattern", "response_id", "json_valid", "schema_errors")  # fmt: skip
        out = {k: getattr(self, k) for k in names}
        out["evaluations"] = [e.event(self.response_id) for e in self.evaluations]
        return out


class ResponseChecker:
    """The per-response rules, compiled once: empty, truncated, refusal, JSON, schema."""

    def __init__(
        self,
        *,
        refusal_patterns: Sequence[str] = DEFAULT_REFUSAL_PATTERNS,
        refusal_scan_chars: int | None = 500,
        max_tokens: int | None = None,
        expect_json: bool = False,
        schema: Mapping[str, Any] | None = None,
    ) -> None:
        self.refusal_patterns = []
        for i, pattern in enumerate(refusal_patterns):
            try:
                self.refusal_patterns.append(re.compile(pattern, re.IGNORECASE))
            except re.error as exc:
                raise ValueError(f"refusal_patterns[{i}]: invalid regex {pattern!r}: {exc}") from None
        if refusal_scan_chars is not None and refusal_scan_chars < 1:
            raise ValueError(
                f"refusal_scan_chars: expected an integer >= 1 or None, got {refusal_scan_chars!r}")
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
            raise ValueError(f"max_tokens: expected an integer >= 1 or None, got {max_tokens!r}")
        if schema is not None:
            check_schema(schema)
        self.refusal_scan_chars = refusal_scan_chars
        self.max_tokens = max_tokens
        self.schema = schema
        self.expect_json = expect_json or schema is not None

    def check(self, text: str | None, *, index: int = 0, record_id: str | None = None,
              tokens: int | None = None, finish_reason: str | None = None,
              max_tokens: int | None = None) -> ResponseFlags:  # fmt: skip
        """Flags for one response; `max_tokens` overrides the checker's limit for this one."""
        text = text or ""
        limit = max_tokens if max_tokens is not None else self.max_tokens
        if finish_reason is not None:  # the server's own word wins over counting tokens
            truncated = finish_reason.strip().lower() in TRUNCATION_FINISH_REASONS
        else:
            truncated = None if tokens is None or limit is None else tokens >= limit
        head = text if self.refusal_scan_chars is None else text[: self.refusal_scan_chars]
        matched = next((p.pattern for p in self.refusal_patterns if p.search(head)), None)
        flags = ResponseFlags(index, record_id, not text.strip(), truncated, matched is not None, len(text),
                              tokens, finish_reason, matched)  # fmt: skip
        if self.expect_json:
            try:
                value = json.loads(text, parse_constant=_reject_constant)
                flags.json_valid = True
            except ValueError:
                flags.json_valid = False
            if self.schema is not None:
                flags.schema_errors = schema_errors(value, self.schema) if flags.json_valid else [
                    "/: not valid JSON"]  # fmt: skip
        return flags


# -- a window ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LengthDrift:
    """Two-sample KS test of response lengths (current vs reference) in `unit` chars or tokens."""

    unit: str
    statistic: float
    p_value: float
    drift: bool
    n_reference: int
    n_current: int
    alpha: float
    min_statistic: float


@dataclass(slots=True)
class LLMQualityReport:
    """Quality of the LLM responses of one window.

    `counts[k]` responses were flagged out of `judged[k]` that could be checked (truncation
    needs a finish reason or tokens and a limit; JSON needs `expect_json` or a schema);
    `rates["llm_<k>_rate"]` = counts / judged, None when nothing could be checked.
    """

    n: int
    counts: dict[str, int]
    judged: dict[str, int]
    rates: dict[str, float | None]
    flags: list[ResponseFlags]
    lengths_chars: np.ndarray
    lengths_tokens: np.ndarray
    length_drift: dict[str, LengthDrift]
    evaluations: dict[str, EvaluationSummary]
    max_rates: dict[str, float]
    min_scores: dict[str, float]
    skipped_errors: int = 0

    def signals(self, model: str, version: str, window_start: float | None = None,
                window_end: float | None = None) -> list[Signal]:  # fmt: skip
        """Rates (breached above `max_rates`), `llm_response_length_drift` {unit} (value: KS D,
        threshold: min D), `llm_evaluation_score` {evaluation} (breached below `min_scores`)."""
        common = {"model": model, "version": version, "window_start": window_start, "window_end": window_end}
        out = []
        for name, rate in self.rates.items():
            if rate is not None:
                limit = self.max_rates.get(name)
                out.append(Signal(name=name, value=rate, threshold=limit,
                                  breached=limit is not None and rate > limit, **common))  # fmt: skip
        for unit, d in self.length_drift.items():
            out.append(Signal(name="llm_response_length_drift", value=d.statistic, threshold=d.min_statistic,
                              breached=d.drift, labels={"unit": unit}, **common))  # fmt: skip
        for name, summary in self.evaluations.items():
            if summary.mean_score is not None:
                floor = self.min_scores.get(name)
                out.append(Signal(name="llm_evaluation_score", value=summary.mean_score, threshold=floor,
                                  breached=floor is not None and summary.mean_score < floor,
                                  labels={"evaluation": name}, **common))  # fmt: skip
        return out

    def to_dict(self, include_flags: bool = True) -> dict[str, Any]:
        """JSON-ready: counts, rates, length percentiles, drift, evaluations (and per-record flags)."""
        out: dict[str, Any] = {
            "n": self.n, "skipped_errors": self.skipped_errors, "counts": self.counts, "judged": self.judged,
            "rates": self.rates,
            "max_rates": self.max_rates, "min_scores": self.min_scores,
            "length": {"chars": _distribution(self.lengths_chars),
                       "tokens": _distribution(self.lengths_tokens)},
            "length_drift": {u: {k: getattr(d, k) for k in LengthDrift.__slots__}
                             for u, d in self.length_drift.items()},
            "evaluations": {n: {k: getattr(s, k) for k in EvaluationSummary.__slots__}
                            for n, s in self.evaluations.items()},
        }  # fmt: skip
        if include_flags:
            out["flags"] = [f.to_dict() for f in self.flags]
        return out


def llm_quality(
    data: Sequence[InferenceRecord] | Sequence[str | None],
    *,
    prompts: Sequence[Any] | None = None,
    output_tokens: Sequence[int | None] | None = None,
    finish_reasons: Sequence[str | None] | None = None,
    max_tokens: int | None = None,
    refusal_patterns: Sequence[str] = DEFAULT_REFUSAL_PATTERNS,
    refusal_scan_chars: int | None = 500,
    expect_json: bool = False,
    schema: Mapping[str, Any] | None = None,
    evaluators: Mapping[str, Evaluator] | Sequence[Evaluator] = (),
    reference: LLMQualityReport | Sequence[InferenceRecord] | Sequence[str | None] | None = None,
    max_rates: Mapping[str, float | None] | None = None,
    min_scores: Mapping[str, float] | None = None,
    length_alpha: float = 0.05,
    length_min_statistic: float = 0.1,
) -> LLMQualityReport:
    """The quality report of one window of LLM responses: records (from a store) or plain texts.

    For texts, `prompts`, `output_tokens` and `finish_reasons` are optional parallel sequences.
    Records with status "error" are skipped (counted in `skipped_errors`): a failed call is an
    availability problem, not an empty answer. `reference` (a report, or records/texts) turns
    on the length drift test. JSON is checked when `expect_json` or a `schema` is given.
    `max_rates` overrides `DEFAULT_MAX_RATES` per signal (None: no limit, never breached).
    """
    if not 0.0 < length_alpha < 1.0:
        raise ValueError(f"length_alpha: expected a p-value threshold in (0, 1), got {length_alpha!r}")
    unknown = sorted(set(max_rates or {}) - set(DEFAULT_MAX_RATES))
    if unknown:
        raise ValueError(f"max_rates: unknown signal(s) {unknown}; expected some of "
                         f"{sorted(DEFAULT_MAX_RATES)}")  # fmt: skip
    limits = {k: v for k, v in {**DEFAULT_MAX_RATES, **(max_rates or {})}.items() if v is not None}
    checker = ResponseChecker(refusal_patterns=refusal_patterns, refusal_scan_chars=refusal_scan_chars,
                              max_tokens=max_tokens, expect_json=expect_json, schema=schema)  # fmt: skip
    named = _named_evaluators(evaluators)
    items, skipped = _items(data, prompts, output_tokens, finish_reasons)
    flags = []
    for index, (text, prompt, tokens, reason, limit, record) in enumerate(items):
        f = checker.check(text, index=index, record_id=None if record is None else record.id,
                          tokens=tokens, finish_reason=reason, max_tokens=limit)  # fmt: skip
        if record is not None:
            f.response_id = (record.tags or {}).get("gen_ai.response.id")  # the provider's id, if tagged
        f.evaluations = [_evaluate(name, fn, prompt, text, record) for name, fn in named.items()]
        flags.append(f)
    n = len(flags)
    judged = {"empty": n, "truncated": sum(f.truncated is not None for f in flags), "refusal": n,
              "json_invalid": n if checker.expect_json else 0,
              "schema_invalid": n if schema is not None else 0}  # fmt: skip
    counts = {"empty": sum(f.empty for f in flags), "truncated": sum(f.truncated is True for f in flags),
              "refusal": sum(f.refusal for f in flags),
              "json_invalid": sum(f.json_valid is False for f in flags),
              "schema_invalid": sum(f.schema_valid is False for f in flags)}  # fmt: skip
    rates = {f"llm_{k}_rate": (counts[k] / judged[k] if judged[k] else None) for k in counts}
    chars = np.array([f.chars for f in flags], dtype=float)
    tokens = np.array([f.tokens for f in flags if f.tokens is not None], dtype=float)
    drift = {}
    if reference is not None:
        if not isinstance(reference, LLMQualityReport):
            reference = llm_quality(reference, refusal_patterns=refusal_patterns)
        for unit, ref, cur in (("chars", reference.lengths_chars, chars),
                               ("tokens", reference.lengths_tokens, tokens)):  # fmt: skip
            if len(ref) and len(cur):
                drift[unit] = _length_drift(unit, ref, cur, length_alpha, length_min_statistic)
    return LLMQualityReport(n, counts, judged, rates, flags, chars, tokens, drift,
                            _summaries(named, flags), limits, dict(min_scores or {}), skipped)  # fmt: skip


# -- helpers ----------------------------------------------------------------------------------
def _items(data: Any, prompts: Any, output_tokens: Any, finish_reasons: Any) -> tuple[list[tuple], int]:
    """(text, prompt, tokens, finish_reason, max_tokens, record) per analysed response."""
    if isinstance(data, str | bytes) or not isinstance(data, Sequence):
        raise DataError(
            f"data: expected a sequence of InferenceRecords or of texts, got {type(data).__name__}")
    if data and all(isinstance(r, InferenceRecord) for r in data):
        for name, given in (("prompts", prompts), ("output_tokens", output_tokens),
                            ("finish_reasons", finish_reasons)):  # fmt: skip
            if given is not None:
                raise DataError(f"{name}: only for plain texts; records carry their own")
        kept = [r for r in data if r.status != Status.ERROR]
        return [(r.output_text, r.inputs, r.output_tokens, _finish_reason(r), _max_tokens(r), r)
                for r in kept], len(data) - len(kept)  # fmt: skip
    bad = next((i for i, t in enumerate(data) if t is not None and not isinstance(t, str)), None)
    if bad is not None:
        raise DataError(f"data[{bad}]: expected a str or None (or every item an InferenceRecord), "
                        f"got {type(data[bad]).__name__}")  # fmt: skip
    columns = []
    for name, given in (("prompts", prompts), ("output_tokens", output_tokens),
                        ("finish_reasons", finish_reasons)):  # fmt: skip
        if given is not None and len(given) != len(data):
            raise DataError(f"{name}: expected {len(data)} values (one per text), got {len(given)}")
        columns.append([None] * len(data) if given is None else list(given))
    return [(t, p, k, f, None, None) for t, p, k, f in zip(data, *columns, strict=True)], 0


def _finish_reason(record: InferenceRecord) -> str | None:
    """From tags (`finish_reason`, or the OTel `gen_ai.response.finish_reasons`), else from a
    mapping prediction (`finish_reason`, `stop_reason`, or OpenAI `choices[0].finish_reason`)."""
    tags = record.tags or {}
    if tags.get("finish_reason"):
        return tags["finish_reason"]
    if tags.get("gen_ai.response.finish_reasons"):
        reasons = [r.strip(" []\"'") for r in tags["gen_ai.response.finish_reasons"].split(",")]
        return next((r for r in reasons if r.lower() in TRUNCATION_FINISH_REASONS), reasons[0])
    output = record.prediction
    if isinstance(output, Mapping):
        for key in ("finish_reason", "stop_reason"):
            if isinstance(output.get(key), str):
                return output[key]
        choices = output.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], Mapping):
            reason = choices[0].get("finish_reason")
            return reason if isinstance(reason, str) else None
    return None


def _max_tokens(record: InferenceRecord) -> int | None:
    value = (record.tags or {}).get("max_tokens") or (record.tags or {}).get("gen_ai.request.max_tokens")
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _named_evaluators(evaluators: Any) -> dict[str, Evaluator]:
    pairs = list(evaluators.items()) if isinstance(evaluators, Mapping) else [
        (getattr(e, "name", None) or getattr(e, "__name__", None), e) for e in evaluators]  # fmt: skip
    named: dict[str, Evaluator] = {}
    for i, (name, fn) in enumerate(pairs):
        if not isinstance(name, str) or not name:
            raise ValueError(f"evaluators[{i}]: cannot name it; give it a `name` or pass a mapping")
        if not callable(fn):
            raise ValueError(f"evaluators[{name!r}]: expected a callable, got {type(fn).__name__}")
        if name in named:
            raise ValueError(f"evaluators: two evaluators are named {name!r}")
        named[name] = fn
    return named


def _evaluate(name: str, fn: Evaluator, prompt: Any, text: str | None, record: Any) -> EvaluationOutcome:
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
        raise TypeError(f"evaluator returned {type(result).__name__}; expected a score, a label, "
                        "a mapping or an EvaluationResult")  # fmt: skip
    if score is not None:
        score = float(score)
        if not 0.0 <= score <= 1.0:  # also rejects NaN
            raise ValueError(f"score {score!r} is outside [0, 1]")
    if score is None and label is None:
        raise ValueError("evaluator returned neither a score nor a label")
    return score, None if label is None else str(label), None if explanation is None else str(explanation)


def _summaries(named: Mapping[str, Evaluator], flags: list[ResponseFlags]) -> dict[str, EvaluationSummary]:
    out = {name: EvaluationSummary(name) for name in named}
    scores: dict[str, list[float]] = {name: [] for name in named}
    labels: dict[str, Counter] = {name: Counter() for name in named}
    for f in flags:
        for e in f.evaluations:
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


def _length_drift(unit: str, ref: np.ndarray, cur: np.ndarray, alpha: float, min_d: float) -> LengthDrift:
    """KS through the univariate drift package (one implementation), scipy if it is absent."""
    try:
        from aisre.monitor.drift.stattests import KS

        result = KS(threshold=alpha).fit(ref).score(cur, column=f"length_{unit}")
        statistic, p_value = result.statistic, float(result.p_value)
    except ImportError:
        from scipy.stats import ks_2samp

        result = ks_2samp(ref, cur)
        statistic, p_value = float(result.statistic), float(result.pvalue)
    drift = p_value < alpha and statistic >= min_d
    return LengthDrift(unit, statistic, p_value, drift, len(ref), len(cur), alpha, min_d)


def _distribution(values: np.ndarray) -> dict[str, float | int | None]:
    if not len(values):
        return {"n": 0, "mean": None, "p50": None, "p90": None, "p99": None, "max": None}
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {"n": int(len(values)), "mean": float(values.mean()), "p50": float(p50), "p90": float(p90),
            "p99": float(p99), "max": float(values.max())}  # fmt: skip


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")  # Python accepts NaN/Infinity; RFC 8259 does not
