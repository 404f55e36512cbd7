"""Run one drift tool on the Parquet pair written by bench/drift.py; print one JSON line.

    <tool venv>/bin/python bench/peers/run_peer.py TOOL DATA_DIR

TOOL is aisre, evidently, nannyml or alibi; each runs under its own virtualenv's python
(bench/.venvs/TOOL, aisre under /work/main/.venv) so that their pins never meet. The
script times loading (Parquet -> pandas) and the drift computation separately, reads peak
RSS (`ru_maxrss`) after each, and reports per-column verdicts with method names mapped to
one vocabulary (ks, wasserstein, jensenshannon, chisquare, z, ...) for comparison.
Only this file's own imports are shared; each tool's package is imported in its function.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
from pathlib import Path

# Evidently display names and NannyML/alibi method names -> one vocabulary.
METHOD_NAMES = {
    "k-s p_value": "ks",
    "wasserstein distance (normed)": "wasserstein",
    "jensen-shannon distance": "jensenshannon",
    "chi-square p_value": "chisquare",
    "z-test p_value": "z",
    "psi": "psi",
    "jensen_shannon": "jensenshannon",
    "kolmogorov_smirnov": "ks",
    "chi2": "chisquare",
    "hellinger": "hellinger",
    "l_infinity": "linf",
}


def canonical(method: str) -> str:
    key = str(method).strip().lower()
    if key in METHOD_NAMES:
        return METHOD_NAMES[key]
    return key.replace("_", "").replace("-", "").replace(" ", "")


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def verdict(method: str, statistic, threshold, drift, p_value=None) -> dict:
    return {
        "method": canonical(method),
        "statistic": _num(statistic),
        "p_value": _num(p_value),
        "threshold": _num(threshold),
        "drift": bool(drift),
    }


def _num(value) -> float | None:
    return None if value is None else float(value)


# --- tools -------------------------------------------------------------------------------
# Each takes (reference, current, meta) DataFrames and returns (verdicts, summary, version).


def run_aisre(ref, cur, meta):
    import aisre
    from aisre.monitor.drift import drift

    report = drift(ref, cur, method="auto", compat=os.environ.get("AISRE_DRIFT_COMPAT") or None)
    verdicts = {
        name: verdict(r.method, r.statistic, r.threshold, r.drift, r.p_value) for name, r in report.columns.items()
    }
    summary = {"dataset_drift": bool(report.dataset_drift), "share_drifted": float(report.share_drifted)}
    return verdicts, summary, aisre.__version__


def run_evidently(ref, cur, meta):
    import evidently
    from evidently.legacy.metric_preset import DataDriftPreset
    from evidently.legacy.pipeline.column_mapping import ColumnMapping
    from evidently.legacy.report import Report

    mapping = ColumnMapping(
        numerical_features=meta["numeric"], categorical_features=meta["categorical"], target=None, prediction=None
    )
    report = Report(metrics=[DataDriftPreset()])
    report.run(reference_data=ref, current_data=cur, column_mapping=mapping)
    verdicts, summary = {}, {}
    for metric in report.as_dict()["metrics"]:
        result = metric["result"]
        if "drift_by_columns" in result:
            for name, col in result["drift_by_columns"].items():
                verdicts[name] = verdict(
                    col["stattest_name"], col["drift_score"], col["stattest_threshold"], col["drift_detected"]
                )
        elif "dataset_drift" in result:
            summary = {
                "dataset_drift": bool(result["dataset_drift"]),
                "share_drifted": float(result["share_of_drifted_columns"]),
            }
    return verdicts, summary, evidently.__version__


def run_nannyml(ref, cur, meta):
    import nannyml
    from nannyml.thresholds import ConstantThreshold

    # Default methods (jensen_shannon for both kinds); one chunk per period. The default
    # threshold is mean + 3 std over *reference chunks*, which is 0.0 with a single chunk
    # (every column alerts), so use a constant 0.1, Evidently's Jensen-Shannon threshold.
    columns = meta["numeric"] + meta["categorical"]
    calc = nannyml.UnivariateDriftCalculator(
        column_names=columns,
        treat_as_categorical=meta["categorical"],
        chunk_number=1,
        thresholds={"jensen_shannon": ConstantThreshold(upper=0.1)},
    )
    calc.fit(ref)
    frame = calc.calculate(cur).filter(period="analysis").to_df()
    verdicts = {}
    for name in columns:
        methods = sorted({m for c, m, _ in frame.columns if c == name})
        for m in methods:  # defaults give one method per kind; keep the last if several
            row = frame[(name, m)].iloc[0]
            threshold = row.get("upper_threshold")
            verdicts[name] = verdict(m, row["value"], threshold, row["alert"])
    drifted = sum(v["drift"] for v in verdicts.values())
    summary = {"share_drifted": drifted / len(verdicts), "dataset_drift": None}
    return verdicts, summary, nannyml.__version__


def run_alibi(ref, cur, meta):
    import alibi_detect
    import numpy as np
    from alibi_detect.cd import TabularDrift

    columns = meta["numeric"] + meta["categorical"]
    x_ref, codes = _encode(ref, columns, meta["categorical"], None)
    x_cur, _ = _encode(cur, columns, meta["categorical"], codes)
    categories = {i: None for i, c in enumerate(columns) if c in meta["categorical"]}
    detector = TabularDrift(x_ref, p_val=0.05, categories_per_feature=categories)
    pred = detector.predict(x_cur, drift_type="feature")["data"]
    p_vals, stats = np.atleast_1d(pred["p_val"]), np.atleast_1d(pred["distance"])
    verdicts = {
        name: verdict(
            "chisquare" if name in meta["categorical"] else "ks",
            stats[i],
            pred["threshold"],
            p_vals[i] < pred["threshold"],
            p_vals[i],
        )
        for i, name in enumerate(columns)
    }
    drifted = sum(v["drift"] for v in verdicts.values())
    summary = {"share_drifted": drifted / len(columns), "dataset_drift": None}
    return verdicts, summary, alibi_detect.__version__


def _encode(frame, columns, categorical, codes):
    """Alibi wants one float matrix: categorical strings -> integer codes from the reference."""
    import numpy as np
    import pandas as pd

    codes = codes if codes is not None else {c: pd.Index(pd.unique(frame[c])) for c in categorical}
    out = np.empty((len(frame), len(columns)), dtype=np.float64)
    for i, c in enumerate(columns):
        if c in codes:
            index = codes[c].get_indexer(frame[c])
            out[:, i] = np.where(index < 0, len(codes[c]), index)  # unseen category -> its own code
        else:
            out[:, i] = frame[c].to_numpy(dtype=np.float64)
    return out, codes


# Imported before any timing so that import cost counts in neither load nor drift time.
PRELOAD = {
    "aisre": ["aisre.monitor.drift"],
    "evidently": [
        "evidently.legacy.metric_preset",
        "evidently.legacy.report",
        "evidently.legacy.pipeline.column_mapping",
    ],
    "nannyml": ["nannyml", "nannyml.thresholds"],
    "alibi": ["alibi_detect.cd"],
}
TOOLS = {"aisre": run_aisre, "evidently": run_evidently, "nannyml": run_nannyml, "alibi": run_alibi}


def load(data_dir: Path):
    import pandas as pd

    meta = json.loads((data_dir / "meta.json").read_text())
    ref = pd.read_parquet(data_dir / "reference.parquet")
    cur = pd.read_parquet(data_dir / "current.parquet")
    return ref, cur, meta


def main(argv: list[str]) -> int:
    tool, data_dir = argv[0], Path(argv[1])
    for module in PRELOAD[tool] + ["pandas", "pyarrow.parquet"]:
        importlib.import_module(module)
    started = time.perf_counter()
    ref, cur, meta = load(data_dir)
    load_s = time.perf_counter() - started
    input_bytes = int(ref.memory_usage(deep=True).sum() + cur.memory_usage(deep=True).sum())
    rss_loaded, peak_loaded = current_rss_mb(), peak_rss_mb()
    started = time.perf_counter()
    verdicts, summary, version = TOOLS[tool](ref, cur, meta)
    drift_s = time.perf_counter() - started
    out = {
        "tool": tool,
        "version": version,
        "rows": len(ref),
        "columns": ref.shape[1],
        "load_s": load_s,
        "drift_s": drift_s,
        "rss_after_load_mb": rss_loaded,
        "peak_rss_after_load_mb": peak_loaded,
        "peak_rss_mb": peak_rss_mb(),
        "input_bytes": input_bytes,
        "verdicts": verdicts,
        "summary": summary,
    }
    print("RESULT " + json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
