"""The `estimated_performance` check: CBPE fitted on a labelled stored range, estimated on each window.

Labels arrive late or never; a window's predicted class probabilities (the `scores` that
`aisre.instrument`'s `predict_proba` and `Monitor.record(scores=...)` store) still say how
accurate the model probably was. `fit_reference` fits CBPE once on the reference range's
records that have both scores and labels; `estimate_signals` turns one window's scores into an
`estimated_<metric>` signal, the name an `estimated_quality` SLI reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from aisre.errors import DataError
from aisre.monitor.performance.cbpe import CBPE
from aisre.records import InferenceRecord, Signal
from aisre.store.base import RecordFilter, Store


@dataclass(frozen=True)
class FittedReference:
    """CBPE fitted on the reference, and the two class names (sorted; the second is positive)."""

    cbpe: CBPE
    classes: tuple[str, str]


def _classes(records: Sequence[InferenceRecord]) -> list[str]:
    return sorted({str(k) for r in records if isinstance(r.scores, dict) for k in r.scores})


def _positive_scores(records: Sequence[InferenceRecord], positive: str) -> np.ndarray:
    return np.array(
        [float(r.scores[positive]) if isinstance(r.scores, dict) and positive in r.scores else np.nan for r in records]
    )


def fit_reference(
    store: Store,
    model: str,
    version: str | None,
    since: float,
    until: float,
    metric: str,
    *,
    threshold_std: float | None = None,
    chunk_size: int | None = None,
) -> FittedReference:
    """CBPE on the records of `[since, until)` that have scores and a label; DataError naming what
    is missing (no records, no scores, no labels, not binary) otherwise. `threshold_std` (k) and
    `chunk_size` set CBPE's band: mean ± k·std of the realised metric over reference chunks."""
    where = f"reference range [{since}, {until}) of {model}/{version or '*'}"
    read = getattr(store, "indexed_records", store.records)  # one index range per version: cheap on a big store
    records = read(RecordFilter(model, version, since, until))
    if not records:
        raise DataError(f"{where} holds no records")
    classes = _classes(records)
    if not classes:
        raise DataError(f"{where}: no record has class scores (record predict_proba-style `scores`)")
    if len(classes) != 2:
        raise DataError(f"{where}: estimated_performance (CBPE) is for binary classifiers, got classes {classes}")
    labels = store.labels_for([r.id for r in records])
    labelled = [r for r in records if r.id in labels and isinstance(r.scores, dict)]
    if not labelled:
        raise DataError(f"{where}: none of its {len(records)} records has a label; CBPE needs a labelled reference")
    y_true = [labels[r.id].value for r in labelled]
    band: dict[str, float | int] = {} if threshold_std is None else {"threshold_std": threshold_std}
    if chunk_size is not None:
        band["chunk_size"] = chunk_size
    cbpe = CBPE([metric], pos_label=classes[1], **band).fit(  # type: ignore[arg-type]
        [None if v is None else str(v) for v in y_true], _positive_scores(labelled, classes[1])
    )
    return FittedReference(cbpe, (classes[0], classes[1]))


def estimate_signals(
    fitted: FittedReference,
    records: Sequence[InferenceRecord],
    model: str,
    version: str,
    since: float | None,
    until: float | None,
    minimum: float | None = None,
) -> list[Signal]:
    """`estimated_<metric>{metric, method=cbpe}` for one window; with `minimum`, breached below it
    (threshold = minimum), else breached outside CBPE's reference band."""
    scores = _positive_scores(records, fitted.classes[1])
    if np.isnan(scores).all():
        raise DataError(f"{model}/{version}: no record in the window has a {fitted.classes[1]!r} class score")
    report = fitted.cbpe.estimate(scores)
    out = report.signals(model, version, since, until)
    if minimum is None:
        return out
    return [replace(s, threshold=minimum, breached=s.value is not None and s.value < minimum) for s in out]
