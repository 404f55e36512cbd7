"""Property test: any JSON-representable inputs and outputs survive the store unchanged."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aisre import InferenceRecord
from aisre.store.codec import record_to_row, row_to_record

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**62), 2**62)
    | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    inputs=json_values,
    prediction=json_values,
    scores=json_values,
    text=st.none() | st.text(max_size=50),
    tags=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=8), max_size=3),
    tokens=st.none() | st.integers(0, 10**6),
    error=st.none() | st.text(max_size=30),
)
def test_record_row_round_trip(inputs, prediction, scores, text, tags, tokens, error):
    r = InferenceRecord(
        model="m",
        version="v",
        inputs=inputs,
        prediction=prediction,
        scores=scores,
        output_text=text,
        error=error,
        tags=tags,
        input_tokens=tokens,
        ts=1_800_000_000.0,
    )
    back = row_to_record(record_to_row(r))
    assert (back.inputs, back.prediction, back.scores) == (inputs, prediction, scores)
    assert (back.output_text, back.tags, back.input_tokens, back.error) == (text, tags, tokens, error)
    assert back.id == r.id
