"""Poisson-bootstrap ROC AUC and multiclass log loss on partitions: per replicate, weighted label counts per score cell.

A replicate's AUC needs the weighted positives and negatives at each score, which cannot be kept
per distinct score for B replicates; the scores are cut into at most `MAX_CELLS` cells of about
equal count (cuts from the first pass's merged per-score counts: each distinct score its own
cell when they fit, then there is no grid error), and each partition returns (B, columns, cells,
2) weighted counts, capped at `BUDGET` values (16 MB). Pairs in one cell count as ties, so each
replicate's AUC is shifted by the full sample's exact-minus-binned AUC; before that shift the
binning error of a replicate is at most ½ Σ_c P_c N_c / (n1 n0), stated in the note.
"""

from __future__ import annotations

import functools
import pickle
from typing import Any

import numpy as np

from aisre.monitor.engines import bootstrap
from aisre.monitor.engines.bootstrap import Replicates
from aisre.monitor.engines.common import Codec
from aisre.monitor.engines.fairness import _text
from aisre.monitor.performance import intervals as ci
from aisre.monitor.performance.intervals import MetricValue
from aisre.monitor.performance.metrics import Settings
from aisre.monitor.tabular.frame import Columns

#: Score cells per column at most, at least (fewer: no interval, said why), and values per partition partial.
MAX_CELLS, MIN_CELLS, BUDGET = 1024, 16, 2_000_000


def cell_count(replicates: int, columns: int) -> int:
    """Cells per score column so that replicates x columns x cells x 2 counts stay within BUDGET."""
    return min(MAX_CELLS, BUDGET // (2 * replicates * columns))


def cuts(values: np.ndarray, counts: np.ndarray, cells: int) -> np.ndarray:
    """Cut points (sorted) making at most `cells` cells of about equal count over sorted distinct `values`.

    A score s falls in cell `searchsorted(cuts, s, side="right")`.
    """
    if len(values) <= cells:
        return np.asarray(values[1:], dtype=np.float64)
    cum = np.cumsum(counts)
    targets = cum[-1] * np.arange(1, cells) / cells
    first = np.minimum(np.searchsorted(cum, targets, side="left") + 1, len(values) - 1)
    return np.unique(np.asarray(values, dtype=np.float64)[first])


def _add_codes(out: np.ndarray, w: np.ndarray, codes: np.ndarray) -> None:
    """out[b, c] += Σ_{i: codes_i = c} w[i, b], by one sort and a segmented sum over rows (O(B · rows))."""
    order = np.argsort(codes, kind="stable")
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    out[:, sorted_codes[starts]] += np.add.reduceat(w[order], starts, axis=0, dtype=np.int64).T


def counts_partial(
    reps: Replicates,
    score: np.ndarray,
    positive: np.ndarray,
    loss: np.ndarray | None,
    col_cuts: list | None,
    keys: tuple,
) -> dict[str, Any]:
    """Per replicate: Σw and Σw·loss; per score column j (cut by col_cuts[j]): weighted negatives/positives per cell.

    `score` and `positive` are (n, k); `h` has shape (B, k, cells, 2), `h0` the same counts with weights 1.
    """
    n, k = score.shape
    b = reps.count
    out: dict[str, Any] = {"w": np.zeros(b), "loss": np.zeros(b), "h": None, "h0": None}
    codes = []
    if col_cuts is not None:
        cells = max(len(c) for c in col_cuts) + 1
        for j in range(k):
            cell = np.searchsorted(col_cuts[j], score[:, j], side="right")
            codes.append((j * cells + cell) * 2 + positive[:, j])
        out["h"] = np.zeros((b, k * cells * 2))
        out["h0"] = np.bincount(np.concatenate(codes), minlength=k * cells * 2).astype(np.float64).reshape(k, cells, 2)
    for start, stop, w in reps.weights(n, *keys):
        wf = w.astype(np.float64)
        out["w"] += wf.sum(axis=0)
        if loss is not None:
            out["loss"] += loss[start:stop] @ wf
        for code in codes:
            _add_codes(out["h"], w, code[start:stop])
    if out["h"] is not None:
        out["h"] = out["h"].reshape(b, k, -1, 2)
    return out


def merge_counts(a: dict, b: dict) -> dict:
    return {k: None if a[k] is None else a[k] + b[k] for k in a}


COUNTS = Codec(merge_counts, pickle.dumps, pickle.loads)


def binned_auc(h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUC over the last-but-one axis of (..., cells, 2) [negatives, positives] counts, ties ½; and its tie bound."""
    neg, pos = h[..., 0], h[..., 1]
    n1, n0 = pos.sum(axis=-1), neg.sum(axis=-1)
    below = np.cumsum(neg, axis=-1) - 0.5 * neg
    auc = ci._ratio((pos * below).sum(axis=-1), n1 * n0)
    bound = ci._ratio(0.5 * (pos * neg).sum(axis=-1), n1 * n0)
    return auc, bound


# -- partition functions (second pass: the driver knows the cuts and the classes) ------------------------
def binary_counts(
    cols: Columns, y_true: str, y_score: str, pos: str, reps: Replicates, col_cuts: list
) -> dict[str, Any]:
    t = _text(cols[y_true])
    s = np.asarray(cols[y_score], dtype=np.float64)
    rows = np.array([v is not None for v in t.tolist()], dtype=bool) & ~np.isnan(s)
    s, is_pos = s[rows], (t[rows] == pos).astype(bool)
    return counts_partial(reps, s[:, None], is_pos[:, None], None, col_cuts, (is_pos, s))


def multiclass_counts(
    cols: Columns,
    y_true: str,
    y_score: tuple[str, ...],
    names: tuple[str, ...],
    reps: Replicates,
    col_cuts: list | None,
    eps: float,
) -> dict[str, Any]:
    t = _text(cols[y_true])
    score = np.column_stack([np.asarray(cols[c], dtype=np.float64) for c in y_score])
    index = {c: i for i, c in enumerate(names)}  # a label outside them only if the frame changed since pass 1
    rows = np.array([v in index for v in t.tolist()], dtype=bool) & ~np.isnan(score).any(axis=1)
    labels, score = t[rows], score[rows]
    code = np.array([index[v] for v in labels.tolist()], dtype=np.int64)
    loss = -np.log(np.clip(score[np.arange(len(code)), code], eps, 1 - eps))
    positive = code[:, None] == np.arange(len(names))[None, :]
    return counts_partial(reps, score, positive, loss, col_cuts, (labels, score))


def second_pass(engine: Any, frame: Any, used: list[str], fn: Any, **kwargs: Any) -> dict | None:
    parts = engine.map_partitions(frame, used, functools.partial(fn, **kwargs), COUNTS)
    return functools.reduce(merge_counts, parts) if parts else None


def shifted_replicates(merged: dict, exact: np.ndarray) -> tuple[np.ndarray, float]:
    """(B, k) replicate AUCs shifted by exact − binned full-sample AUC per column, clipped to [0, 1]; max tie bound."""
    binned, bound = binned_auc(merged["h0"])
    reps, _ = binned_auc(merged["h"])
    shifted = np.clip(reps + (np.asarray(exact) - binned)[None, :], 0.0, 1.0)
    finite = bound[~np.isnan(bound)]
    return shifted, float(finite.max()) if finite.size else 0.0


def grid_note(cells: int, distinct: bool, bound: float) -> str:
    """What the replicates' score cells cost: nothing when each distinct score had its own cell."""
    if distinct:
        return f"Poisson bootstrap replicates on the {cells} distinct scores per column (no binning)"
    return (
        f"Poisson bootstrap replicates on at most {cells} equal-count score cells per column, each shifted by the "
        f"full-sample exact-minus-binned AUC; before the shift a replicate's binning error is <= {bound:.3g}"
    )


# -- driver ---------------------------------------------------------------------------------------------
def no_interval(name: str, value: float, n: int, why: str, confidence: float, note: str | None) -> MetricValue:
    """The point value with a NaN interval (method "none") and the reason in the note."""
    return MetricValue(name, value, np.nan, np.nan, n, "none", confidence, "; ".join(filter(None, [note, why])))


def over_budget(reps: Replicates, columns: int) -> str:
    return (
        f"interval omitted: {reps.count} replicates x {columns} score columns x {MIN_CELLS} cells exceed the "
        f"{BUDGET * 8 // 2**20} MB a partition may return; lower n_bootstrap"
    )


def binary_auc(
    engine: Any,
    frame: Any,
    y_true: str,
    y_score: str,
    pos: str,
    scores: dict,
    value: float,
    n: int,
    s: Settings,
    note: str | None,
) -> MetricValue:
    """Binary ROC AUC with its Poisson-bootstrap interval (`auc_interval="bootstrap"`), from a second pass."""
    reps = Replicates.of(s.n_bootstrap, s.seed)
    cells = cell_count(reps.count, 1)
    if cells < MIN_CELLS:
        return no_interval("roc_auc", value, n, over_budget(reps, 1), s.confidence, note)
    col_cuts = [cuts(scores["v"], scores["pos"] + scores["neg"], cells)]
    used = list(dict.fromkeys([y_true, y_score]))
    merged = second_pass(
        engine, frame, used, binary_counts, y_true=y_true, y_score=y_score, pos=pos, reps=reps, col_cuts=col_cuts
    )
    if merged is None:  # the frame changed between the passes
        return no_interval("roc_auc", value, n, "interval undefined: no rows on the bootstrap pass", s.confidence, note)
    shifted, bound = shifted_replicates(merged, np.array([value]))
    cell_note = grid_note(len(col_cuts[0]) + 1, len(scores["v"]) <= cells, bound)
    return bootstrap.metric(
        "roc_auc", value, n, shifted[:, 0], s.confidence, "; ".join(filter(None, [note, cell_note]))
    )
