"""Models served in-process: a scikit-learn estimator loaded with joblib, run off the event
loop in a small thread pool (scikit-learn releases the GIL in its numeric kernels)."""

from __future__ import annotations

import asyncio
import os
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from aisre.config.checks import load_estimator
from aisre.errors import TensorError
from aisre.gateway.oip_tensors import datatype_of


class SklearnVersion:
    def __init__(self, model: str, version: str, path: str, threads: int = 2) -> None:
        self.name = f"{model}/{version}"
        self.path = path
        self.estimator = load_estimator(path, f"models.{model}.versions.{version}.sklearn")  # ConfigError if unusable
        self.has_proba = hasattr(self.estimator, "predict_proba")
        self.n_features = getattr(self.estimator, "n_features_in_", None)
        self.feature_names = [str(n) for n in getattr(self.estimator, "feature_names_in_", [])]
        self.classes = [c.item() if hasattr(c, "item") else c for c in getattr(self.estimator, "classes_", [])]
        self.predict_datatype = predict_datatype(self.estimator)
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"aisre-{model}-{version}")

    async def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(predictions, probabilities or None), computed on the thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._predict, X)

    def _predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        with warnings.catch_warnings():
            # Estimators fitted on DataFrames warn about bare arrays; the columns are in order.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            predictions = np.asarray(self.estimator.predict(X))
            proba = np.asarray(self.estimator.predict_proba(X)) if self.has_proba else None
        return predictions, proba

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def artifact_trained_at(path: str) -> float | None:
    """The model file's modification time (Unix seconds): when it was trained, unless the config says;
    None if the file cannot be read (it loaded a moment ago, so only a race removes it)."""
    try:
        return os.path.getmtime(path)
    except OSError:
        return None


def predict_datatype(estimator: object) -> str:
    """The OIP datatype of `predict`'s output: a classifier answers with its classes' dtype (scikit-learn's
    `classes_.take(...)`), anything else with floats. Metadata declares it and responses are cast to it."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return "FP64"
    if isinstance(classes, list) and classes:  # a multi-output classifier: one array of classes per output
        classes = classes[0]
    try:
        return datatype_of(np.asarray(classes).dtype)
    except TensorError:
        return "BYTES"
