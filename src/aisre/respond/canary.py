"""Canary analysis: one step's verdict (promote | hold | rollback) from canary-vs-stable statistics.

Error rates, stated (docs/statistics-experiments.md has the derivation):

- **Rollback** needs a *tested* check (errors, latency, labelled quality) to show the canary
  significantly worse: one-sided tests, **Holm** step-down across the checks that have
  data (Bonferroni on request), so with an equal canary the chance of a false rollback at a
  step is <= `alpha` (family-wise). Measured over 500 simulated equal canaries in
  tests/test_respond_canary.py.
- **Promote** needs every tested check to show *non-inferiority*: the canary is worse by
  less than the check's margin, each a one-sided test at `alpha`. Promotion is an
  intersection-union test, so a canary worse than a margin on any check is promoted with
  probability <= `alpha` (no correction needed; Berger 1982). No promotion while `frozen`
  (the SLO budget policy).
- **Descriptive** checks (CBPE-estimated quality, drift signals, fairness gaps) compare
  numbers with stated margins and can only **hold**, never roll back: no test of stated
  error rate stands behind them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats as sps

from aisre.errors import InvalidParameterError
from aisre.respond import stats
from aisre.respond.samples import ArmSample, latency_summary

Decision = Literal["promote", "hold", "rollback"]
CheckStatus = Literal["pass", "fail", "inconclusive", "warn", "skipped"]


@dataclass(frozen=True)
class CanaryPolicy:
    """Thresholds of one analysis. `alpha`: family-wise false-rollback rate and each
    non-inferiority test's level. Margins: `error_margin` (absolute error-rate points),
    `latency_margin` (fraction of stable's mean latency), `quality_margin` (accuracy points,
    or for error metrics a fraction of stable's mean error), `estimated_margin` (points of an
    estimated metric), `fairness_margin` (demographic-parity-difference points above stable's).
    `min_requests` / `min_labels`: per arm, before a check counts. `sequential`: the rollback
    tests use always-valid mSPRT p-values (`stats.msprt_*`, in the worse direction only), so a
    controller may re-run the analysis as often as it likes at a step without inflating the
    false-rollback rate; otherwise `alpha` holds per analysis."""

    alpha: float = 0.05
    correction: Literal["holm", "bonferroni"] = "holm"
    min_requests: int = 200
    min_labels: int = 100
    error_margin: float = 0.01
    latency_margin: float = 0.10
    quality_margin: float = 0.02
    estimated_margin: float = 0.03
    fairness_margin: float = 0.05
    sequential: bool = False

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise InvalidParameterError(f"alpha: expected a number in (0, 1), got {self.alpha!r}")
        if self.correction not in ("holm", "bonferroni"):
            raise InvalidParameterError(f"correction: expected 'holm' or 'bonferroni', got {self.correction!r}")
        for name in ("error_margin", "latency_margin", "quality_margin", "estimated_margin", "fairness_margin"):
            if not getattr(self, name) >= 0:
                raise InvalidParameterError(f"{name}: expected a number >= 0, got {getattr(self, name)!r}")


@dataclass
class Check:
    """One comparison. `p_worse`: one-sided p-value of "canary worse" (tested checks);
    `p_noninferior`: one-sided p-value of "canary worse by at least `margin`";
    `alpha`: the level the rollback test was held to after the correction."""

    name: str
    kind: Literal["tested", "descriptive"]
    status: CheckStatus
    stable: float
    canary: float
    detail: str
    margin: float | None = None
    effect: stats.Effect | None = None
    p_worse: float | None = None
    p_noninferior: float | None = None
    alpha: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["effect"] = None if self.effect is None else self.effect.to_dict()
        return out


@dataclass
class CanaryAnalysis:
    decision: Decision
    reasons: list[str]
    checks: list[Check]
    policy: CanaryPolicy
    stable: dict[str, Any] = field(default_factory=dict)
    canary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reasons": self.reasons,
            "checks": [c.to_dict() for c in self.checks],
            "policy": asdict(self.policy),
            "stable": self.stable,
            "canary": self.canary,
        }


def _errors_check(stable: ArmSample, canary: ArmSample, p: CanaryPolicy) -> Check:
    xs, ns = float(stable.errors.sum()), stable.requests
    xc, nc = float(canary.errors.sum()), canary.requests
    rs = xs / ns if ns else math.nan
    rc = xc / nc if nc else math.nan
    if min(ns, nc) < p.min_requests:
        return Check("error_rate", "tested", "skipped", rs, rc, f"fewer than {p.min_requests} requests an arm")
    worse = stats.two_proportion_ztest(xs, ns, xc, nc, "greater").p_value
    if p.sequential:
        worse = _sequential(stats.msprt_proportions(stable.errors, canary.errors), rc > rs)
    se = math.sqrt(rs * (1 - rs) / ns + rc * (1 - rc) / nc)
    p_ni = _p_below(rc - rs - p.error_margin, se)
    effect = stats.proportion_difference(xs, ns, xc, nc, 1 - 2 * p.alpha)
    return Check("error_rate", "tested", "inconclusive", rs, rc, "", p.error_margin, effect, worse, p_ni)


def _sequential(result: stats.SequentialResult, worse_direction: bool) -> float:
    """An always-valid p-value for "canary worse": the two-sided mSPRT p when the estimate points the worse
    way, else 1 (rejecting only in one direction keeps the error rate <= alpha)."""
    return result.p_value if worse_direction else 1.0


def _p_below(distance: float, se: float, df: float | None = None) -> float:
    """One-sided p-value of H0: true distance >= 0 against H1: < 0, for an estimate with standard error se."""
    if se == 0.0:
        return 0.0 if distance < 0 else 1.0
    z = distance / se
    return float(sps.norm.cdf(z) if df is None else sps.t.cdf(z, df))


def _latency_check(stable: ArmSample, canary: ArmSample, p: CanaryPolicy) -> Check:
    a, b = stable.latency_s, canary.latency_s
    ms = float(a.mean()) if a.size else math.nan
    mc = float(b.mean()) if b.size else math.nan
    if min(a.size, b.size) < p.min_requests:
        return Check("latency_mean_s", "tested", "skipped", ms, mc, f"fewer than {p.min_requests} latencies an arm")
    test = stats.welch_ttest(a, b, "greater")
    worse = _sequential(stats.msprt_means(a, b), mc > ms) if p.sequential else test.p_value
    va, vb = float(a.var(ddof=1)), float(b.var(ddof=1))
    se = math.sqrt(va / a.size + vb / b.size)
    margin = p.latency_margin * ms
    p_ni = _p_below(mc - ms - margin, se, test.df)
    effect = stats.mean_difference(a, b, 1 - 2 * p.alpha)
    return Check("latency_mean_s", "tested", "inconclusive", ms, mc, "", margin, effect, worse, p_ni)


def _quality_check(stable: ArmSample, canary: ArmSample, p: CanaryPolicy) -> Check:
    a, b = stable.quality[np.isfinite(stable.quality)], canary.quality[np.isfinite(canary.quality)]
    name = stable.quality_metric
    qs = float(a.mean()) if a.size else math.nan
    qc = float(b.mean()) if b.size else math.nan
    if min(a.size, b.size) < p.min_labels:
        return Check(name, "tested", "skipped", qs, qc, f"fewer than {p.min_labels} labelled records an arm")
    conf = 1 - 2 * p.alpha
    if name == "accuracy":  # higher is better: worse = lower
        worse = stats.two_proportion_ztest(a.sum(), a.size, b.sum(), b.size, "less").p_value
        se = math.sqrt(qs * (1 - qs) / a.size + qc * (1 - qc) / b.size)
        margin = p.quality_margin
        p_ni = _p_below(qs - qc - margin, se)
        effect = stats.proportion_difference(a.sum(), a.size, b.sum(), b.size, conf)
        if p.sequential:
            worse = _sequential(stats.msprt_proportions(a, b), qc < qs)
    else:  # an error metric: higher is worse
        test = stats.welch_ttest(a, b, "greater")
        worse = test.p_value
        se = math.sqrt(float(a.var(ddof=1)) / a.size + float(b.var(ddof=1)) / b.size)
        margin = p.quality_margin * qs
        p_ni = _p_below(qc - qs - margin, se, test.df)
        effect = stats.mean_difference(a, b, conf)
        if p.sequential:
            worse = _sequential(stats.msprt_means(a, b), qc > qs)
    return Check(name, "tested", "inconclusive", qs, qc, "", margin, effect, worse, p_ni)


def _adjust(checks: list[Check], p: CanaryPolicy) -> None:
    """Set each tested check's level (Holm or Bonferroni) and its status from its p-values."""
    tested = [c for c in checks if c.kind == "tested" and c.status != "skipped" and c.p_worse is not None]
    m = len(tested)
    order = sorted(tested, key=lambda c: (math.isnan(c.p_worse or 0.0), c.p_worse))
    still_rejecting = True
    for i, c in enumerate(order):
        c.alpha = p.alpha / (m - i) if p.correction == "holm" else p.alpha / m
        pw = c.p_worse if c.p_worse is not None and not math.isnan(c.p_worse) else 1.0
        rejected = pw <= c.alpha and (still_rejecting or p.correction == "bonferroni")
        still_rejecting = still_rejecting and rejected
        pn = c.p_noninferior if c.p_noninferior is not None and not math.isnan(c.p_noninferior) else 1.0
        if rejected:
            c.status, c.detail = "fail", f"canary worse: one-sided p={pw:.3g} <= {c.alpha:.3g} ({p.correction})"
        elif pn <= p.alpha:
            c.status, c.detail = "pass", f"non-inferior within {c.margin:.4g}: p={pn:.3g} <= {p.alpha:.3g}"
        else:
            c.status, c.detail = "inconclusive", f"not worse (p={pw:.3g}) but non-inferiority not shown (p={pn:.3g})"


def analyze_canary(
    stable: ArmSample,
    canary: ArmSample,
    policy: CanaryPolicy | None = None,
    *,
    frozen: bool = False,
    estimated: dict[str, tuple[float, float]] | None = None,
    drift: dict[str, tuple[bool, bool]] | None = None,
    sensitive_name: str = "group",
    pos_label: Any = 1,
) -> CanaryAnalysis:
    """The verdict of one canary step; pure (arrays in, analysis out).

    `estimated`: metric -> (stable, canary) estimated values (CBPE `estimated_<metric>`
    signals); `drift`: signal name -> (stable breached, canary breached); fairness runs when
    both arms carry `groups`. `frozen`: the SLO budget policy forbids promotion now.
    """
    p = policy or CanaryPolicy()
    checks = [_errors_check(stable, canary, p), _latency_check(stable, canary, p), _quality_check(stable, canary, p)]
    _adjust(checks, p)
    for metric, (vs, vc) in (estimated or {}).items():
        bad = vc < vs - p.estimated_margin
        status: CheckStatus = "warn" if bad else "pass"
        detail = f"estimated {metric} {vc:.4g} vs {vs:.4g} (margin {p.estimated_margin})"
        checks.append(Check(f"estimated_{metric}", "descriptive", status, vs, vc, detail, p.estimated_margin))
    for name, (bs, bc) in (drift or {}).items():
        status = "warn" if bc and not bs else "pass"
        detail = "breached on canary only" if status == "warn" else "same as stable" if bc == bs else "not breached"
        checks.append(Check(name, "descriptive", status, float(bs), float(bc), detail))
    checks += _fairness_checks(stable, canary, p, sensitive_name, pos_label)
    decision, reasons = _decide(checks, frozen)
    return CanaryAnalysis(decision, reasons, checks, p, _arm_summary(stable), _arm_summary(canary))


def _fairness_checks(stable: ArmSample, canary: ArmSample, p: CanaryPolicy, name: str, pos_label: Any) -> list[Check]:
    from aisre.monitor.fairness import fairness

    if stable.groups is None or canary.groups is None:
        return []
    if min(len(stable.y_pred), len(canary.y_pred)) < p.min_labels:
        return [Check("demographic_parity_difference", "descriptive", "skipped", math.nan, math.nan, "too few labels")]
    reports = [
        fairness(arm.y_true, arm.y_pred, arm.groups, pos_label=pos_label, sensitive_name=name)
        for arm in (stable, canary)
    ]
    gs, gc = reports[0].demographic_parity_difference, reports[1].demographic_parity_difference
    warn = gc > gs + p.fairness_margin or (
        reports[1].four_fifths_rule_violated and not reports[0].four_fifths_rule_violated
    )
    detail = f"gap {gc:.3g} vs stable {gs:.3g}; four-fifths rule violated: {reports[1].four_fifths_rule_violated}"
    return [
        Check(
            "demographic_parity_difference",
            "descriptive",
            "warn" if warn else "pass",
            gs,
            gc,
            detail,
            p.fairness_margin,
        )
    ]


def _decide(checks: list[Check], frozen: bool) -> tuple[Decision, list[str]]:
    failed = [c for c in checks if c.status == "fail"]
    if failed:
        return "rollback", [f"{c.name}: {c.detail}" for c in failed]
    reasons = [f"{c.name}: {c.detail}" for c in checks if c.status in ("warn", "inconclusive", "skipped")]
    tested = [c for c in checks if c.kind == "tested" and c.status != "skipped"]
    if not tested:
        return "hold", reasons or ["no tested check has enough data yet"]
    if reasons:
        return "hold", reasons
    if frozen:
        return "hold", ["promotion frozen by the SLO budget policy"]
    return "promote", [f"{c.name}: {c.detail}" for c in tested]


def _arm_summary(arm: ArmSample) -> dict[str, Any]:
    return {
        "version": arm.version,
        "requests": arm.requests,
        "error_rate": float(arm.errors.mean()) if arm.requests else math.nan,
        "latency_s": latency_summary(arm.latency_s),
        "labelled": arm.labelled,
    }


# -- progression ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NextAction:
    """What the controller should do: `action` and the canary's traffic share `weight_pct` after it."""

    action: Literal["advance", "stay", "promote", "rollback"]
    weight_pct: float
    reason: str


def next_action(steps: tuple[float, ...] | list[float], current_pct: float, decision: Decision) -> NextAction:
    """Pure step logic: rollback -> 0 %; hold -> stay; promote -> the next step, or (at the last step)
    make the canary stable. `steps` are increasing percentages ending at 100, e.g. (5, 25, 50, 100)."""
    s = [float(x) for x in steps]
    if not s or any(b <= a for a, b in zip(s, s[1:], strict=False)) or s[0] <= 0 or s[-1] != 100:
        raise InvalidParameterError(
            f"steps: expected increasing percentages in (0, 100] ending at 100, got {list(steps)}"
        )
    if float(current_pct) not in s:
        raise InvalidParameterError(f"current_pct: expected one of the steps {s}, got {current_pct!r}")
    if decision == "rollback":
        return NextAction("rollback", 0.0, f"analysis at {current_pct:g}% says rollback")
    if decision == "hold":
        return NextAction("stay", float(current_pct), "analysis inconclusive: stay and gather more traffic")
    if decision != "promote":
        raise InvalidParameterError(f"decision: expected promote, hold or rollback, got {decision!r}")
    i = s.index(float(current_pct))
    if i == len(s) - 1:
        return NextAction("promote", 100.0, "last step passed: make the canary the stable version")
    return NextAction("advance", s[i + 1], f"step {current_pct:g}% passed")


# -- from a store ------------------------------------------------------------------------------------

DRIFT_SIGNALS = ("dataset_drift", "data_drift_score", "prediction_drift_score")


def analyze_canary_in_store(
    store: Any,
    model: str,
    *,
    canary: str,
    stable: str,
    since: float | None = None,
    until: float | None = None,
    policy: CanaryPolicy | None = None,
    sensitive: str | None = None,
    pos_label: Any = 1,
    frozen: bool = False,
) -> CanaryAnalysis:
    """`analyze_canary` on the stored records of both versions over [since, until), with the
    window's `estimated_*` signals (latest value a version; metrics both versions have) and
    drift signals (breached at least once) read from the store's signals table when it has one."""
    from aisre.respond.samples import arm_from_store

    arms = [arm_from_store(store, model, v, since=since, until=until, sensitive=sensitive) for v in (stable, canary)]
    estimated: dict[str, tuple[float, float]] = {}
    drift: dict[str, tuple[bool, bool]] = {}
    if hasattr(store, "signals"):
        latest: list[dict[str, float]] = [{}, {}]
        breached: list[dict[str, bool]] = [{}, {}]
        for i, version in enumerate((stable, canary)):
            for _, s in store.signals(model=model, since=since, version=version):
                if until is not None and s.window_end is not None and s.window_end > until:
                    continue
                if s.name.startswith("estimated_") and not s.name.endswith(("_lower", "_upper")):
                    latest[i][s.name.removeprefix("estimated_")] = s.value
                if s.name in DRIFT_SIGNALS:
                    breached[i][s.name] = breached[i].get(s.name, False) or s.breached
        estimated = {m: (latest[0][m], latest[1][m]) for m in latest[0].keys() & latest[1].keys()}
        drift = {n: (breached[0].get(n, False), breached[1][n]) for n in breached[1]}
    return analyze_canary(
        arms[0],
        arms[1],
        policy,
        frozen=frozen,
        estimated=estimated,
        drift=drift,
        sensitive_name=sensitive or "group",
        pos_label=pos_label,
    )
