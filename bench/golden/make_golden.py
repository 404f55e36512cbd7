"""Golden drift numbers from the real peers (Evidently, NannyML) for aisre's compat tests.

    bench/.venvs/evidently/bin/python bench/golden/make_golden.py --peer evidently
    bench/.venvs/nannyml/bin/python bench/golden/make_golden.py --peer nannyml

The Evidently run also (re)writes the data sets, tests/golden/drift_data.parquet: small,
deterministic numpy data ("large": reference 1,500 rows > Evidently's 1,000-row switch;
"small": reference 400 rows), some columns shifted. Each run writes
tests/golden/<peer>_drift.json: per data set, per run, per column the peer's method,
statistic/score, threshold and verdict. The peer venvs are not needed by the test suite.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "golden" / "drift_data.parquet"
SIZES = {"large": (1500, 1200), "small": (400, 300)}

#: Evidently display name -> aisre method name.
EVIDENTLY_NAMES = {
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "PSI": "psi",
    "Hellinger distance": "hellinger",
    "Anderson-Darling": "anderson",
    "Cramer-von Mises": "cramervonmises",
}
#: Evidently stattest name per aisre method, and which column types it accepts.
EVIDENTLY_RUNS = {
    "ks": ("ks", "num"),
    "wasserstein": ("wasserstein", "num"),
    "anderson": ("anderson", "num"),
    "cramervonmises": ("cramer_von_mises", "num"),
    "chisquare": ("chisquare", "cat"),
    "z": ("z", "cat"),
    "psi": ("psi", "all"),
    "jensenshannon": ("jensenshannon", "all"),
    "hellinger": ("hellinger", "all"),
}


def make_window(rng: np.random.Generator, n: int, shifted: bool) -> pd.DataFrame:
    s = 1.0 if shifted else 0.0
    cats = np.array(["a", "b", "c", "d", "e"])
    low_p = [0.3, 0.3, 0.2, 0.2] if shifted else [0.4, 0.3, 0.2, 0.1]
    cols: dict[str, np.ndarray] = {
        "num_same": rng.normal(0, 1, n),
        "num_shift": rng.normal(0.35 * s, 1, n),
        "num_scale": rng.lognormal(0, 0.5 + 0.3 * s, n),
        "num_missing": rng.normal(0.2 * s, 1, n),
        "num_lowcard": rng.choice([0.0, 1.0, 2.5, 4.0], n, p=low_p),
        "num_15": rng.integers(0, 15, n).astype(np.float64) * 1.5,
        "num_binary": rng.choice([0.0, 1.0], n, p=[0.7, 0.3] if not shifted else [0.6, 0.4]),
        "int_small": rng.choice([1, 2, 3], n, p=[0.5, 0.3, 0.2] if not shifted else [0.4, 0.3, 0.3]),
        "int_wide": rng.integers(0, 40, n) + (3 if shifted else 0),
        "cat_same": rng.choice(cats, n, p=[0.3, 0.25, 0.2, 0.15, 0.1]),
        "cat_shift": rng.choice(cats, n, p=[0.3, 0.25, 0.2, 0.15, 0.1] if not shifted else [0.2, 0.2, 0.2, 0.2, 0.2]),
        "cat_binary": rng.choice(["no", "yes"], n, p=[0.8, 0.2] if not shifted else [0.7, 0.3]),
    }
    # rounded so the file stays small (and ties occur, as in real data)
    for name in ("num_same", "num_shift", "num_scale", "num_missing"):
        cols[name] = np.round(cols[name], 3)
    unseen = rng.choice(["x", "y", "z"], n, p=[0.5, 0.3, 0.2]).astype(object)
    if shifted:
        unseen[rng.random(n) < 0.1] = "new"
    cols["cat_unseen"] = unseen
    frame = pd.DataFrame(cols)
    frame.loc[rng.random(n) < 0.1, "num_missing"] = np.nan
    cat_missing = rng.choice(cats[:3], n).astype(object)
    cat_missing[rng.random(n) < 0.15] = None
    frame["cat_missing"] = cat_missing
    return frame


def make_data() -> pd.DataFrame:
    rng = np.random.default_rng(20261101)
    parts = []
    for dataset, (n_ref, n_cur) in SIZES.items():
        for window, n, shifted in (("reference", n_ref, False), ("current", n_cur, True)):
            part = make_window(rng, n, shifted)
            part.insert(0, "window", window)
            part.insert(0, "dataset", dataset)
            parts.append(part)
    return pd.concat(parts, ignore_index=True)


def windows(data: pd.DataFrame, dataset: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    part = data[data["dataset"] == dataset].drop(columns=["dataset"])
    ref = part[part["window"] == "reference"].drop(columns=["window"]).reset_index(drop=True)
    cur = part[part["window"] == "current"].drop(columns=["window"]).reset_index(drop=True)
    return ref, cur


def evidently_report(ref: pd.DataFrame, cur: pd.DataFrame, **preset: str) -> dict:
    from evidently.legacy.metric_preset import DataDriftPreset
    from evidently.legacy.report import Report

    report = Report(metrics=[DataDriftPreset(**preset)])
    report.run(reference_data=ref, current_data=cur)
    for metric in report.as_dict()["metrics"]:
        result = metric["result"]
        if "drift_by_columns" in result:
            columns = {
                name: {
                    "method": EVIDENTLY_NAMES[c["stattest_name"]],
                    "stattest_name": c["stattest_name"],
                    "column_type": c["column_type"],
                    "score": float(c["drift_score"]),
                    "threshold": float(c["stattest_threshold"]),
                    "drift": bool(c["drift_detected"]),
                }
                for name, c in result["drift_by_columns"].items()
            }
            return {
                "columns": columns,
                "share_drifted": result["share_of_drifted_columns"],
                "dataset_drift": result["dataset_drift"],
            }
    raise RuntimeError("no drift_by_columns in the Evidently report")


def run_evidently(data: pd.DataFrame) -> dict:
    import evidently

    out: dict = {"peer": "evidently", "version": evidently.__version__, "datasets": {}}
    for dataset in SIZES:
        ref, cur = windows(data, dataset)
        runs = {"auto": evidently_report(ref, cur)}
        for method, (stattest, kinds) in EVIDENTLY_RUNS.items():
            key = {"num": "num_stattest", "cat": "cat_stattest", "all": "stattest"}[kinds]
            runs[method] = evidently_report(ref, cur, **{key: stattest})
        out["datasets"][dataset] = runs
    return out


def run_nannyml(data: pd.DataFrame) -> dict:
    import nannyml
    from nannyml.thresholds import ConstantThreshold

    out: dict = {"peer": "nannyml", "version": nannyml.__version__, "datasets": {}}
    methods = {"jensen_shannon": "jensenshannon", "hellinger": "hellinger", "chi2": "chisquare"}
    for dataset in SIZES:
        ref, cur = windows(data, dataset)
        calc = nannyml.UnivariateDriftCalculator(
            column_names=list(ref.columns),
            continuous_methods=["jensen_shannon", "hellinger"],
            categorical_methods=["jensen_shannon", "hellinger", "chi2"],
            chunk_number=1,
            thresholds={
                "jensen_shannon": ConstantThreshold(upper=0.1),
                "hellinger": ConstantThreshold(upper=0.1),
            },
        )
        calc.fit(ref)
        frame = calc.calculate(cur).filter(period="analysis").to_df()
        runs: dict = {}
        for column in ref.columns:
            for peer_name, method in methods.items():
                if (column, peer_name, "value") not in frame.columns:
                    continue
                row = frame.iloc[0]
                runs.setdefault(method, {"columns": {}})["columns"][column] = {
                    "method": method,
                    "peer_method": peer_name,
                    "value": float(row[(column, peer_name, "value")]),
                    "upper_threshold": _float_or_none(row.get((column, peer_name, "upper_threshold"))),
                    "alert": bool(row[(column, peer_name, "alert")]),
                }
        out["datasets"][dataset] = runs
    return out


def _float_or_none(value: object) -> float | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    return float(value)  # type: ignore[arg-type]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peer", choices=["evidently", "nannyml"], required=True)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    if args.peer == "evidently":
        DATA.parent.mkdir(parents=True, exist_ok=True)
        make_data().to_parquet(DATA, index=False, compression="zstd")
    data = pd.read_parquet(DATA)
    result = run_evidently(data) if args.peer == "evidently" else run_nannyml(data)
    target = DATA.parent / f"{args.peer}_drift.json"
    target.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target.relative_to(ROOT)} and {DATA.relative_to(ROOT)} ({DATA.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
