"""`aisre.instrument`: wrap a scikit-learn estimator so every prediction is recorded.

The wrapper returns exactly what the estimator returns; each *row* of a `predict` or
`predict_proba` call becomes one InferenceRecord (inputs by feature name, the prediction,
class probabilities by class). `latency_s` on each row is the latency of the whole call,
which is also what the duration histogram observes once per call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from aisre.errors import InvalidRecordError
from aisre.records import InferenceRecord
from aisre.telemetry.monitor import Monitor


class InstrumentedEstimator:
    """Delegates everything to the estimator; `predict`/`predict_proba` also record."""

    def __init__(
        self,
        estimator: Any,
        monitor: Monitor,
        feature_names: Sequence[str] | None = None,
        tags: Callable[[Any], list[dict[str, str]]] | None = None,
    ) -> None:
        if not hasattr(estimator, "predict"):
            raise InvalidRecordError(
                f"instrument: expected an estimator with a predict method, got {type(estimator).__name__}"
            )
        self.estimator = estimator
        self.monitor = monitor
        self._feature_names = list(feature_names) if feature_names is not None else None
        self._tags = tags
        self.last_record_ids: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.estimator, name)

    def predict(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        y = self.estimator.predict(X, *args, **kwargs)
        latency = time.perf_counter() - start
        self._record(X, _rows(y), None, latency)
        return y

    def predict_proba(self, X: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        proba = self.estimator.predict_proba(X, *args, **kwargs)
        latency = time.perf_counter() - start
        import numpy as np  # here, not at the top: an estimator means numpy is loaded already

        classes = [_plain(c) for c in getattr(self.estimator, "classes_", range(proba.shape[1]))]
        best = np.asarray(proba).argmax(axis=1)
        predictions = [classes[i] for i in best.tolist()]
        keys = [str(c) for c in classes]
        scores = [dict(zip(keys, row, strict=True)) for row in np.asarray(proba).tolist()]
        self._record(X, predictions, scores, latency)
        return proba

    def _record(self, X: Any, predictions: list, scores: list | None, latency: float) -> None:
        names, rows = self._inputs(X)
        tags = self._tags(X) if self._tags is not None else None
        m = self.monitor
        now = m.clock.now()
        records = [
            InferenceRecord(
                model=m.model,
                version=m.version,
                inputs=dict(zip(names, row, strict=False)),
                prediction=predictions[i],
                scores=None if scores is None else scores[i],
                latency_s=latency,
                ts=now,
                tags={} if tags is None else tags[i],
            )
            for i, row in enumerate(rows)
        ]
        m.recorder.record_call(records, latency)
        self.last_record_ids = [r.id for r in records]

    def _inputs(self, X: Any) -> tuple[list[str], list[list]]:
        columns = getattr(X, "columns", None)
        if columns is not None:  # pandas / polars frame
            names = [str(c) for c in columns]
            rows = X.to_numpy().tolist()
        else:
            import numpy as np

            array = np.asarray(X)
            if array.ndim == 1:
                array = array.reshape(1, -1) if array.dtype != object else array.reshape(-1, 1)
            rows = array.tolist()
            names = self._feature_names or [str(n) for n in getattr(self.estimator, "feature_names_in_", [])]
            if len(names) != (len(rows[0]) if rows else 0):
                names = [f"x{i}" for i in range(len(rows[0]) if rows else 0)]
        return names, rows

    def __repr__(self) -> str:
        return f"instrument({self.estimator!r}, model={self.monitor.model!r})"


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _rows(y: Any) -> list:
    if isinstance(y, list):
        return y
    import numpy as np

    return np.asarray(y).tolist()


def instrument(
    estimator: Any,
    model: str | None = None,
    version: str = "v1",
    store: Any = None,
    *,
    monitor: Monitor | None = None,
    feature_names: Sequence[str] | None = None,
    tags: Callable[[Any], list[dict[str, str]]] | None = None,
) -> InstrumentedEstimator:
    """Wrap `estimator`; its predictions are unchanged and every row is recorded.

    `tags(X)` may return one tag mapping per row (e.g. a sensitive attribute for fairness).
    """
    if not hasattr(estimator, "predict"):
        raise InvalidRecordError(
            f"instrument: expected an estimator with a predict method, got {type(estimator).__name__}"
        )
    if monitor is None:
        monitor = Monitor(model or type(estimator).__name__, version, store)
    return InstrumentedEstimator(estimator, monitor, feature_names, tags)
