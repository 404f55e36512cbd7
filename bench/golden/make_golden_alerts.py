"""Golden per-chunk drift alerts from the real NannyML, with its default thresholds, for aisre's compat test.

    NML_DISABLE_USAGE_LOGGING=1 bench/.venvs/nannyml/bin/python bench/golden/make_golden_alerts.py

NannyML's synthetic car-loan data (shipped in the nannyml package, Apache-2.0): reference 50,000
rows, analysis 50,000, chunk_size 5,000 as in NannyML's quickstart, the quickstart's nine columns
(`y_pred` treated as categorical). Methods: jensen_shannon and hellinger on every column,
l_infinity on the categorical ones, each with NannyML's default threshold
`StandardDeviationThreshold(std_lower_multiplier=None)` (mean + 3 std of the statistic on the
reference's chunks). Writes tests/golden/car_loan.parquet (the nine columns plus `window`) and
tests/golden/nannyml_alerts.json: per method, per column the lower/upper threshold and per
analysis chunk the statistic and the alert. A constant-threshold run (0.1, NannyML's docs' value)
is recorded as `constant_alerts` for comparison. The peer venv is not needed by the test suite.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "golden" / "car_loan.parquet"
TARGET = ROOT / "tests" / "golden" / "nannyml_alerts.json"
CHUNK_SIZE = 5000
COLUMNS = [
    "car_value",
    "salary_range",
    "debt_to_income_ratio",
    "loan_length",
    "repaid_loan_on_prev_car",
    "size_of_downpayment",
    "driver_tenure",
    "y_pred_proba",
    "y_pred",
]
CATEGORICAL = ["salary_range", "repaid_loan_on_prev_car", "size_of_downpayment", "y_pred"]
#: NannyML method key -> aisre method name.
METHODS = {"jensen_shannon": "jensenshannon", "hellinger": "hellinger", "l_infinity": "linfinity"}


def run(reference: pd.DataFrame, analysis: pd.DataFrame, thresholds: dict | None = None) -> pd.DataFrame:
    import nannyml

    calc = nannyml.UnivariateDriftCalculator(
        column_names=COLUMNS,
        treat_as_categorical=["y_pred"],
        continuous_methods=["jensen_shannon", "hellinger"],
        categorical_methods=["jensen_shannon", "hellinger", "l_infinity"],
        chunk_size=CHUNK_SIZE,
        thresholds=thresholds,
    )
    calc.fit(reference)
    return calc.calculate(analysis).filter(period="analysis").to_df()


def _opt(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)  # type: ignore[arg-type]


def main() -> int:
    import nannyml
    from nannyml.thresholds import ConstantThreshold

    warnings.simplefilter("ignore")
    reference, analysis, _ = nannyml.load_synthetic_car_loan_dataset()
    reference, analysis = reference[COLUMNS], analysis[COLUMNS]
    frame = run(reference, analysis)
    constant = run(reference, analysis, {key: ConstantThreshold(upper=0.1) for key in METHODS})
    out: dict = {
        "peer": "nannyml",
        "version": nannyml.__version__,
        "chunk_size": CHUNK_SIZE,
        "categorical": CATEGORICAL,
        "methods": {},
    }
    for key, method in METHODS.items():
        columns = {}
        for column in COLUMNS:
            if (column, key, "value") not in frame.columns:
                continue
            uppers = frame[(column, key, "upper_threshold")].unique()
            lowers = frame[(column, key, "lower_threshold")].unique()
            assert len(uppers) == 1 and len(lowers) == 1, (column, key)  # one threshold per column
            columns[column] = {
                "lower_threshold": _opt(lowers[0]),
                "upper_threshold": _opt(uppers[0]),
                "values": [float(v) for v in frame[(column, key, "value")]],
                "alerts": [bool(a) for a in frame[(column, key, "alert")]],
                "constant_alerts": [bool(a) for a in constant[(column, key, "alert")]],
            }
        out["methods"][method] = {"peer_method": key, "columns": columns}
    n_alerts = sum(sum(c["alerts"]) for m in out["methods"].values() for c in m["columns"].values())
    out["n_alerts"] = n_alerts
    DATA.parent.mkdir(parents=True, exist_ok=True)
    both = pd.concat([reference.assign(window="reference"), analysis.assign(window="analysis")], ignore_index=True)
    both.to_parquet(DATA, index=False, compression="zstd", compression_level=19)
    TARGET.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {TARGET.relative_to(ROOT)} ({n_alerts} alerts) and {DATA.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")
    sys.exit(main())
