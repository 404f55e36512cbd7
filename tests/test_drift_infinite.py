"""Infinite values in drift, profiles, saved references and reports: counted apart, never silent (issue #8)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import aisre
from aisre.errors import DataError, InvalidParameterError
from aisre.monitor.drift import drift
from aisre.monitor.profiles import NumericProfile, Reference, fit_profile
from aisre.monitor.report.html import drift_report_html
from aisre.monitor.report.jsonsafe import dumps


def _no_constants(name: str) -> float:
    raise ValueError(f"non-standard JSON constant {name}")


def strict_loads(text: str):
    """Parse JSON as every other parser would: NaN/Infinity are errors."""
    return json.loads(text, parse_constant=_no_constants)


def _windows(seed: int = 0, n: int = 1000):
    rng = np.random.default_rng(seed)
    ref = {"x": rng.normal(size=n), "country": rng.choice(["FR", "DE"], n)}
    half = rng.normal(size=n)
    half[: n // 2] = np.inf
    cur = {"x": half, "country": rng.choice(["FR", "DE"], n)}
    return ref, cur


def test_half_infinite_current_column_is_drift_with_counts_and_a_note():
    ref, cur = _windows()
    col = drift(ref, cur).columns["x"]
    assert col.drift is True
    assert col.details["infinite_reference"] == 0 and col.details["infinite_current"] == 500
    assert col.details["missing_current"] == 0 and col.details["n_current"] == 500
    assert "500 of 1000 current values (50.0%) are infinite" in col.details["note"]
    assert "reported as drift" in col.details["note"] and col.details["infinite_share_p_value"] < 1e-10


def test_infinite_drop_keeps_the_tests_verdict_and_still_counts_them():
    ref, cur = _windows()
    col = drift(ref, cur, infinite="drop").columns["x"]
    assert col.drift is False
    assert col.details["infinite_current"] == 500 and "infinite='drop'" in col.details["note"]


def test_infinite_error_names_the_column_the_side_and_the_count():
    ref, cur = _windows()
    with pytest.raises(DataError, match=r"column 'x': the current data has 500 infinite values in 1000 rows"):
        drift(ref, cur, infinite="error")
    assert drift(ref, ref, infinite="error").dataset_drift is False  # finite data passes


def test_unknown_infinite_policy_is_refused_naming_the_parameter():
    ref, cur = _windows()
    with pytest.raises(InvalidParameterError, match=r"infinite: expected one of \['flag', 'drop', 'error'\]"):
        drift(ref, cur, infinite="missing-ish")


@pytest.mark.parametrize("method", ["ks", "psi", "wasserstein", "jensenshannon", "cramervonmises"])
def test_statistics_are_those_of_the_finite_values(method: str):
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=800), rng.normal(0.3, 1, size=700)
    plain = drift({"x": ref}, {"x": cur}, method=method).columns["x"]
    padded = drift({"x": np.r_[ref, [np.inf] * 8]}, {"x": np.r_[cur, [-np.inf] * 7]}, method=method).columns["x"]
    assert padded.statistic == plain.statistic and padded.p_value == plain.p_value
    assert padded.details["infinite_reference"] == 8 and padded.details["infinite_current"] == 7


def test_an_unchanged_small_share_of_infinities_is_not_drift():
    rng = np.random.default_rng(4)
    ref, cur = rng.normal(size=2000), rng.normal(size=2000)
    ref[:20], cur[:22] = np.inf, -np.inf
    col = drift({"x": ref}, {"x": cur}).columns["x"]
    assert col.drift is False and col.details["infinite_share_p_value"] > 0.05
    assert "did not change significantly" in col.details["note"]


def test_a_correction_across_columns_keeps_the_infinite_share_verdict():
    ref, cur = _windows()
    col = drift(ref, cur, correction="bonferroni").columns["x"]
    assert col.drift is True and col.details["p_value_adjusted"] > 0.05


def test_a_current_column_of_only_infinities_counts_them_as_infinite_not_missing():
    ref, _ = _windows()
    col = drift({"x": ref["x"]}, {"x": np.full(100, np.inf)}).columns["x"]
    assert col.drift is True and math.isnan(col.statistic)
    assert col.details["missing_current"] == 0 and col.details["infinite_current"] == 100
    assert "missing or infinite (0 missing, 100 infinite)" in col.details["note"]


def test_a_reference_column_of_only_infinities_is_an_error_counting_them():
    with pytest.raises(DataError, match=r"'x'.*no non-missing finite values \(10 rows: 0 missing, 10 infinite\)"):
        drift({"x": np.full(10, np.inf)}, {"x": np.arange(10.0)})


def test_to_dict_carries_the_counts_and_to_json_is_strict_json():
    ref, cur = _windows()
    cur["gone"] = np.full(1000, np.nan)  # all missing: statistic NaN
    ref["gone"] = np.arange(1000.0)
    cur["country"] = np.array(["FR"] * 999 + ["XX"], dtype=object)  # unseen category: chi-square inf
    result = drift(ref, cur, method={"country": "chisquare"})
    entry = result.to_dict()["columns"]["x"]
    assert entry["infinite_current"] == 500 and entry["infinite_reference"] == 0 and "note" in entry
    assert result.to_dict()["infinite"] == "flag"
    doc = strict_loads(result.to_json())
    assert doc["columns"]["gone"]["statistic"] is None
    assert doc["columns"]["country"]["statistic"] == "inf"
    assert doc["columns"]["x"]["infinite_current"] == 500


def test_dumps_replaces_every_non_finite_number():
    doc = {"a": [math.nan, math.inf, -math.inf, np.float32(1.5), np.int64(3)], "b": (np.bool_(True),)}
    assert strict_loads(dumps(doc)) == {"a": [None, "inf", "-inf", 1.5, 3], "b": [True]}


def test_html_report_shows_missing_and_infinite_counts_and_notes():
    ref, cur = _windows()
    result = drift(ref, cur)
    page = drift_report_html(result, ref, cur)
    assert "infinite (ref / cur)" in page and "<td>0 / 500</td>" in page
    assert "500 of 1000 current values (50.0%) are infinite" in page


def test_profile_counts_infinities_apart_from_missing_values():
    p = fit_profile(np.r_[np.arange(100.0), [np.inf, np.inf, -np.inf, np.nan]])
    assert isinstance(p, NumericProfile)
    assert (p.n, p.missing, p.infinite) == (100, 1, 3)
    assert math.isfinite(p.mean) and p.max == 99.0


def test_saved_reference_with_infinities_is_strict_json_and_round_trips(tmp_path: Path):
    values = np.r_[np.arange(50.0), [np.inf, -np.inf, np.nan]]
    ref = Reference.fit({"x": values, "c": ["a"] * 53}, sample_size=100)
    ref.save(tmp_path / "ref.json")
    strict_loads((tmp_path / "ref.json").read_text())
    back = Reference.load(tmp_path / "ref.json")
    assert back.profile.columns["x"].infinite == 2 and back.profile.columns["x"].missing == 1
    np.testing.assert_array_equal(np.sort(back.samples["x"]), np.sort(values))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[]", "not an aisre reference (a JSON list"),
        ("{}", "not an aisre reference (format None"),
        ('{"format": "aisre.reference/1", "samp', "cannot read reference"),
        ('{"format": "aisre.reference/1"}', "damaged aisre reference (KeyError"),
        ('{"format": "aisre.reference/1", "samples": [], "profile": {}, "settings": {}}', "damaged"),
        ("", "cannot read reference"),
    ],
)
def test_malformed_reference_files_are_a_data_error_naming_the_file(tmp_path: Path, content: str, message: str):
    path = tmp_path / "ref.json"
    path.write_text(content)
    with pytest.raises(DataError, match="ref.json") as caught:
        Reference.load(path)
    assert message in str(caught.value)


def test_a_parquet_file_is_not_a_reference(tmp_path: Path):
    pq.write_table(pa.table({"x": [1.0, 2.0]}), tmp_path / "data.json")
    with pytest.raises(DataError, match="not an aisre reference: not UTF-8 JSON"):
        Reference.load(tmp_path / "data.json")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"bins": 0}, "bins: expected a whole number from 1"),
        ({"bins": "quantile:x"}, "got 'quantile:x'"),
        ({"bins": "quantile:0"}, "got 'quantile:0'"),
        ({"bins": "nope"}, "got 'nope'"),
        ({"bins": 10**20}, "bins: expected"),
        ({"sample_size": 0}, "sample_size: expected a whole number >= 1"),
        ({"sample_size": -5}, "sample_size: expected a whole number >= 1"),
    ],
)
def test_bad_reference_options_are_refused_naming_them(options: dict, message: str):
    with pytest.raises(InvalidParameterError, match=message.replace("(", r"\(")):
        Reference.fit({"x": np.arange(10.0)}, **options)


def test_top_level_drift_takes_the_policy_too():
    ref, cur = _windows()
    assert aisre.drift(ref, cur).columns["x"].drift is True
    assert aisre.drift(ref, cur, infinite="drop").columns["x"].drift is False


def test_report_and_reference_work_for_values_near_the_float64_limit(tmp_path: Path):
    """Bin-width rules compute max - min = inf there; the edges fall back to ones picked among the values."""
    huge = {"x": np.array([1e308, -1e308, 1.7e308] * 30)}
    page = drift_report_html(drift(huge, huge), huge, huge)
    assert page.count("<svg") == 1 and "No dataset drift" in page
    Reference.fit(huge).save(tmp_path / "huge.json")
    assert Reference.load(tmp_path / "huge.json").profile.columns["x"].n == 90
