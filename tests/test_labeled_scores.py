"""Scores a record carries become the window's score matrix, one column per class."""

from __future__ import annotations

import math

import numpy as np

from aisre.monitor.tabular import as_labeled_window
from aisre.records import InferenceRecord, Label


def _pair(prediction: str, truth: str, scores: dict, ts: float) -> tuple[InferenceRecord, Label]:
    record = InferenceRecord(model="m", version="v1", prediction=prediction, scores=scores, ts=ts)
    return record, Label(record.id, truth)


def test_a_score_keyed_none_or_nan_names_no_class_and_is_left_out():
    window = as_labeled_window(
        [
            _pair("1", "1", {"0": 0.2, "1": 0.8, None: 0.5}, 1.0),
            _pair("0", "1", {"0": 0.7, "1": 0.3, math.nan: 0.1}, 2.0),
        ]
    )

    assert window.classes == ["0", "1"]
    assert window.y_score is not None
    assert np.allclose(window.y_score, [[0.2, 0.8], [0.7, 0.3]])
