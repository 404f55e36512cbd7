"""CBPE: estimate binary-classifier performance without labels, from calibrated confidence.

    cbpe = CBPE().fit(y_true_ref, y_score_ref)          # reference window, with labels
    report = cbpe.estimate(y_score_now)                  # analysis window, no labels
    report["accuracy"].value, .lower, .upper, .alert

The algorithm and its interval follow NannyML's CBPE (see
docs/statistics-performance-fairness.md): each prediction's calibrated probability p of
the positive class gives its expected confusion-matrix cell (predicted 1: TP += p, FP +=
1-p; predicted 0: FN += p, TN += 1-p); metrics are computed from the expected matrix.
Valid under covariate shift (P(y|x) unchanged) with well-calibrated probabilities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Self

import numpy as np

from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.performance import intervals as ci
from aisre.monitor.performance.calibration import isotonic, needs_calibration
from aisre.monitor.tabular.classes import MISSING, as_array, canonical, encode
from aisre.monitor.tabular.labeled import LabeledWindow, as_labeled_window
from aisre.monitor.tabular.windows import OverTime, over_time
from aisre.records import Signal

CBPE_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


# -- estimators from calibrated probabilities (expected confusion matrix) --------------------
def _expected_cells(pred: np.ndarray, prob: np.ndarray) -> tuple[float, float, float, float]:
    tp = float(np.sum(prob, where=pred))
    fp = float(np.sum(1.0 - prob, where=pred))
    fn = float(np.sum(prob, where=~pred))
    tn = float(np.sum(1.0 - prob, where=~pred))
    return tp, fp, fn, tn


def _div(a: float, b: float) -> float:
    return a / b if b > 0 else np.nan


def estimated_metric(name: str, pred: np.ndarray, prob: np.ndarray, raw: np.ndarray) -> float:
    """One metric from the expected confusion matrix; `raw` (uncalibrated) orders ROC AUC."""
    if pred.size == 0:
        return np.nan
    if name == "roc_auc":
        return _estimated_auc(prob, raw)
    tp, fp, fn, tn = _expected_cells(pred, prob)
    if name == "accuracy":
        return (tp + tn) / pred.size
    if name == "precision":
        return _div(tp, tp + fp)
    if name == "recall":
        return _div(tp, tp + fn)
    if name == "f1":
        return _div(tp, tp + 0.5 * (fp + fn))
    raise InvalidParameterError(f"metrics: CBPE estimates {list(CBPE_METRICS)}, got {name!r}")


def _estimated_auc(prob: np.ndarray, raw: np.ndarray) -> float:
    # Rank by the model's own score (calibration may create ties), walk thresholds from the
    # top, accumulate expected TP (p) and FP (1-p); one ROC point per distinct raw score.
    order = np.argsort(-raw, kind="stable")
    p, r = prob[order], raw[order]
    tps, fps = np.cumsum(p), np.cumsum(1.0 - p)
    last = np.r_[np.flatnonzero(np.diff(r)), r.size - 1]
    tps, fps = np.r_[0.0, tps[last]], np.r_[0.0, fps[last]]
    if tps[-1] <= 0 or fps[-1] <= 0:
        return np.nan
    return float(np.trapezoid(tps / tps[-1], fps / fps[-1]))


def _realized(name: str, t: np.ndarray, pred: np.ndarray, raw: np.ndarray) -> float:
    if t.size == 0:
        return np.nan
    if name == "roc_auc":
        return float(ci.auc_binary(t[None, :], raw[None, :])[0])
    tp = int(np.count_nonzero(t & pred))
    if name == "accuracy":
        return float(np.count_nonzero(t == pred)) / t.size
    if name == "precision":
        return _div(tp, int(np.count_nonzero(pred)))
    if name == "recall":
        return _div(tp, int(np.count_nonzero(t)))
    return _div(2 * tp, 2 * tp + int(np.count_nonzero(t ^ pred)))


# -- sampling error (NannyML's components: std of observation-level values, and a fraction) --
def sampling_error_components(name: str, t: np.ndarray, pred: np.ndarray, raw: np.ndarray) -> tuple[float, float]:
    """(std, fraction) from the labeled reference; SE(n) = std / sqrt(n · fraction)."""
    n = t.size
    tp, fp, fn = t & pred, ~t & pred, t & ~pred
    if name == "accuracy":
        return float(np.std(t == pred)), 1.0
    if name == "precision":
        return float(np.std(np.r_[np.ones(tp.sum()), np.zeros(fp.sum())])), pred.sum() / n
    if name == "recall":
        return float(np.std(np.r_[np.ones(tp.sum()), np.zeros(fn.sum())])), t.sum() / n
    if name == "f1":
        k_tp, k_err = int(tp.sum()), int(fp.sum() + fn.sum())
        if k_tp + k_err == 0:
            return np.nan, 0.0
        factor = (k_tp + k_err) / (0.5 * k_err + k_tp)
        values = np.r_[np.ones(k_tp), np.zeros(k_err)] * factor
        return float(np.std(values)), (k_tp + k_err) / n
    if name == "roc_auc":
        return _auc_components(t, raw)
    raise InvalidParameterError(f"metrics: CBPE estimates {list(CBPE_METRICS)}, got {name!r}")


def _auc_components(t: np.ndarray, raw: np.ndarray) -> tuple[float, float]:
    # Each positive's share of negatives ranked below it (its Mann-Whitney contribution);
    # the minority class is taken as "positive", as NannyML does.
    if t.mean() > 0.5:
        t, raw = ~t, -raw
    n_pos, n_neg = int(t.sum()), int((~t).sum())
    if n_pos == 0 or n_neg == 0:
        return np.nan, 0.0
    sorted_t = t[np.argsort(raw, kind="stable")]
    negatives_below = np.cumsum(~sorted_t)[sorted_t]
    return float(np.std(negatives_below / n_neg)), n_pos / t.size


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Estimate:
    """One estimated metric for one window, with NannyML's interval and alert thresholds."""

    name: str
    value: float
    lower: float
    upper: float
    sampling_error: float
    lower_threshold: float
    upper_threshold: float
    alert: bool
    n: int
    realized: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CBPEReport:
    """CBPE estimates of one window; `realized` is filled when labels were passed too."""

    n: int
    estimates: dict[str, Estimate]
    calibrated: bool
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> Estimate:
        return self.estimates[name]

    @property
    def alerts(self) -> dict[str, bool]:
        return {k: e.alert for k, e in self.estimates.items()}

    def row(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, e in self.estimates.items():
            out[f"estimated_{k}"], out[f"estimated_{k}_lower"] = e.value, e.lower
            out[f"estimated_{k}_upper"], out[f"estimated_{k}_alert"] = e.upper, e.alert
            if e.realized is not None:
                out[f"realized_{k}"] = e.realized
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "calibrated": self.calibrated,
            "notes": list(self.notes),
            "estimates": {k: e.to_dict() for k, e in self.estimates.items()},
        }

    def signals(
        self, model: str, version: str, window_start: float | None = None, window_end: float | None = None
    ) -> list[Signal]:
        """`estimated_<metric>` signals; threshold is the reference band edge that was
        crossed (the lower edge when none was)."""
        out = []
        for k, e in self.estimates.items():
            edge = e.upper_threshold if (e.alert and e.value > e.upper_threshold) else e.lower_threshold
            out.append(
                Signal(
                    model,
                    version,
                    f"estimated_{k}",
                    e.value,
                    edge,
                    e.alert,
                    {"metric": k, "method": "cbpe"},
                    window_start,
                    window_end,
                )
            )
        return out


class CBPE:
    """Confidence-based performance estimation for a binary classifier (NannyML's method).

    Parameters are set here and nothing else: `metrics` to estimate; the reference is cut
    into `n_chunks` equal chunks (or chunks of `chunk_size` rows) whose realised metric
    values give the alert band mean ± `threshold_std` · std (clipped to [0, 1]);
    `calibration` is "auto" (isotonic when it lowers held-out ECE), "always" or "never";
    the interval is estimate ± `interval_width` · sampling error (NannyML: 3).
    """

    def __init__(
        self,
        metrics: Sequence[str] = CBPE_METRICS,
        *,
        n_chunks: int = 10,
        chunk_size: int | None = None,
        calibration: Literal["auto", "always", "never"] = "auto",
        pos_label: Any = 1,
        decision_threshold: float = 0.5,
        threshold_std: float = 3.0,
        interval_width: float = 3.0,
    ) -> None:
        bad = [m for m in metrics if m not in CBPE_METRICS]
        if bad:
            raise InvalidParameterError(f"metrics: CBPE estimates {list(CBPE_METRICS)}, got unknown {bad}")
        if calibration not in ("auto", "always", "never"):
            raise InvalidParameterError(f"calibration: expected 'auto', 'always' or 'never', got {calibration!r}")
        if not _is_int(n_chunks) or n_chunks < 1:
            raise InvalidParameterError(f"n_chunks: expected an integer >= 1, got {n_chunks!r}")
        if chunk_size is not None and (not _is_int(chunk_size) or chunk_size < 1):
            raise InvalidParameterError(f"chunk_size: expected None or an integer >= 1, got {chunk_size!r}")
        for name, value in (("threshold_std", threshold_std), ("interval_width", interval_width)):
            if not _is_number(value) or not 0 <= value < np.inf:
                raise InvalidParameterError(f"{name}: expected a number >= 0, got {value!r}")
        if not _is_number(decision_threshold) or not np.isfinite(decision_threshold):
            raise InvalidParameterError(f"decision_threshold: expected a finite number, got {decision_threshold!r}")
        self.metrics = tuple(metrics)
        self.n_chunks = n_chunks
        self.chunk_size = chunk_size
        self.calibration = calibration
        self.pos_label = pos_label
        self.decision_threshold = decision_threshold
        self.threshold_std = threshold_std
        self.interval_width = interval_width

    # -- fit -----------------------------------------------------------------------------
    def fit(self, y_true: Any, y_score: Any, y_pred: Any = None, classes: Sequence[Any] | None = None) -> Self:
        """Learn calibration, alert thresholds and sampling-error components from a labeled reference."""
        score = self._positive_score(y_score, classes)
        t_codes, t_known = self._truth(y_true, len(score))
        pred, p_known = self._pred(y_pred, score)
        rows = t_known & p_known & ~np.isnan(score)
        t, pred, raw = t_codes[rows], pred[rows], score[rows]
        if t.size < 2 * max(2, self.n_chunks if self.chunk_size is None else 2):
            raise DataError(f"y_true: the reference needs labeled rows for {self.n_chunks} chunks, got {t.size}")
        if self.calibration == "always" or (self.calibration == "auto" and needs_calibration(t, raw)):
            self.calibrator_ = isotonic(raw, t)
        else:
            self.calibrator_ = None
        chunks = self._chunks(t.size)
        self.reference_chunk_values_ = {}
        self.thresholds_ = {}
        self.components_ = {}
        for name in self.metrics:
            values = np.array([_realized(name, t[c], pred[c], raw[c]) for c in chunks])
            self.reference_chunk_values_[name] = values
            mean, std = np.nanmean(values), np.nanstd(values)
            band = np.clip([mean - self.threshold_std * std, mean + self.threshold_std * std], 0.0, 1.0)
            self.thresholds_[name] = (float(band[0]), float(band[1]))
            self.components_[name] = sampling_error_components(name, t, pred, raw)
        self.n_reference_ = int(t.size)
        return self

    def _chunks(self, n: int) -> list[np.ndarray]:
        if self.chunk_size is None:
            return np.array_split(np.arange(n), self.n_chunks)
        full = n // self.chunk_size  # an incomplete last chunk would widen the band: dropped
        return [np.arange(i * self.chunk_size, (i + 1) * self.chunk_size) for i in range(full)]

    # -- estimate ------------------------------------------------------------------------
    def calibrated(self, y_score: np.ndarray) -> np.ndarray:
        """Calibrated P(y = pos_label) for raw positive-class scores."""
        if not hasattr(self, "thresholds_"):
            raise DataError("CBPE: call fit(reference) before estimate(...)")
        return y_score if self.calibrator_ is None else self.calibrator_.predict(y_score)

    def estimate(
        self, y_score: Any, y_pred: Any = None, y_true: Any = None, classes: Sequence[Any] | None = None
    ) -> CBPEReport:
        """Estimated metrics of one unlabeled window; pass `y_true` to also get the realised values."""
        if not hasattr(self, "thresholds_"):
            raise DataError("CBPE: call fit(reference) before estimate(...)")
        raw_all = self._positive_score(y_score, classes)
        pred_all, p_known = self._pred(y_pred, raw_all)
        rows = p_known & ~np.isnan(raw_all)
        raw, pred = raw_all[rows], pred_all[rows]
        prob = self.calibrated(raw) if raw.size else raw
        truth = None
        if y_true is not None:
            t_codes, t_known = self._truth(y_true, len(raw_all))
            truth = (t_codes[rows], t_known[rows])
        notes = [] if raw.size else ["no rows with a score and a prediction: estimates are NaN"]
        out = {}
        for name in self.metrics:
            value = estimated_metric(name, pred, prob, raw)
            std, fraction = self.components_[name]
            se = std / np.sqrt(raw.size * fraction) if raw.size and fraction > 0 else np.nan
            lo_t, hi_t = self.thresholds_[name]
            realized = None
            if truth is not None:
                known = truth[1]
                realized = _realized(name, truth[0][known], pred[known], raw[known])
            # np.clip keeps NaN (Python's max(0.0, nan) would turn it into 0.0)
            lower, upper = np.clip([value - self.interval_width * se, value + self.interval_width * se], 0, 1)
            out[name] = Estimate(
                name,
                float(value),
                float(lower),
                float(upper),
                float(se),
                lo_t,
                hi_t,
                bool(value < lo_t or value > hi_t),
                int(raw.size),
                realized,
            )
        return CBPEReport(int(raw.size), out, self.calibrator_ is not None, notes)

    def estimate_over_time(
        self,
        data: LabeledWindow | Sequence,
        window: str | float = "1h",
        start: float | None = None,
        end: float | None = None,
    ) -> OverTime:
        """`estimate` per time window of a `LabeledWindow` or (record, label) pairs.

        Realised values are reported where the window has labels (for validation).
        """
        w = as_labeled_window(data)
        has_pred = any(v is not None for v in w.y_pred.tolist())
        has_truth = any(v is not None for v in w.y_true.tolist())

        def report(part: LabeledWindow) -> CBPEReport:
            if part.y_score is None:
                raise DataError("y_score: CBPE needs scores; the records have none")
            return self.estimate(
                part.y_score, part.y_pred if has_pred else None, part.y_true if has_truth else None, part.classes
            )

        return over_time(w, window, report, start, end)

    # -- input helpers -------------------------------------------------------------------
    def _positive_score(self, y_score: Any, classes: Sequence[Any] | None) -> np.ndarray:
        if hasattr(y_score, "to_numpy"):
            y_score = y_score.to_numpy()
        score = np.asarray(y_score, dtype=np.float64)
        if score.ndim == 2:
            names = [canonical(c) for c in (classes if classes is not None else ["0", "1"])]
            pos = canonical(self.pos_label)
            if len(names) != score.shape[1] or pos not in names:
                raise DataError(f"y_score: {score.shape[1]} columns but classes {names} (positive {pos!r})")
            score = score[:, names.index(pos)]
        if score.ndim != 1:
            raise DataError(f"y_score: expected one positive-class probability per row, got shape {score.shape}")
        return score

    def _truth(self, y_true: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
        truth = as_array(y_true, "y_true")
        if len(truth) != n:
            raise DataError(f"y_true: expected {n} values (one per score), got {len(truth)}")
        (codes,), names = encode([truth])
        pos = canonical(self.pos_label)
        if len(set(names) - {pos}) > 1:
            raise DataError(f"y_true: CBPE is for binary classifiers, got classes {names}")
        return (codes == names.index(pos)) if pos in names else np.zeros(n, bool), codes != MISSING

    def _pred(self, y_pred: Any, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if y_pred is None:
            return score >= self.decision_threshold, ~np.isnan(score)
        pred = as_array(y_pred, "y_pred")
        if len(pred) != len(score):
            raise DataError(f"y_pred: expected {len(score)} values (one per score), got {len(pred)}")
        (codes,), names = encode([pred])
        pos = canonical(self.pos_label)
        return ((codes == names.index(pos)) if pos in names else np.zeros(len(pred), bool)), codes != MISSING
