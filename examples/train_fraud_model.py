"""Train the small scikit-learn model the README's gateway example serves (`models/fraud-v1.joblib`).

    .venv/bin/python examples/train_fraud_model.py [--out models/fraud-v1.joblib]

A logistic regression on scikit-learn's bundled breast-cancer data (30 numeric features), so
the example runs offline; the gateway serves it in-process over the Open Inference Protocol
(input `x`, shape [rows, 30], FP64).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import joblib
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="models/fraud-v1.joblib", help="where to write the model")
    args = parser.parse_args()
    X, y = load_breast_cancer(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X, y)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, out)
    print(f"wrote {out} (30 features, classes {model.classes_.tolist()}, training accuracy {model.score(X, y):.3f})")


if __name__ == "__main__":
    main()
