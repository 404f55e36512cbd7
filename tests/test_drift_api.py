"""`aisre.monitor.drift.drift()`: input types, the to_dict shape, options and errors."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

from aisre.monitor.drift import METHODS, DatasetDrift, MethodError, drift, get_method
from aisre.monitor.tabular.frame import DataError


def _frames(n_ref: int = 1500, n_cur: int = 1200, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def window(n: int, shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "age": rng.normal(40 + 8 * shift, 10, n),
                "income": rng.lognormal(10, 0.5, n),
                "plan": rng.choice(["basic", "plus", "pro"], n, p=[0.5, 0.3 + 0.1 * shift, 0.2 - 0.1 * shift]),
                "clicks": rng.integers(0, 4, n).astype(float),
            }
        )

    return window(n_ref, 0.0), window(n_cur, 1.0)


def _as(kind: str, frame: pd.DataFrame):
    if kind == "pandas":
        return frame
    if kind == "polars":
        return pl.from_pandas(frame)
    if kind == "pyarrow":
        return pa.Table.from_pandas(frame, preserve_index=False)
    if kind == "dict":
        return {c: frame[c].tolist() for c in frame.columns}
    if kind == "rows":
        return frame.to_dict(orient="records")
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["polars", "pyarrow", "dict", "rows"])
def test_every_input_type_gives_the_pandas_result(kind):
    ref, cur = _frames()
    want = drift(ref, cur).to_dict()
    assert drift(_as(kind, ref), _as(kind, cur)).to_dict() == want


def test_numpy_input_names_columns_x0_x1():
    ref, cur = _frames()
    numeric = ["age", "income", "clicks"]
    result = drift(ref[numeric].to_numpy(), cur[numeric].to_numpy())
    by_name = drift(ref[numeric], cur[numeric])
    assert list(result.columns) == ["x0", "x1", "x2"]
    for i, name in enumerate(numeric):
        assert result.columns[f"x{i}"].statistic == by_name.columns[name].statistic


def test_to_dict_has_exactly_the_promised_shape():
    ref, cur = _frames()
    out = drift(ref, cur).to_dict()
    assert {"columns", "share_drifted", "dataset_drift"} <= set(out)
    assert isinstance(out["share_drifted"], float) and isinstance(out["dataset_drift"], bool)
    for entry in out["columns"].values():
        assert isinstance(entry["method"], str) and entry["method"] in METHODS
        assert isinstance(entry["statistic"], float)
        assert entry["p_value"] is None or isinstance(entry["p_value"], float)
        assert isinstance(entry["threshold"], float) and isinstance(entry["drift"], bool)
    assert out["share_drifted"] == sum(e["drift"] for e in out["columns"].values()) / len(out["columns"])


def test_auto_on_a_typical_table_and_the_dataset_verdict():
    ref, cur = _frames()
    result = drift(ref, cur)
    assert isinstance(result, DatasetDrift)
    assert {c: r.method for c, r in result.columns.items()} == {
        "age": "wasserstein",
        "income": "wasserstein",
        "plan": "jensenshannon",
        "clicks": "jensenshannon",
    }
    assert result.columns["age"].drift and not result.columns["income"].drift
    assert result.dataset_drift == (result.share_drifted >= 0.5)
    assert drift(ref, cur, share_threshold=1.0).dataset_drift is (result.share_drifted == 1.0)


def test_small_reference_uses_tests_with_p_values():
    ref, cur = _frames(600, 500)
    methods = {c: r.method for c, r in drift(ref, cur).columns.items()}
    assert methods == {"age": "ks", "income": "ks", "plan": "chisquare", "clicks": "chisquare"}


def test_method_and_threshold_per_column():
    ref, cur = _frames()
    result = drift(ref, cur, method={"age": "psi", "plan": "chisquare"}, threshold={"age": 0.2})
    assert result.columns["age"].method == "psi" and result.columns["age"].threshold == 0.2
    assert result.columns["plan"].method == "chisquare" and result.columns["plan"].threshold == 0.05
    assert result.columns["income"].method == "wasserstein"  # the rest stays "auto"


def test_one_method_and_threshold_for_all_columns_and_column_selection():
    ref, cur = _frames()
    result = drift(ref, cur, method="psi", threshold=0.05, columns=["plan", "age"])
    assert list(result.columns) == ["plan", "age"]
    assert all(r.method == "psi" and r.threshold == 0.05 for r in result.columns.values())


def test_to_frame_has_a_row_per_column():
    ref, cur = _frames()
    frame = drift(ref, cur).to_frame()
    assert list(frame.index) == ["age", "income", "plan", "clicks"]
    assert {"method", "statistic", "p_value", "threshold", "drift"} <= set(frame.columns)


def test_get_method_and_registry():
    assert set(METHODS) == {
        "ks",
        "chisquare",
        "z",
        "psi",
        "jensenshannon",
        "wasserstein",
        "hellinger",
        "cramervonmises",
        "anderson",
    }
    assert get_method("psi", 0.25).threshold == 0.25
    assert get_method("anderson", compat="evidently").threshold == 0.1  # Evidently's default
    with pytest.raises(MethodError, match="unknown drift method 'kss'"):
        get_method("kss")
    with pytest.raises(MethodError, match="'psi' has no compat='nannyml'"):
        get_method("psi", compat="nannyml")


def test_bad_options_are_named():
    ref, cur = _frames(100, 100)
    with pytest.raises(MethodError, match="unknown drift method 'nope'"):
        drift(ref, cur, method="nope")
    with pytest.raises(MethodError, match="compat mode 'alibi'"):
        drift(ref, cur, compat="alibi")
    with pytest.raises(MethodError, match="correction 'holm'"):
        drift(ref, cur, correction="holm")
    with pytest.raises(DataError, match=r"method given for columns \['salary'\]"):
        drift(ref, cur, method={"salary": "ks"})


def test_errors_name_the_column():
    ref, cur = _frames(100, 100)
    with pytest.raises(DataError, match=r"columns not found: \['salary'\]"):
        drift(ref, cur, columns=["salary"])
    with pytest.raises(DataError, match=r"\['plan'\] are in the reference but not in the current"):
        drift(ref, cur.drop(columns=["plan"]))
    bad = cur.assign(age=["old"] * len(cur))
    with pytest.raises(DataError, match="column 'age' is numeric in the reference but text"):
        drift(ref, bad)
    with pytest.raises(DataError, match="column 'plan' .*'wasserstein' needs numeric"):
        drift(ref, cur, method={"plan": "wasserstein"})


def test_missing_values_in_list_of_row_dicts():
    rows_ref = [{"x": float(i % 17), "c": "a" if i % 3 else None} for i in range(300)]
    rows_cur = [{"x": None if i % 10 == 0 else float(i % 13), "c": "b" if i % 2 else "a"} for i in range(200)]
    result = drift(rows_ref, rows_cur)
    assert result.columns["x"].details["missing_current"] == 20
    assert result.columns["c"].details["missing_reference"] == 100
    assert all(math.isfinite(r.statistic) or math.isinf(r.statistic) for r in result.columns.values())


def test_large_windows_run_in_parallel_and_match_the_serial_result(monkeypatch):
    rng = np.random.default_rng(3)
    ref = {f"x{i}": rng.normal(size=30_000) for i in range(3)}
    cur = {f"x{i}": rng.normal(0.01 * i, size=30_000) for i in range(3)}
    parallel = drift(ref, cur).to_dict()
    from aisre.monitor.drift import api

    monkeypatch.setattr(api, "PARALLEL_MIN_ROWS", 10**12)
    assert drift(ref, cur).to_dict() == parallel


def test_arrow_backed_text_and_times_convert_like_numpy_inputs():
    import pandas as pd
    import pyarrow as pa

    from aisre.monitor.tabular.frame import to_columns

    text = ["a", None, "b", "a"]
    arrow = to_columns(pa.table({"t": text, "when": pa.array([0, 60, None, 120], pa.timestamp("s"))}))
    numpy = to_columns(
        {"t": np.array(text, dtype=object), "when": np.array([0, 60, "NaT", 120], dtype="datetime64[s]")}
    )
    pandas3 = to_columns(pd.DataFrame({"t": pd.array(text, dtype="string[pyarrow]")}))
    assert arrow["t"].tolist() == numpy["t"].tolist() == pandas3["t"].tolist() == text
    assert np.array_equal(arrow["when"], numpy["when"], equal_nan=True)
