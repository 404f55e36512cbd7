"""`OipModel`: a predict callable (or a scikit-learn estimator) behind the OIP mock: tensors in, named outputs out."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from aisre.gateway.oip_tensors import TensorError, datatype_of


def row_sums(features: np.ndarray) -> np.ndarray:
    """The default mock model: one float per row, the sum of its features."""
    return features.astype(np.float64).sum(axis=1)


@dataclass(frozen=True)
class OipModel:
    """Outputs `predict` (and `predict_proba` when given) of a 2-D feature matrix built from the input tensors."""

    predict: Callable[[np.ndarray], Any] = row_sums
    predict_proba: Callable[[np.ndarray], Any] | None = None
    n_features: int | None = None
    platform: str = "aisre-mock"
    predict_datatype: str = "FP64"
    n_classes: int | None = None

    @classmethod
    def from_estimator(cls, estimator: Any) -> OipModel:
        """Wrap a fitted scikit-learn-style estimator; `predict_proba` is an output when the estimator has one."""
        classes = getattr(estimator, "classes_", None)
        return cls(
            predict=estimator.predict,
            predict_proba=getattr(estimator, "predict_proba", None),
            n_features=getattr(estimator, "n_features_in_", None),
            platform="sklearn",
            predict_datatype=datatype_of(np.asarray(classes).dtype) if classes is not None else "FP64",
            n_classes=len(classes) if classes is not None else None,
        )

    @classmethod
    def from_joblib(cls, path: str | os.PathLike[str]) -> OipModel:
        import joblib

        return cls.from_estimator(joblib.load(path))

    @property
    def output_names(self) -> list[str]:
        return ["predict", "predict_proba"] if self.predict_proba is not None else ["predict"]

    def features(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """One tensor `[rows, features]` (a 1-D tensor is one row), or several `[rows]` tensors as columns."""
        for i, (name, array) in enumerate(arrays.items()):
            if array.dtype == object:
                raise TensorError(f"inputs[{i}].datatype: model takes numeric tensors, {name!r} is BYTES")
        if len(arrays) == 1:
            (array,) = arrays.values()
            if array.ndim == 0 or (array.ndim == 1 and self.n_features != 1):
                matrix = array.reshape(1, -1)
            else:
                matrix = array.reshape(array.shape[0], -1)
        else:
            rows = None
            columns = []
            for i, (name, array) in enumerate(arrays.items()):
                if array.ndim not in (1, 2) or (array.ndim == 2 and array.shape[1] != 1):
                    raise TensorError(
                        f"inputs[{i}].shape: with several inputs each is one column [rows] or "
                        f"[rows, 1]; {name!r} has {list(array.shape)}"
                    )
                if rows is not None and array.shape[0] != rows:
                    raise TensorError(f"inputs[{i}].shape: {array.shape[0]} rows, the first input has {rows}")
                rows = array.shape[0]
                columns.append(array.reshape(-1))
            matrix = np.column_stack(columns)
        if self.n_features is not None and matrix.shape[1] != self.n_features:
            raise TensorError(f"inputs: {matrix.shape[1]} features per row, the model expects {self.n_features}")
        return matrix

    def run(self, features: np.ndarray, wanted: list[str]) -> dict[str, np.ndarray]:
        """The requested outputs (all when `wanted` is empty); runs in a worker thread, off the event loop."""
        names = wanted or self.output_names
        outputs: dict[str, np.ndarray] = {}
        for name in names:
            if name == "predict":
                outputs[name] = np.asarray(self.predict(features))
            elif name == "predict_proba" and self.predict_proba is not None:
                outputs[name] = np.asarray(self.predict_proba(features))
        return outputs

    def metadata(self, name: str, versions: list[str]) -> dict[str, Any]:
        width = -1 if self.n_features is None else self.n_features
        outputs = [{"name": "predict", "datatype": self.predict_datatype, "shape": [-1]}]
        if self.predict_proba is not None:
            outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, self.n_classes or -1]})
        return {
            "name": name,
            "versions": versions,
            "platform": self.platform,
            "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, width]}],
            "outputs": outputs,
        }
