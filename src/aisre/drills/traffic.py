"""Synthetic traffic from a reference data set: rows with their true labels, and the models trained at drill start.

The data is scikit-learn's bundled breast-cancer set (569 rows, 30 numeric features; shipped with the
package, so a drill runs offline). Feature names are made identifiers (`mean radius` -> `mean_radius`) and a
sensitive input `group` is added: 1 where `group_feature` is above its median, 0 elsewhere (what a fairness
check or SLO groups by). Each version is a StandardScaler + LogisticRegression fitted on a bootstrap sample
drawn with its own seed, saved with joblib where the gateway loads it (`sklearn:` path) or an OIP mock
serves it: the versions are alike but not identical, as real retrains are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aisre.errors import ConfigError

GROUP = "group"


@dataclass
class Batch:
    """One step's rows (features by name, `group` included) and their true labels (0/1)."""

    X: pd.DataFrame
    y: np.ndarray


class ReferenceData:
    """The data set, its per-feature standard deviations (the unit of a covariate shift) and a seeded sampler."""

    def __init__(self, dataset: str, group_feature: str, seed: int) -> None:
        if dataset != "breast_cancer":  # the scenario schema allows only this one today
            raise ConfigError([f"traffic.dataset: unknown data set {dataset!r}; expected breast_cancer"])
        from sklearn.datasets import load_breast_cancer

        bunch: Any = load_breast_cancer(as_frame=True)
        X = bunch.data.rename(columns=lambda c: str(c).replace(" ", "_"))
        if group_feature not in X.columns:
            raise ConfigError(
                [f"traffic.group_feature: unknown feature {group_feature!r}; the data set has {list(X.columns)}"]
            )
        X[GROUP] = (X[group_feature] > X[group_feature].median()).astype(float)
        self.X = X
        self.y = np.asarray(bunch.target, dtype=int)
        self.std = X.std(axis=0)
        self.features = list(X.columns)
        self.rng = np.random.default_rng(seed)

    def check_features(self, features: list[str], where: str) -> None:
        unknown = [f for f in features if f not in self.X.columns or f == GROUP]
        if unknown:
            raise ConfigError([f"{where}: unknown feature(s) {unknown}; the data set has {self.features[:-1]}"])

    def draw(self, n: int) -> Batch:
        """`n` rows drawn with replacement (seeded)."""
        idx = self.rng.integers(0, len(self.X), n)
        return Batch(self.X.iloc[idx].reset_index(drop=True), self.y[idx].copy())

    def rows_of_class(self, label: int, n: int) -> pd.DataFrame:
        """`n` rows whose true label is `label` (what a bias spike makes one group look like)."""
        pool = np.flatnonzero(self.y == label)
        return self.X.iloc[self.rng.choice(pool, n)].reset_index(drop=True)

    def train(self, seed: int, out: Path) -> tuple[Path, Any, float]:
        """Fit a version on a bootstrap sample (seeded); save it to `out`; (path, estimator, training accuracy)."""
        import joblib
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(self.X), len(self.X))
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(self.X.iloc[idx], self.y[idx])
        out.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(model, out)
        return out, model, float(model.score(self.X, self.y))


def oip_request(row: dict[str, float]) -> dict[str, Any]:
    """One OIP v2 request of one row: a [1] FP64 tensor per feature, so every record names its inputs
    whether an in-process estimator or an HTTP replica answers."""
    return {"inputs": [{"name": k, "shape": [1], "datatype": "FP64", "data": [float(v)]} for k, v in row.items()]}


def chat_request(model: str, i: int) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": f"question {i}"}], "max_tokens": 16}
