"""Shared inputs of the offline evaluation tests: real scikit-learn models trained on the breast cancer data set
(shipped with scikit-learn), saved with joblib, and a golden CSV/Parquet split they never saw."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import yaml

from aisre.config import AisreConfig, load_config


@dataclass(frozen=True)
class Golden:
    root: Path
    csv: Path
    parquet: Path
    good: Path
    constant: Path
    features: list[str]
    X: np.ndarray
    y: np.ndarray
    group: np.ndarray
    good_model: Any


def make_golden(root: Path) -> Golden:
    from sklearn.datasets import load_breast_cancer
    from sklearn.dummy import DummyClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    data = load_breast_cancer(as_frame=True)
    X = data.data.copy()
    X.columns = [c.replace(" ", "_") for c in X.columns]
    y = data.target.to_numpy()
    order = np.random.default_rng(7).permutation(len(X))
    train, test = order[:380], order[380:]
    good = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(X.iloc[train], y[train])
    constant = DummyClassifier(strategy="most_frequent").fit(X.iloc[train], y[train])
    joblib.dump(good, root / "good.joblib")
    joblib.dump(constant, root / "constant.joblib")
    golden = X.iloc[test].reset_index(drop=True)
    golden["diagnosis"] = y[test]
    # A sensitive attribute tied to the label: any accurate model selects one group far more often.
    rng = np.random.default_rng(11)
    golden["site"] = np.where((y[test] == 1) ^ (rng.random(len(test)) < 0.1), "north", "south")
    golden.to_csv(root / "golden.csv", index=False)
    golden.to_parquet(root / "golden.parquet")
    return Golden(
        root,
        root / "golden.csv",
        root / "golden.parquet",
        root / "good.joblib",
        root / "constant.joblib",
        list(X.columns),
        golden[list(X.columns)].to_numpy(),
        golden["diagnosis"].to_numpy(),
        golden["site"].to_numpy(),
        good,
    )


def write_config(root: Path, versions: dict[str, Any], evaluation: dict[str, Any] | None = None) -> Path:
    doc: dict[str, Any] = {
        "store": f"sqlite:///{root / 'aisre.db'}",
        "models": {"cancer": {"protocol": "oip", "versions": versions}},
    }
    if evaluation is not None:
        doc["evaluation"] = {"cancer": evaluation}
    path = root / "aisre.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


THRESHOLDS = {
    "label": "diagnosis",
    "exclude": ["site"],
    "metrics": {"accuracy": {"min": 0.9}, "roc_auc": {"min": 0.9}, "log_loss": {"max": 0.4}},
    "latency": {"p99_ms": 60_000},
}


def config_for(root: Path, golden: Golden, evaluation: dict[str, Any] | None = None, **versions: Any) -> AisreConfig:
    """A config in `root` (its own store) serving `good` and `constant` in process (plus `versions`), judged by
    THRESHOLDS or `evaluation`, with the golden CSV as the default data file."""
    served = {"good": {"sklearn": str(golden.good)}, "constant": {"sklearn": str(golden.constant)}, **versions}
    entry = {"data": str(golden.csv), **(THRESHOLDS if evaluation is None else evaluation)}
    return load_config(write_config(root, served, entry))


class BrokenModel:
    """A model whose predict raises something other than scikit-learn's ValueError (as a bad artifact can)."""

    n_features_in_ = 30

    def predict(self, X: Any) -> Any:
        raise RuntimeError("weights are corrupt")
