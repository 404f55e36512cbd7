"""Stored inferences joined to their late labels -> the arrays performance and fairness need.

A record holds `prediction` (a class or a number), `scores` (a mapping class -> probability,
e.g. {"0": 0.2, "1": 0.8}, a list of per-class probabilities, or one number: the probability
of class "1") and `tags` (e.g. {"sex": "F"}); its label holds `value`, the truth.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aisre.monitor.tabular.classes import canonical, sort_classes
from aisre.monitor.tabular.frame import DataError, to_columns
from aisre.records import InferenceRecord, Label
from aisre.store.base import RecordFilter


@dataclass(frozen=True)
class LabeledWindow:
    """Truth, predictions and scores of one window, row-aligned, in time order.

    Unpacks as `(y_true, y_pred, y_score)`. `y_true` has None for unlabeled rows;
    `y_score` is (n, len(classes)) with NaN where a record had no score for a class, or
    None when no record had scores. `tags` maps each tag name to an object array (None
    where a record lacks the tag); `ts` is epoch seconds.
    """

    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray | None
    classes: list[str]
    ts: np.ndarray
    tags: dict[str, np.ndarray] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.y_true, self.y_pred, self.y_score))

    def __len__(self) -> int:
        return len(self.ts)

    def select(self, rows: np.ndarray) -> LabeledWindow:
        """The rows picked by `rows`: a boolean mask, or row indices (kept in their order)."""
        return LabeledWindow(
            self.y_true[rows],
            self.y_pred[rows],
            None if self.y_score is None else self.y_score[rows],
            self.classes,
            self.ts[rows],
            {k: v[rows] for k, v in self.tags.items()},
        )

    def sensitive(self, names: str | Sequence[str]) -> np.ndarray | dict[str, np.ndarray]:
        """The tag column(s) naming the sensitive feature(s), for `fairness(...)`."""
        wanted = [names] if isinstance(names, str) else list(names)
        missing = [n for n in wanted if n not in self.tags]
        if missing and len(self):
            raise DataError(f"sensitive: no record has tag(s) {missing}; tags seen: {sorted(self.tags)}")
        cols = {n: self.tags.get(n, np.full(len(self), None, dtype=object)) for n in wanted}
        return cols[wanted[0]] if isinstance(names, str) else cols


def as_labeled_window(data: Any, tags: Sequence[str] = ()) -> LabeledWindow:
    """A `LabeledWindow` from itself, (record, label) pairs, or a table with columns ts, y_true,
    y_pred (and y_score, the positive-class probability, when present); `tags` names table
    columns to carry as tags (records bring their own)."""
    if isinstance(data, LabeledWindow):
        return data
    if isinstance(data, Sequence) and (not data or isinstance(data[0], tuple)):
        return from_records(data)
    names = getattr(data, "columns", None)
    if names is None:
        names = getattr(data, "column_names", None) or (list(data) if isinstance(data, Mapping) else [])
    return from_table(data, y_score="y_score" if "y_score" in list(names) else None, tags=tags)


def labeled_window(
    store: Any,
    model: str,
    version: str | None = None,
    since: float | None = None,
    until: float | None = None,
    only_labeled: bool = True,
) -> LabeledWindow:
    """Records of `model`/`version` with since <= ts < until joined to their labels.

    `only_labeled=False` keeps unlabeled records too (y_true None), e.g. for CBPE or for
    selection rates, which need no truth.
    """
    pairs = store.labeled_records(RecordFilter(model, version, since, until), only_labeled=only_labeled)
    return from_records(pairs)


def from_records(pairs: Sequence[tuple[InferenceRecord, Label | None]]) -> LabeledWindow:
    """Arrays from (record, label) pairs as returned by `Store.labeled_records`."""
    n = len(pairs)
    y_true = np.empty(n, dtype=object)
    y_pred = np.empty(n, dtype=object)
    ts = np.empty(n, dtype=np.float64)
    raw_scores: list[Any] = [None] * n
    tag_names: dict[str, None] = {}
    for i, (record, label) in enumerate(pairs):
        y_true[i] = None if label is None else label.value
        y_pred[i] = record.prediction
        ts[i] = record.ts
        raw_scores[i] = record.scores
        tag_names.update(dict.fromkeys(record.tags))
    tags = {name: np.array([record.tags.get(name) for record, _ in pairs], dtype=object) for name in tag_names}
    y_score, classes = score_matrix(raw_scores)
    if not classes:
        seen = {canonical(v) for v in (*y_true.tolist(), *y_pred.tolist())} - {None}
        classes = sort_classes(list(seen))  # type: ignore[arg-type]
    return LabeledWindow(y_true, y_pred, y_score, classes, ts, tags)


def from_table(
    data: Any,
    y_true: str = "y_true",
    y_pred: str = "y_pred",
    y_score: str | Sequence[str] | None = None,
    ts: str = "ts",
    tags: Sequence[str] = (),
) -> LabeledWindow:
    """Arrays from a table (pandas/polars/arrow/mapping) with columns named as given.

    Columns named in `tags` (e.g. a sensitive attribute) are carried as tags.

    `y_score` is one column (the positive-class probability, classes ["0", "1"]) or a list
    of columns, one per class, named by their class.
    """
    wanted = [c for c in (ts, y_true, y_pred) if c]
    score_cols = [] if y_score is None else ([y_score] if isinstance(y_score, str) else list(y_score))
    extra = [c for c in (*score_cols, *tags) if c not in wanted]
    cols = to_columns(data, wanted + list(dict.fromkeys(extra)))
    scores = None
    classes: list[str] = []
    if len(score_cols) == 1:
        p = cols[score_cols[0]].astype(np.float64)
        scores, classes = np.column_stack([1.0 - p, p]), ["0", "1"]
    elif score_cols:
        scores = np.column_stack([cols[c].astype(np.float64) for c in score_cols])
        classes = [canonical(c) or c for c in score_cols]
    if not classes:
        seen = {k for c in (y_true, y_pred) for v in cols[c].tolist() if (k := canonical(v)) is not None}
        classes = sort_classes(list(seen))
    return LabeledWindow(
        cols[y_true], cols[y_pred], scores, classes, cols[ts].astype(np.float64), {t: cols[t] for t in tags}
    )


def score_matrix(raw: Sequence[Any]) -> tuple[np.ndarray | None, list[str]]:
    """Per-record scores (mapping, list, or positive-class number) -> (n, k) matrix, classes."""
    names: dict[str, None] = {}
    width = 0
    for s in raw:
        if isinstance(s, Mapping):
            names.update(dict.fromkeys(k for k in map(canonical, s) if k is not None))
        elif isinstance(s, Sequence) and not isinstance(s, str):
            width = max(width, len(s))
        elif isinstance(s, int | float) and not isinstance(s, bool):
            names.update({"0": None, "1": None})
    names.update({str(i): None for i in range(width)})
    if not names:
        return None, []
    classes = sort_classes(list(names))
    col = {c: j for j, c in enumerate(classes)}
    out = np.full((len(raw), len(classes)), np.nan)
    for i, s in enumerate(raw):
        if isinstance(s, Mapping):
            for k, v in s.items():
                name = canonical(k)
                if name is not None:  # a score keyed None or NaN names no class: it has no column
                    out[i, col[name]] = np.nan if v is None else float(v)
        elif isinstance(s, Sequence) and not isinstance(s, str):
            for j, v in enumerate(s):
                out[i, col[str(j)]] = np.nan if v is None else float(v)
        elif isinstance(s, int | float) and not isinstance(s, bool):
            out[i, col["1"]] = float(s)
            out[i, col["0"]] = 1.0 - float(s)
    return out, classes
