"""Shadow evaluation: the shadow version's answers against the primary's, on the same requests.

How shadow records look (gateway/openai_api.py and oip_api.py `_shadow`): the gateway mirrors
a sampled request to the shadow version in the background and records the answer as a
separate InferenceRecord with `route=shadow`, the same `key_id`, `tags` and (OIP) `inputs`
rows, and its own id and ts. **No field names the primary record it mirrors**: `trace_id`
is only set when tracing is on and the caller sent a traceparent (and one trace may hold
several requests). So pairs are found, in order of reliability, by:

1. `tags[pair_tag]` (default "request_id") when both records carry it (exact);
2. `trace_id` when it occurs exactly once among the primaries and once among the shadows;
3. content: same `key_id` and same `inputs`, the nearest primary in time within `max_gap_s`,
   each primary used once (OIP rows, or OpenAI requests with `log_content`).

The report says how many pairs each way found and how many shadow records stayed unpaired.
Labels arrive for the record the caller saw (the primary); a pair's label judges both answers.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import orjson
from scipy import stats as sps

from aisre.errors import DataError, InvalidParameterError
from aisre.records import InferenceRecord, Label, Signal
from aisre.records.record import Route, Status
from aisre.respond.samples import same_value
from aisre.store.base import RecordFilter

PAIR_TAG = "request_id"


@dataclass(frozen=True, slots=True)
class Pair:
    primary: InferenceRecord
    shadow: InferenceRecord
    label: Label | None
    method: str


@dataclass(frozen=True)
class ShadowCriteria:
    """When a shadow passes (a promotion criterion): at least `min_pairs` pairs; agreement >=
    `min_agreement` (class predictions) or score/prediction Pearson correlation >=
    `min_correlation` (numbers); shadow error rate at most `max_error_rate_delta` above the
    primary's on the pairs; p95 latency at most `max_latency_ratio` times the primary's; and,
    once `min_labels` pairs are labelled, accuracy not significantly worse (one-sided exact
    McNemar test at `alpha`)."""

    min_pairs: int = 100
    min_agreement: float = 0.95
    min_correlation: float = 0.9
    max_error_rate_delta: float = 0.01
    max_latency_ratio: float = 1.5
    min_labels: int = 50
    alpha: float = 0.05


def _content_key(r: InferenceRecord) -> tuple[str | None, bytes] | None:
    if r.inputs is None:
        return None
    try:
        return (r.key_id, orjson.dumps(r.inputs, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY))
    except TypeError:
        return None


def pair_records(
    primaries: list[tuple[InferenceRecord, Label | None]],
    shadows: list[InferenceRecord],
    *,
    pair_tag: str = PAIR_TAG,
    max_gap_s: float = 60.0,
) -> tuple[list[Pair], list[InferenceRecord]]:
    """Pair each shadow record with the primary record of the same request (see module docstring);
    returns (pairs, unpaired shadow records)."""
    used: set[str] = set()
    by_tag = {r.tags[pair_tag]: (r, lab) for r, lab in primaries if pair_tag in r.tags}
    trace_counts: dict[str, int] = defaultdict(int)
    for r, _ in primaries:
        if r.trace_id:
            trace_counts[r.trace_id] += 1
    shadow_traces: dict[str, int] = defaultdict(int)
    for s in shadows:
        if s.trace_id:
            shadow_traces[s.trace_id] += 1
    by_trace = {r.trace_id: (r, lab) for r, lab in primaries if r.trace_id and trace_counts[r.trace_id] == 1}
    by_content: dict[Any, list[tuple[InferenceRecord, Label | None]]] = defaultdict(list)
    for r, lab in primaries:
        key = _content_key(r)
        if key is not None:
            by_content[key].append((r, lab))
    pairs, unpaired = [], []
    for s in shadows:
        found, method = None, ""
        if pair_tag in s.tags and s.tags[pair_tag] in by_tag:
            found, method = by_tag[s.tags[pair_tag]], "tag"
        elif s.trace_id and shadow_traces[s.trace_id] == 1 and s.trace_id in by_trace:
            found, method = by_trace[s.trace_id], "trace_id"
        elif (key := _content_key(s)) is not None:
            near = [(abs(r.ts - s.ts), r, lab) for r, lab in by_content.get(key, ()) if r.id not in used]
            near = [x for x in near if x[0] <= max_gap_s]
            if near:
                _, r, lab = min(near, key=lambda x: x[0])
                found, method = (r, lab), "content"
        if found is None or found[0].id in used:
            unpaired.append(s)
            continue
        used.add(found[0].id)
        pairs.append(Pair(found[0], s, found[1], method))
    return pairs, unpaired


@dataclass
class ShadowReport:
    model: str
    shadow: str
    primary_versions: list[str]
    pairs: int
    unpaired_shadow: int
    pairing: dict[str, int]
    agreement: dict[str, float] | None
    correlation: dict[str, float] | None
    errors: dict[str, float]
    latency: dict[str, float]
    quality: dict[str, float] | None
    checks: list[dict[str, Any]]
    passed: bool
    criteria: ShadowCriteria
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def signals(self, window_start: float | None = None, window_end: float | None = None) -> list[Signal]:
        """`shadow_*` signals about the shadow version (labels: primary = the primary version(s))."""
        labels = {"primary": ",".join(self.primary_versions)}
        c = self.criteria
        scope: dict[str, Any] = {"window_start": window_start, "window_end": window_end}
        out = [Signal(self.model, self.shadow, "shadow_pairs", float(self.pairs), labels=labels, **scope)]

        def add(name: str, value: float, threshold: float | None, breached: bool, extra: dict[str, str] | None = None):
            if not math.isnan(value):
                out.append(
                    Signal(
                        self.model, self.shadow, name, value, threshold, breached, {**labels, **(extra or {})}, **scope
                    )
                )

        if self.agreement:
            v = self.agreement["rate"]
            add("shadow_agreement", v, c.min_agreement, v < c.min_agreement)
        if self.correlation:
            for method in ("pearson", "spearman"):
                v = self.correlation[method]
                add("shadow_score_correlation", v, c.min_correlation, v < c.min_correlation, {"method": method})
            add("shadow_mean_abs_difference", self.correlation["mean_abs_difference"], None, False)
        d = self.errors["delta"]
        add("shadow_error_rate_delta", d, c.max_error_rate_delta, d > c.max_error_rate_delta)
        add("shadow_latency_delta_seconds", self.latency["mean_delta_s"], None, False)
        r = self.latency["p95_ratio"]
        add("shadow_latency_p95_ratio", r, c.max_latency_ratio, r > c.max_latency_ratio)
        if self.quality:
            add("shadow_accuracy_delta", self.quality["delta"], None, self.quality["p_worse"] <= c.alpha)
        add("shadow_passed", float(self.passed), 1.0, not self.passed)
        return out


def _numbers(values: list[Any]) -> np.ndarray | None:
    """Floats if every value is a real number (not bool), else None."""
    try:
        if any(isinstance(v, bool) or v is None for v in values):
            return None
        return np.asarray([float(v) for v in values])
    except (TypeError, ValueError):
        return None


def _score(r: InferenceRecord) -> float | None:
    """The positive-class score (last class in sorted order) of a dict of class scores."""
    if isinstance(r.scores, dict) and r.scores:
        try:
            return float(r.scores[sorted(r.scores, key=str)[-1]])
        except (TypeError, ValueError):
            return None
    return None


def evaluate_pairs(
    model: str, shadow: str, pairs: list[Pair], unpaired: int, criteria: ShadowCriteria | None = None
) -> ShadowReport:
    """The shadow report of already-paired records (pure)."""
    c = criteria or ShadowCriteria()
    both_ok = [p for p in pairs if p.primary.status == Status.OK and p.shadow.status == Status.OK]
    pp = [p.primary.prediction for p in both_ok]
    sp = [p.shadow.prediction for p in both_ok]
    num_p, num_s = _numbers(pp), _numbers(sp)
    numeric = num_p is not None and num_s is not None and bool(np.any(num_p != np.round(num_p)))
    agreement = correlation = None
    checks: list[dict[str, Any]] = [_check("pairs", len(pairs) >= c.min_pairs, f"{len(pairs)} >= {c.min_pairs}")]
    if both_ok and not numeric:
        agree = sum(same_value(a, b) for a, b in zip(pp, sp, strict=True))
        lo, hi = sps.binomtest(agree, len(both_ok)).proportion_ci(1 - c.alpha, method="wilson")
        agreement = {"rate": agree / len(both_ok), "lower": float(lo), "upper": float(hi), "n": float(len(both_ok))}
        checks.append(
            _check("agreement", agreement["rate"] >= c.min_agreement, f"{agreement['rate']:.4f} >= {c.min_agreement}")
        )
    scores = [(_score(p.primary), _score(p.shadow)) for p in both_ok]
    xs = np.asarray([s for s in scores if s[0] is not None and s[1] is not None], dtype=float).reshape(-1, 2)
    if numeric and num_p is not None and num_s is not None:
        xs = np.column_stack([num_p, num_s])
    if len(xs) >= 3 and np.ptp(xs[:, 0]) > 0 and np.ptp(xs[:, 1]) > 0:
        correlation = {
            "pearson": float(sps.pearsonr(xs[:, 0], xs[:, 1]).statistic),
            "spearman": float(sps.spearmanr(xs[:, 0], xs[:, 1]).statistic),
            "mean_abs_difference": float(np.mean(np.abs(xs[:, 1] - xs[:, 0]))),
            "n": float(len(xs)),
        }
        if numeric or agreement is None:
            ok = correlation["pearson"] >= c.min_correlation
            checks.append(_check("correlation", ok, f"pearson {correlation['pearson']:.4f} >= {c.min_correlation}"))
    errors = _errors(pairs, c)
    checks.append(
        _check(
            "error_rate_delta",
            errors["delta"] <= c.max_error_rate_delta,
            f"{errors['delta']:.4f} <= {c.max_error_rate_delta}",
        )
    )
    latency = _latency(both_ok)
    checks.append(
        _check(
            "latency_p95_ratio",
            not latency["p95_ratio"] > c.max_latency_ratio,
            f"{latency['p95_ratio']:.3f} <= {c.max_latency_ratio}",
        )
    )
    quality = _quality(both_ok)
    notes = []
    if quality is not None and quality["n"] >= c.min_labels:
        checks.append(
            _check(
                "accuracy", quality["p_worse"] > c.alpha, f"McNemar one-sided p={quality['p_worse']:.3g} > {c.alpha}"
            )
        )
    else:
        notes.append(f"fewer than {c.min_labels} labelled pairs: quality not judged yet")
    versions = sorted({p.primary.version for p in pairs})
    pairing: dict[str, int] = defaultdict(int)
    for p in pairs:
        pairing[p.method] += 1
    passed = all(ch["passed"] for ch in checks)
    return ShadowReport(
        model,
        shadow,
        versions,
        len(pairs),
        unpaired,
        dict(pairing),
        agreement,
        correlation,
        errors,
        latency,
        quality,
        checks,
        passed,
        c,
        notes,
    )


def _check(name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "passed": bool(passed), "detail": detail}


def _errors(pairs: list[Pair], c: ShadowCriteria) -> dict[str, float]:
    """Error rates on the pairs and shadow - primary with a paired Wald interval:
    Var = (b + c - (b - c)²/n) / n², b/c the discordant counts."""
    done = [p for p in pairs if p.primary.status != Status.CANCELLED and p.shadow.status != Status.CANCELLED]
    n = len(done)
    if n == 0:
        return {"primary": math.nan, "shadow": math.nan, "delta": math.nan, "lower": math.nan, "upper": math.nan}
    ep = np.asarray([p.primary.status == Status.ERROR for p in done])
    es = np.asarray([p.shadow.status == Status.ERROR for p in done])
    b, d = float(np.sum(es & ~ep)), float(np.sum(ep & ~es))
    delta = (b - d) / n
    se = math.sqrt(max(b + d - (b - d) ** 2 / n, 0.0)) / n
    z = float(sps.norm.ppf(1 - c.alpha / 2))
    return {
        "primary": float(ep.mean()),
        "shadow": float(es.mean()),
        "delta": delta,
        "lower": delta - z * se,
        "upper": delta + z * se,
    }


def _latency(pairs: list[Pair]) -> dict[str, float]:
    lat = np.asarray(
        [
            (p.primary.latency_s, p.shadow.latency_s)
            for p in pairs
            if p.primary.latency_s is not None and p.shadow.latency_s is not None
        ],
        dtype=float,
    ).reshape(-1, 2)
    if len(lat) == 0:
        return {
            "primary_p95_s": math.nan,
            "shadow_p95_s": math.nan,
            "mean_delta_s": math.nan,
            "p95_ratio": math.nan,
            "n": 0.0,
        }
    p95 = np.percentile(lat, 95, axis=0)
    return {
        "primary_mean_s": float(lat[:, 0].mean()),
        "shadow_mean_s": float(lat[:, 1].mean()),
        "primary_p95_s": float(p95[0]),
        "shadow_p95_s": float(p95[1]),
        "mean_delta_s": float((lat[:, 1] - lat[:, 0]).mean()),
        "p95_ratio": float(p95[1] / p95[0]) if p95[0] > 0 else math.nan,
        "n": float(len(lat)),
    }


def _quality(pairs: list[Pair]) -> dict[str, float] | None:
    """Accuracy of both on labelled pairs; exact McNemar (binomial on discordant pairs), one-sided
    "shadow worse": p = P(X >= b | X ~ Bin(b + c, 1/2)), b = primary right & shadow wrong."""
    labelled = [p for p in pairs if p.label is not None]
    if not labelled:
        return None
    rp = np.asarray([same_value(p.primary.prediction, p.label.value) for p in labelled if p.label is not None])
    rs = np.asarray([same_value(p.shadow.prediction, p.label.value) for p in labelled if p.label is not None])
    b, d = int(np.sum(rp & ~rs)), int(np.sum(rs & ~rp))
    p_worse = float(sps.binomtest(b, b + d, 0.5, alternative="greater").pvalue) if b + d else 1.0
    return {
        "primary": float(rp.mean()),
        "shadow": float(rs.mean()),
        "delta": float(rs.mean() - rp.mean()),
        "p_worse": p_worse,
        "n": float(len(labelled)),
    }


def shadow_report(
    store: Any,
    model: str,
    shadow: str,
    *,
    since: float | None = None,
    until: float | None = None,
    criteria: ShadowCriteria | None = None,
    pair_tag: str = PAIR_TAG,
    max_gap_s: float = 60.0,
    write_signals: bool = False,
    now: float | None = None,
) -> ShadowReport:
    """Pair the stored shadow records of `model/shadow` with the primaries over [since, until) and
    judge them; with `write_signals`, store the `shadow_*` signals (computed at `now`)."""
    rows = store.labeled_records(RecordFilter(model, None, since, until), only_labeled=False)
    shadows = [r for r, _ in rows if Route(r.route) == Route.SHADOW and r.version == shadow]
    primaries = [(r, lab) for r, lab in rows if Route(r.route) in (Route.PRIMARY, Route.CANARY) and r.version != shadow]
    if not shadows:
        raise DataError(f"{model}/{shadow}: no shadow records (route=shadow) in the window")
    if max_gap_s <= 0:
        raise InvalidParameterError(f"max_gap_s: expected a number > 0, got {max_gap_s!r}")
    pairs, unpaired = pair_records(primaries, shadows, pair_tag=pair_tag, max_gap_s=max_gap_s)
    report = evaluate_pairs(model, shadow, pairs, len(unpaired), criteria)
    if unpaired:
        report.notes.append(f"{len(unpaired)} shadow record(s) without a primary they could be paired with")
    if write_signals:
        if now is None:
            raise InvalidParameterError("now: expected the time (epoch seconds) the signals are computed at")
        store.write_signals(report.signals(since, until), now)
    return report
