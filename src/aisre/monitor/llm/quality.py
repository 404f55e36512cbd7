"""LLM output quality per window: rates of flagged responses, length drift and evaluator scores, as signals.

    report = llm_quality(store.records(RecordFilter(model="chat")), schema=..., reference=ref_report)
    store.write_signals(report.signals("chat", "v1", start, end), ts=now)

No network. The per-response checks live in `checks.py`, the evaluator hook in
`evaluators.py`, schema checks (by `jsonschema`, the `aisre[llm]` extra) in `schema.py`; their
names are importable from here. Every rule (the refusal patterns, the truncation rule, schema
validity, the evaluator contract and its OpenTelemetry
`gen_ai.evaluation.result` attributes) is defined in docs/statistics-importance-llm.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.llm.checks import (
    DEFAULT_REFUSAL_PATTERNS,
    TRUNCATION_FINISH_REASONS,
    ResponseChecker,
    ResponseFlags,
)
from aisre.monitor.llm.evaluators import (
    EVENT_NAME,
    EvaluationOutcome,
    EvaluationResult,
    EvaluationSummary,
    Evaluator,
    named_evaluators,
    run_evaluator,
    summarise_evaluations,
)
from aisre.records import InferenceRecord, Signal, Status
from aisre.records.signal import SignalScope

__all__ = [
    "DEFAULT_MAX_RATES",
    "DEFAULT_REFUSAL_PATTERNS",
    "EVENT_NAME",
    "TRUNCATION_FINISH_REASONS",
    "EvaluationOutcome",
    "EvaluationResult",
    "EvaluationSummary",
    "Evaluator",
    "LLMQualityReport",
    "LengthDrift",
    "ResponseChecker",
    "ResponseFlags",
    "llm_quality",
]

DEFAULT_MAX_RATES: dict[str, float] = {
    "llm_empty_rate": 0.01,
    "llm_truncated_rate": 0.05,
    "llm_refusal_rate": 0.05,
    "llm_json_invalid_rate": 0.01,
    "llm_schema_invalid_rate": 0.01,
}


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

    def signals(
        self, model: str, version: str, window_start: float | None = None, window_end: float | None = None
    ) -> list[Signal]:
        """Rates (breached above `max_rates`), `llm_response_length_drift` {unit} (value: KS D,
        threshold: min D), `llm_evaluation_score` {evaluation} (breached below `min_scores`)."""
        common = SignalScope(model=model, version=version, window_start=window_start, window_end=window_end)
        out = []
        for name, rate in self.rates.items():
            if rate is not None:
                limit = self.max_rates.get(name)
                out.append(
                    Signal(
                        name=name, value=rate, threshold=limit, breached=limit is not None and rate > limit, **common
                    )
                )
        for unit, d in self.length_drift.items():
            out.append(
                Signal(
                    name="llm_response_length_drift",
                    value=d.statistic,
                    threshold=d.min_statistic,
                    breached=d.drift,
                    labels={"unit": unit},
                    **common,
                )
            )
        for name, summary in self.evaluations.items():
            if summary.mean_score is not None:
                floor = self.min_scores.get(name)
                out.append(
                    Signal(
                        name="llm_evaluation_score",
                        value=summary.mean_score,
                        threshold=floor,
                        breached=floor is not None and summary.mean_score < floor,
                        labels={"evaluation": name},
                        **common,
                    )
                )
        return out

    def to_dict(self, include_flags: bool = True) -> dict[str, Any]:
        """JSON-ready: counts, rates, length percentiles, drift, evaluations (and per-record flags)."""
        out: dict[str, Any] = {
            "n": self.n,
            "skipped_errors": self.skipped_errors,
            "counts": self.counts,
            "judged": self.judged,
            "rates": self.rates,
            "max_rates": self.max_rates,
            "min_scores": self.min_scores,
            "length": {"chars": _distribution(self.lengths_chars), "tokens": _distribution(self.lengths_tokens)},
            "length_drift": {
                u: {k: getattr(d, k) for k in LengthDrift.__slots__} for u, d in self.length_drift.items()
            },
            "evaluations": {
                n: {k: getattr(s, k) for k in EvaluationSummary.__slots__} for n, s in self.evaluations.items()
            },
        }
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
    Records with status "error" or "cancelled" are skipped (counted in `skipped_errors`): a
    failed call is an availability problem, not an empty answer, and a cancelled stream's
    partial text was cut by its client, not truncated by the model. `reference` (a report, or records/texts) turns
    on the length drift test. JSON is checked when `expect_json` or a `schema` is given.
    `max_rates` overrides `DEFAULT_MAX_RATES` per signal (None: no limit, never breached).
    """
    if not 0.0 < length_alpha < 1.0:
        raise InvalidParameterError(f"length_alpha: expected a p-value threshold in (0, 1), got {length_alpha!r}")
    unknown = sorted(set(max_rates or {}) - set(DEFAULT_MAX_RATES))
    if unknown:
        raise InvalidParameterError(
            f"max_rates: unknown signal(s) {unknown}; expected some of {sorted(DEFAULT_MAX_RATES)}"
        )
    limits = {k: v for k, v in {**DEFAULT_MAX_RATES, **(max_rates or {})}.items() if v is not None}
    checker = ResponseChecker(
        refusal_patterns=refusal_patterns,
        refusal_scan_chars=refusal_scan_chars,
        max_tokens=max_tokens,
        expect_json=expect_json,
        schema=schema,
    )
    named = named_evaluators(evaluators)
    items, skipped = _items(data, prompts, output_tokens, finish_reasons)
    flags = []
    for index, (text, prompt, tokens, reason, limit, record) in enumerate(items):
        f = checker.check(
            text,
            index=index,
            record_id=None if record is None else record.id,
            tokens=tokens,
            finish_reason=reason,
            max_tokens=limit,
        )
        if record is not None:
            f.response_id = (record.tags or {}).get("gen_ai.response.id")  # the provider's id, if tagged
        f.evaluations = [run_evaluator(name, fn, prompt, text, record) for name, fn in named.items()]
        flags.append(f)
    n = len(flags)
    judged = {
        "empty": n,
        "truncated": sum(f.truncated is not None for f in flags),
        "refusal": n,
        "json_invalid": n if checker.expect_json else 0,
        "schema_invalid": n if schema is not None else 0,
    }
    counts = {
        "empty": sum(f.empty for f in flags),
        "truncated": sum(f.truncated is True for f in flags),
        "refusal": sum(f.refusal for f in flags),
        "json_invalid": sum(f.json_valid is False for f in flags),
        "schema_invalid": sum(f.schema_valid is False for f in flags),
    }
    rates = {f"llm_{k}_rate": (counts[k] / judged[k] if judged[k] else None) for k in counts}
    chars = np.array([f.chars for f in flags], dtype=float)
    tokens = np.array([f.tokens for f in flags if f.tokens is not None], dtype=float)
    drift = {}
    if reference is not None:
        if not isinstance(reference, LLMQualityReport):
            reference = llm_quality(reference, refusal_patterns=refusal_patterns)
        for unit, ref, cur in (("chars", reference.lengths_chars, chars), ("tokens", reference.lengths_tokens, tokens)):
            if len(ref) and len(cur):
                drift[unit] = _length_drift(unit, ref, cur, length_alpha, length_min_statistic)
    return LLMQualityReport(
        n,
        counts,
        judged,
        rates,
        flags,
        chars,
        tokens,
        drift,
        summarise_evaluations(named, (f.evaluations for f in flags)),
        limits,
        dict(min_scores or {}),
        skipped,
    )


# -- helpers ----------------------------------------------------------------------------------
def _items(data: Any, prompts: Any, output_tokens: Any, finish_reasons: Any) -> tuple[list[tuple], int]:
    """(text, prompt, tokens, finish_reason, max_tokens, record) per analysed response."""
    if isinstance(data, str | bytes) or not isinstance(data, Sequence):
        raise DataError(f"data: expected a sequence of InferenceRecords or of texts, got {type(data).__name__}")
    if data and all(isinstance(r, InferenceRecord) for r in data):
        for name, given in (("prompts", prompts), ("output_tokens", output_tokens), ("finish_reasons", finish_reasons)):
            if given is not None:
                raise DataError(f"{name}: only for plain texts; records carry their own")
        kept = [r for r in data if r.status == Status.OK]
        return [(r.output_text, r.inputs, r.output_tokens, _finish_reason(r), _max_tokens(r), r) for r in kept], len(
            data
        ) - len(kept)
    bad = next((i for i, t in enumerate(data) if t is not None and not isinstance(t, str)), None)
    if bad is not None:
        raise DataError(
            f"data[{bad}]: expected a str or None (or every item an InferenceRecord), got {type(data[bad]).__name__}"
        )
    columns = []
    for name, given in (("prompts", prompts), ("output_tokens", output_tokens), ("finish_reasons", finish_reasons)):
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


def _length_drift(unit: str, ref: np.ndarray, cur: np.ndarray, alpha: float, min_d: float) -> LengthDrift:
    """KS through the univariate drift package (one implementation), scipy if it is absent."""
    try:
        from aisre.monitor.drift.stattests import KS

        result = KS(threshold=alpha).fit(ref).score(cur, column=f"length_{unit}")
        assert result.p_value is not None  # KS is a test: it always gives a p-value
        statistic, p_value = result.statistic, result.p_value
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
    return {
        "n": int(len(values)),
        "mean": float(values.mean()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "max": float(values.max()),
    }
