"""Every public monitor entry point refuses a bad parameter with InvalidParameterError naming it,
and bad data with DataError: one exception class for each kind of mistake, whichever method."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

import aisre
from aisre.errors import DataError, InvalidParameterError
from aisre.monitor import (
    BootstrapCalibrated,
    CountWindows,
    Cusum,
    OnlineDrift,
    ResponseChecker,
    TimeWindows,
    WindowTest,
    compare_importance,
    drift_impact,
    fit_profile,
)
from aisre.monitor.online import ProfileDistance

RNG = np.random.default_rng(0)
TABLE = {"a": RNG.normal(size=60), "b": RNG.normal(size=60)}
ROWS = [{"a": float(v), "b": float(v) * 2} for v in RNG.normal(size=40)]
VALUES = RNG.normal(size=200)
X = RNG.normal(size=(40, 2))
Y = X @ [1.0, 2.0]
MODEL = LinearRegression().fit(X, Y)
LABELED = {"ts": np.arange(6.0) * 600, "y_true": [0, 1, 0, 1, 1, 0], "y_pred": [0, 1, 1, 1, 0, 0]}
SCORED = {**LABELED, "y_score": [0.1, 0.8, 0.6, 0.9, 0.4, 0.2]}


def _cbpe() -> aisre.CBPE:
    return aisre.CBPE(n_chunks=2, calibration="never").fit([0, 1] * 10, np.linspace(0.1, 0.9, 20))


BAD_PARAMETERS = {
    # aisre.drift
    "drift method": ("method", lambda: aisre.drift(TABLE, TABLE, method="nope")),
    "drift threshold": ("threshold", lambda: aisre.drift(TABLE, TABLE, method="psi", threshold=-1)),
    "drift compat": ("compat", lambda: aisre.drift(TABLE, TABLE, compat="alibi")),
    "drift correction": ("correction", lambda: aisre.drift(TABLE, TABLE, correction="holm")),
    "drift share_threshold": ("share_threshold", lambda: aisre.drift(TABLE, TABLE, share_threshold=2)),
    "drift infinite": ("infinite", lambda: aisre.drift(TABLE, TABLE, infinite="ignore")),
    "Reference bins": ("bins", lambda: aisre.Reference.fit(TABLE, bins=0)),
    "Reference sample_size": ("sample_size", lambda: aisre.Reference.fit(TABLE, sample_size=0)),
    # multivariate
    "multivariate method": ("method", lambda: aisre.multivariate_drift(ROWS, ROWS, method="nope")),
    "multivariate alpha": ("alpha", lambda: aisre.multivariate_drift(ROWS, ROWS, method="mmd", alpha=2)),
    "mmd n_permutations": (
        "n_permutations",
        lambda: aisre.multivariate_drift(ROWS, ROWS, method="mmd", n_permutations=0),
    ),
    "pca n_components": ("n_components", lambda: aisre.multivariate_drift(ROWS, ROWS, method="pca", n_components=-1)),
    "pca chunk_size": ("chunk_size", lambda: aisre.multivariate_drift(ROWS, ROWS, method="pca", chunk_size=0)),
    "domain classifier folds": (
        "folds",
        lambda: aisre.multivariate_drift(ROWS, ROWS, method="domain_classifier", folds=1),
    ),
    # performance
    "performance task": ("task", lambda: aisre.performance([0, 1], [0, 1], task="ranking")),
    "performance metrics": ("metrics", lambda: aisre.performance([0, 1], [0, 1], metrics=["mae"])),
    "performance thresholds": ("thresholds", lambda: aisre.performance([0, 1], [0, 1], thresholds={"mae": 1})),
    "performance confidence": ("confidence", lambda: aisre.performance([0, 1], [0, 1], confidence=95)),
    "performance n_bootstrap": ("n_bootstrap", lambda: aisre.performance([0, 1], [0, 1], n_bootstrap=0)),
    "performance auc_interval": (
        "auc_interval",
        lambda: aisre.performance([0, 1], y_score=[0.2, 0.7], auc_interval="exact"),
    ),
    "performance pos_label": ("pos_label", lambda: aisre.performance([0, 1], [0, 1], pos_label=None)),
    "performance window": ("window", lambda: aisre.performance_over_time(LABELED, window="soon")),
    # CBPE
    "CBPE metrics": ("metrics", lambda: aisre.CBPE(metrics=["mae"])),
    "CBPE calibration": ("calibration", lambda: aisre.CBPE(calibration="sometimes")),
    "CBPE n_chunks": ("n_chunks", lambda: aisre.CBPE(n_chunks=0)),
    "CBPE chunk_size": ("chunk_size", lambda: aisre.CBPE(chunk_size=0)),
    "CBPE threshold_std": ("threshold_std", lambda: aisre.CBPE(threshold_std=-1)),
    "CBPE interval_width": ("interval_width", lambda: aisre.CBPE(interval_width=float("nan"))),
    "CBPE decision_threshold": ("decision_threshold", lambda: aisre.CBPE(decision_threshold="half")),
    "CBPE window": ("window", lambda: _cbpe().estimate_over_time(SCORED, window="-1h")),
    # fairness
    "fairness method": ("method", lambda: aisre.fairness([0, 1], [0, 1], ["a", "b"], method="pairwise")),
    "fairness undefined_rate": (
        "undefined_rate",
        lambda: aisre.fairness([0, 1], [0, 1], ["a", "b"], undefined_rate="x"),
    ),
    "fairness thresholds": ("thresholds", lambda: aisre.fairness([0, 1], [0, 1], ["a", "b"], thresholds={"auc": 1})),
    "fairness window": (
        "window",
        lambda: aisre.fairness_over_time({**LABELED, "sex": list("FMFMFM")}, "sex", window=0),
    ),
    # importance
    "importance n_repeats": ("n_repeats", lambda: aisre.window_importance(MODEL, X, Y, n_repeats=0)),
    "importance scoring": ("scoring", lambda: aisre.window_importance(MODEL, X, Y, scoring=5)),
    "importance min_spearman": ("min_spearman", lambda: compare_importance({"a": 1.0}, {"a": 1.0}, min_spearman=2)),
    "importance max_share_change": (
        "max_share_change",
        lambda: compare_importance({"a": 1.0}, {"a": 1.0}, max_share_change=-0.1),
    ),
    "drift_impact threshold": ("threshold", lambda: drift_impact({"a": 1.0}, {"a": {"drift": True}}, threshold=2)),
    # LLM quality
    "llm length_alpha": ("length_alpha", lambda: aisre.llm_quality(["x"], length_alpha=1.0)),
    "llm max_rates": ("max_rates", lambda: aisre.llm_quality(["x"], max_rates={"llm_typo_rate": 0.1})),
    "llm refusal_patterns": ("refusal_patterns", lambda: aisre.llm_quality(["x"], refusal_patterns=["("])),
    "llm max_tokens": ("max_tokens", lambda: ResponseChecker(max_tokens=0)),
    "llm refusal_scan_chars": ("refusal_scan_chars", lambda: aisre.llm_quality(["x"], refusal_scan_chars=0)),
    "llm evaluators": ("evaluators", lambda: aisre.llm_quality(["x"], evaluators={"judge": "not callable"})),
    "llm schema": ("schema", lambda: aisre.llm_quality(["x"], schema={"type": "float"})),
    # online detectors and windows
    "WindowTest alpha": ("alpha", lambda: WindowTest(VALUES, alpha=0)),
    "WindowTest method": ("method", lambda: WindowTest(VALUES, "psi")),
    "WindowTest horizon": ("horizon", lambda: WindowTest(VALUES, horizon=0)),
    "BootstrapCalibrated n_boot": ("n_boot", lambda: BootstrapCalibrated(VALUES, n_boot=0)),
    "ProfileDistance distance": ("distance", lambda: ProfileDistance(fit_profile(VALUES), distance="ks")),
    "Cusum allowance": ("allowance", lambda: Cusum(WindowTest(VALUES), allowance=0.5)),
    "Cusum horizon": ("horizon", lambda: Cusum(WindowTest(VALUES), horizon=0)),
    "CountWindows size": ("size", lambda: CountWindows(0)),
    "CountWindows step": ("step", lambda: CountWindows(100, step=30)),
    "TimeWindows seconds": ("seconds", lambda: TimeWindows(-1)),
    "OnlineDrift via TimeWindows step": ("step", lambda: OnlineDrift(WindowTest(VALUES), TimeWindows(10, step=20))),
}


@pytest.mark.parametrize(("parameter", "call"), BAD_PARAMETERS.values(), ids=BAD_PARAMETERS.keys())
def test_a_bad_parameter_raises_invalid_parameter_error_naming_it(parameter, call):
    with pytest.raises(InvalidParameterError) as err:
        call()
    assert parameter in str(err.value)
    assert not isinstance(err.value, DataError)  # a parameter is not data
    assert isinstance(err.value, ValueError)  # `except ValueError` still catches it


BAD_DATA = {
    "drift: a column missing from the current data": lambda: aisre.drift(TABLE, {"a": TABLE["a"]}),
    "performance: lengths differ": lambda: aisre.performance([0, 1], [0]),
    "CBPE: three classes": lambda: aisre.CBPE().fit([0, 1, 2] * 20, np.linspace(0, 1, 60)),
    "fairness: non-binary labels": lambda: aisre.fairness([0, 1, 2], [0, 1, 2], ["a", "b", "c"]),
    "importance: one label short": lambda: aisre.window_importance(MODEL, X, Y[:-1]),
    "llm: not texts": lambda: aisre.llm_quality(["ok", 3]),
    "online: timestamps missing": lambda: OnlineDrift(WindowTest(VALUES), TimeWindows(10, clock=None)).update([1.0]),
    "multivariate: text where the reference has numbers": lambda: aisre.multivariate_drift(
        ROWS, [{"a": "x", "b": 1.0}] * 10, method="pca"
    ),
    "pca: more components than columns": lambda: aisre.multivariate_drift(ROWS, ROWS, method="pca", n_components=5),
}


@pytest.mark.parametrize("call", BAD_DATA.values(), ids=BAD_DATA.keys())
def test_bad_data_raises_data_error(call):
    with pytest.raises(DataError):
        call()
