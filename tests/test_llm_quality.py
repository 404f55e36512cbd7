"""LLM output quality: each flag on hand-written responses, window rates, length drift,
evaluator hooks, and a window read back from a real SQLite store."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import aisre
from aisre.errors import MissingDependencyError, SchemaError
from aisre.monitor.llm.quality import (
    EVENT_NAME,
    EvaluationResult,
    ResponseChecker,
    llm_quality,
)
from aisre.monitor.llm.schema import check_schema, schema_errors
from aisre.monitor.tabular.frame import DataError
from aisre.store import RecordFilter

ANSWER_SCHEMA = {
    "type": "object",
    "properties": {
        "answer": {"type": "string", "minLength": 1, "maxLength": 200},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "sources": {"type": "array", "items": {"type": "string"}},
        "kind": {"enum": ["fact", "opinion"]},
    },
    "required": ["answer", "confidence"],
    "additionalProperties": False,
}


# -- one response at a time --------------------------------------------------------------------
@pytest.mark.parametrize("text", ["", "   \n\t ", None])
def test_blank_responses_are_empty(text):
    assert ResponseChecker().check(text).empty


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that request.",
        "I’m sorry, I cannot do that.",  # a curly apostrophe
        "I CANNOT ASSIST with this.",
        "i can't assist you with creating malware.",
        "I am unable to provide medical advice.",
        "As an AI language model, I do not have opinions.",
        "I must decline to answer.",
        "I won't be able to help with that.",
    ],
)
def test_refusals_are_recognised_case_insensitively(text):
    flags = ResponseChecker().check(text)
    assert flags.refusal and flags.refusal_pattern is not None


@pytest.mark.parametrize(
    "text",
    [
        "Sure, I can help with that. Here is the summary.",
        "Sorry for the wait: the answer is 42.",
        "You cannot divide by zero; I can show you why.",
    ],
)
def test_ordinary_answers_are_not_refusals(text):
    assert not ResponseChecker().check(text).refusal


def test_refusal_is_looked_for_only_near_the_start_by_default():
    quoted = "x" * 600 + " The model then said: I cannot assist with that."
    assert not ResponseChecker().check(quoted).refusal
    assert ResponseChecker(refusal_scan_chars=None).check(quoted).refusal


def test_refusal_patterns_are_configurable_and_checked():
    checker = ResponseChecker(refusal_patterns=[r"\bno puedo ayudar\b"])
    assert checker.check("Lo siento, NO PUEDO AYUDAR con eso.").refusal
    assert not checker.check("I cannot assist with that.").refusal
    with pytest.raises(ValueError, match=r"refusal_patterns\[1\]: invalid regex"):
        ResponseChecker(refusal_patterns=["ok", "(unclosed"])


@pytest.mark.parametrize(
    "finish_reason, tokens, max_tokens, truncated",
    [
        ("length", 10, None, True),  # OpenAI
        ("MAX_TOKENS", None, None, True),  # Gemini, any case
        ("max_tokens", None, None, True),  # Anthropic
        ("stop", 500, 500, False),  # the server's word wins over the count
        (None, 500, 500, True),  # no finish reason: output_tokens >= max_tokens
        (None, 499, 500, False),
        (None, 500, None, None),  # nothing to judge by
        (None, None, 500, None),
    ],
)
def test_truncation_rule(finish_reason, tokens, max_tokens, truncated):
    flags = ResponseChecker(max_tokens=max_tokens).check("text", tokens=tokens, finish_reason=finish_reason)
    assert flags.truncated is truncated


@pytest.mark.parametrize(
    "text, valid",
    [
        ('{"a": [1, 2.5, null, true]}', True),
        ("  [1, 2]\n", True),
        ('"just a string"', True),
        ("{'a': 1}", False),  # Python, not JSON
        ('{"a": NaN}', False),  # Python's json accepts NaN; RFC 8259 does not
        ('```json\n{"a": 1}\n```', False),  # fenced: the consumer's json.loads would fail
        ('{"a": 1', False),
        ("", False),
    ],
)
def test_json_validity(text, valid):
    assert ResponseChecker(expect_json=True).check(text).json_valid is valid
    assert ResponseChecker().check(text).json_valid is None  # not asked for


@pytest.mark.parametrize(
    "value, fragment",
    [
        ({"answer": "Paris", "confidence": 0.9}, None),
        ({"answer": "Paris", "confidence": 1, "sources": ["wiki"], "kind": "fact"}, None),
        ({"answer": "Paris"}, "/: 'confidence' is a required property"),
        ({"answer": "", "confidence": 0.5}, "/answer: ''"),
        ({"answer": "x" * 201, "confidence": 0.5}, "is too long"),
        ({"answer": "Paris", "confidence": 1.5}, "/confidence: 1.5 is greater than the maximum of 1"),
        ({"answer": "Paris", "confidence": -0.1}, "less than the minimum of 0"),
        ({"answer": "Paris", "confidence": True}, "/confidence: True is not of type 'number'"),
        ({"answer": "Paris", "confidence": 0.5, "sources": ["a", 3]}, "/sources/1: 3 is not of type 'string'"),
        ({"answer": "Paris", "confidence": 0.5, "kind": "rumour"}, "'rumour' is not one of"),
        ({"answer": "Paris", "confidence": 0.5, "extra": 1}, "('extra' was unexpected)"),
        (["Paris"], "/: ['Paris'] is not of type 'object'"),
    ],
)
def test_schema_violations_are_named_by_json_pointer(value, fragment):
    errors = schema_errors(value, ANSWER_SCHEMA)
    if fragment is None:
        assert errors == []
    else:
        assert any(fragment in e for e in errors), errors
    assert ResponseChecker(schema=ANSWER_SCHEMA).check(json.dumps(value)).schema_valid is (fragment is None)


def test_schema_edge_cases_follow_json_schema():
    assert schema_errors(2.0, {"type": "integer"}) == []  # 1.0 is an integer (draft 6+)
    assert schema_errors(True, {"enum": [1]})  # true is not 1
    assert schema_errors(1.0, {"enum": [1]}) == []
    assert schema_errors({"a": "x"}, {"additionalProperties": {"type": "integer"}}) == [
        "/a: 'x' is not of type 'integer'"
    ]
    assert schema_errors(3, {"exclusiveMaximum": 3})
    assert schema_errors({"a/b": 1}, {"properties": {"a/b": {"type": "string"}}})[0].startswith("/a~1b: ")


def test_draft_2020_12_keywords_are_checked_without_a_dollar_schema():
    point = {
        "$defs": {"coordinate": {"type": "number", "minimum": -180, "maximum": 180}},
        "type": "array",
        "prefixItems": [{"$ref": "#/$defs/coordinate"}, {"$ref": "#/$defs/coordinate"}],
        "items": False,
    }
    assert schema_errors([1.5, -2], point) == []
    assert schema_errors([1.5, 200], point)[0].startswith("/1: 200 is greater than the maximum of 180")
    assert schema_errors([1, 2, 3], point)  # `items: false` after prefixItems: no third element
    closed = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "dependentRequired": {"answer": ["confidence"]},
        "unevaluatedProperties": False,
    }
    assert schema_errors({"answer": "x"}, closed) == ["/: 'confidence' is a dependency of 'answer'"]
    assert any("'extra' was unexpected" in e for e in schema_errors({"extra": 1}, closed))


def test_the_dollar_schema_dialect_is_honoured_and_an_unknown_one_refused():
    tuple_items = {"items": [{"type": "string"}, {"type": "integer"}]}  # draft 7's tuple form
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", **tuple_items}
    assert schema_errors(["a", 1], draft7) == []
    assert schema_errors(["a", "b"], draft7) == ["/1: 'b' is not of type 'integer'"]
    with pytest.raises(SchemaError, match=r"schema.items: \[.*\] is not of type 'object', 'boolean'"):
        check_schema(tuple_items)  # the same keyword is invalid in 2020-12, the default
    with pytest.raises(SchemaError, match=r"schema.\$schema: unknown dialect 'https://example.com/mine'"):
        check_schema({"$schema": "https://example.com/mine", "type": "object"})


def test_invalid_json_fails_the_schema_too():
    flags = ResponseChecker(schema=ANSWER_SCHEMA).check("not json")
    assert flags.json_valid is False and flags.schema_valid is False


def test_invalid_schemas_are_refused_naming_the_keyword():
    with pytest.raises(SchemaError, match=r"schema.properties.name.minLength: -1 is less than the minimum of 0"):
        check_schema({"properties": {"name": {"type": "string", "minLength": -1}}})
    with pytest.raises(SchemaError, match="schema.type"):
        check_schema({"type": "float"})
    with pytest.raises(SchemaError, match="schema: expected a JSON object"):
        check_schema(["not", "a", "schema"])
    with pytest.raises(SchemaError, match="schema.type"):
        ResponseChecker(schema={"type": "float"})
    with pytest.raises(SchemaError, match="schema.required"):
        llm_quality(["{}"], schema={"required": "answer"})
    annotated = {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "t", "type": "object"}
    check_schema(annotated)


def test_without_jsonschema_only_a_schema_check_asks_for_the_llm_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "jsonschema", None)  # as if not installed
    assert ResponseChecker(expect_json=True).check('{"a": 1}').json_valid  # no schema, no need
    assert llm_quality(["fine", ""]).counts["empty"] == 1
    with pytest.raises(MissingDependencyError, match=r"pip install 'aisre\[llm\]'") as err:
        ResponseChecker(schema=ANSWER_SCHEMA)
    assert err.value.extra == "llm" and err.value.package == "jsonschema"
    with pytest.raises(MissingDependencyError, match="jsonschema"):
        llm_quality(["{}"], schema=ANSWER_SCHEMA)


# -- a window -----------------------------------------------------------------------------------
def _generated_window(n: int, seed: int, words: float = 40.0):
    """n responses with known flags: ~5% empty, ~10% refusals, ~8% invalid JSON, ~6% bad schema."""
    rng = np.random.default_rng(seed)
    texts, expected = [], {"empty": 0, "refusal": 0, "json_invalid": 0, "schema_invalid": 0}
    for _ in range(n):
        u = rng.random()
        if u < 0.05:
            texts.append("")
            expected["empty"] += 1
            expected["json_invalid"] += 1
            expected["schema_invalid"] += 1
        elif u < 0.15:
            texts.append("I'm sorry, but I can't help with that.")
            expected["refusal"] += 1
            expected["json_invalid"] += 1
            expected["schema_invalid"] += 1
        elif u < 0.23:
            texts.append('{"answer": "unterminated')
            expected["json_invalid"] += 1
            expected["schema_invalid"] += 1
        elif u < 0.29:
            texts.append(json.dumps({"answer": "x", "confidence": 7}))
            expected["schema_invalid"] += 1
        else:
            answer = " ".join(["word"] * max(1, int(rng.poisson(words))))[:200]
            texts.append(json.dumps({"answer": answer, "confidence": float(rng.random())}))
    tokens = [len(t) // 4 for t in texts]
    return texts, tokens, expected


def test_rates_on_a_generated_window_are_exact():
    texts, tokens, expected = _generated_window(2_000, seed=0)
    report = llm_quality(texts, output_tokens=tokens, max_tokens=10_000, schema=ANSWER_SCHEMA)
    assert report.n == 2_000
    for key, count in expected.items():
        assert report.counts[key] == count
        assert report.rates[f"llm_{key}_rate"] == pytest.approx(count / 2_000)
    assert report.rates["llm_truncated_rate"] == 0.0
    assert [f.index for f in report.flags] == list(range(2_000))
    signals = {s.name: s for s in report.signals("chat", "v1", 0.0, 3600.0)}
    assert signals["llm_refusal_rate"].breached and signals["llm_refusal_rate"].threshold == 0.05
    assert signals["llm_empty_rate"].value == pytest.approx(expected["empty"] / 2_000)
    assert "llm_response_length_drift" not in signals  # no reference given
    json.dumps(report.to_dict())  # JSON-ready


def test_rate_limits_are_overridden_per_signal():
    report = llm_quality(
        ["I cannot assist with that.", ""], max_rates={"llm_refusal_rate": 0.6, "llm_empty_rate": None}
    )
    signals = {s.name: s for s in report.signals("m", "v1")}
    assert signals["llm_refusal_rate"].threshold == 0.6 and not signals["llm_refusal_rate"].breached
    assert signals["llm_empty_rate"].threshold is None and not signals["llm_empty_rate"].breached


def test_checks_not_asked_for_have_no_rate_and_no_signal():
    report = llm_quality(["a", "b"])
    assert report.rates["llm_json_invalid_rate"] is None
    assert report.rates["llm_truncated_rate"] is None  # no finish reason, no token limit
    names = {s.name for s in report.signals("m", "v1")}
    assert names == {"llm_empty_rate", "llm_refusal_rate"}


def test_response_length_drift_against_a_reference_window():
    ref_texts, ref_tokens, _ = _generated_window(800, seed=1, words=40)
    same_texts, same_tokens, _ = _generated_window(800, seed=2, words=40)
    long_texts, long_tokens, _ = _generated_window(800, seed=3, words=70)
    reference = llm_quality(ref_texts, output_tokens=ref_tokens)
    steady = llm_quality(same_texts, output_tokens=same_tokens, reference=reference)
    longer = llm_quality(long_texts, output_tokens=long_tokens, reference=reference)
    assert not steady.length_drift["chars"].drift and not steady.length_drift["tokens"].drift
    assert longer.length_drift["chars"].drift and longer.length_drift["tokens"].drift
    expected = stats.ks_2samp([len(t) for t in ref_texts], [len(t) for t in long_texts])
    assert longer.length_drift["chars"].statistic == pytest.approx(expected.statistic)
    assert longer.length_drift["chars"].p_value == pytest.approx(expected.pvalue)
    drift_signals = [s for s in longer.signals("m", "v1") if s.name == "llm_response_length_drift"]
    assert {s.labels["unit"]: s.breached for s in drift_signals} == {"chars": True, "tokens": True}
    # a reference may also be given as raw texts
    assert llm_quality(long_texts, reference=ref_texts).length_drift["chars"].drift


def test_texts_and_their_parallel_sequences_are_checked():
    with pytest.raises(DataError, match="output_tokens: expected 2 values"):
        llm_quality(["a", "b"], output_tokens=[1])
    with pytest.raises(DataError, match=r"data\[1\]: expected a str or None"):
        llm_quality(["a", 3])
    with pytest.raises(ValueError, match="max_rates: unknown signal"):
        llm_quality(["a"], max_rates={"llm_empty": 0.1})


# -- evaluators ---------------------------------------------------------------------------------
def test_evaluators_are_aggregated_and_a_raising_one_never_crashes_the_window():
    def mentions_paris(prompt, response, record):
        hit = "paris" in (response or "").lower()
        return EvaluationResult(1.0 if hit else 0.0, "pass" if hit else "fail", f"prompt was {prompt!r}")

    def brittle(prompt, response, record):
        if not response:
            raise RuntimeError("judge returned no verdict")
        return 0.5

    class Politeness:
        name = "politeness"

        def __call__(self, prompt, response, record):
            return {"score": 0.75, "label": "polite"}

    texts = ["Paris.", "It is Paris, France.", "", "London"]
    report = llm_quality(
        texts,
        prompts=["Capital of France?"] * 4,
        evaluators=[mentions_paris, brittle, Politeness()],
        min_scores={"mentions_paris": 0.9},
    )
    paris, broken, polite = (report.evaluations[k] for k in ("mentions_paris", "brittle", "politeness"))
    assert (paris.count, paris.scored, paris.mean_score, paris.labels) == (4, 4, 0.5, {"pass": 2, "fail": 2})
    assert (broken.errors, broken.scored, broken.mean_score) == (1, 3, 0.5)
    assert broken.error_messages == ["RuntimeError: judge returned no verdict"]
    assert polite.mean_score == 0.75 and polite.labels == {"polite": 4}

    event = report.flags[0].evaluations[0].event(response_id="chatcmpl-1")
    assert event == {
        "name": EVENT_NAME,
        "attributes": {
            "gen_ai.evaluation.name": "mentions_paris",
            "gen_ai.evaluation.score.value": 1.0,
            "gen_ai.evaluation.score.label": "pass",
            "gen_ai.evaluation.explanation": "prompt was 'Capital of France?'",
            "gen_ai.response.id": "chatcmpl-1",
        },
    }
    error_event = report.flags[2].evaluations[1].event()
    assert error_event["attributes"] == {"gen_ai.evaluation.name": "brittle", "error.type": "RuntimeError"}

    signals = {s.labels["evaluation"]: s for s in report.signals("m", "v1") if s.name == "llm_evaluation_score"}
    assert set(signals) == {"mentions_paris", "brittle", "politeness"}
    assert signals["mentions_paris"].breached and signals["mentions_paris"].threshold == 0.9
    assert signals["brittle"].value == 0.5 and not signals["brittle"].breached


@pytest.mark.parametrize(
    "returned, message",
    [
        (1.5, "score 1.5 is outside [0, 1]"),
        (float("nan"), "outside [0, 1]"),
        ({"explanation": "no verdict"}, "neither a score nor a label"),
        ([0.5], "evaluator returned list"),
    ],
)
def test_bad_evaluator_results_are_counted_as_errors(returned, message):
    report = llm_quality(["text"], evaluators={"judge": lambda p, r, rec: returned})
    summary = report.evaluations["judge"]
    assert summary.errors == 1 and message in summary.error_messages[0]


def test_evaluators_need_distinct_names():
    with pytest.raises(ValueError, match="two evaluators are named 'judge'"):
        llm_quality(["x"], evaluators=[type("J", (), {"name": "judge", "__call__": lambda *a: 1.0})()] * 2)


# -- from a real store ------------------------------------------------------------------------
def test_quality_report_from_records_in_a_real_sqlite_store(tmp_path: Path):
    db = tmp_path / "aisre.db"
    monitor = aisre.Monitor("support-bot", "v3", store=f"sqlite:///{db}", clock=aisre.ManualClock(1_000.0))
    answers = [
        ("Reset it from Settings > Account.", 9, "stop"),
        ("I'm sorry, but I can't help with that.", 11, "stop"),
        ("", 0, "stop"),
        ("Step 1: open the app. Step 2: tap", 256, "length"),  # cut by the limit
        ("Your order ships tomorrow and", 256, None),  # no finish reason: tokens == max_tokens
        ("Thanks for waiting, it is fixed.", 8, None),
    ]
    for i, (text, tokens, reason) in enumerate(answers):
        messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"question {i}"}]
        tags = {"gen_ai.response.id": f"chatcmpl-{i}"} | ({"finish_reason": reason} if reason else {})
        monitor.record(messages, output_text=text, operation="chat", output_tokens=tokens, tags=tags, ts=1_000.0 + i)
    monitor.record(
        [{"role": "user", "content": "boom"}], operation="chat", status="error", error="upstream timeout", ts=1_010.0
    )
    monitor.flush()
    window = RecordFilter(model="support-bot", version="v3", since=1_000.0, until=2_000.0)
    records = monitor.store.records(window)
    assert len(records) == 7

    seen_prompts = []

    def last_user_message(prompt, response, record):
        seen_prompts.append(prompt[-1]["content"])
        assert record.operation == "chat"
        return 0.0 if record.output_tokens == 0 else 1.0

    report = llm_quality(records, max_tokens=256, evaluators={"non_empty": last_user_message})
    assert report.n == 6 and report.skipped_errors == 1
    assert report.counts == {"empty": 1, "truncated": 2, "refusal": 1, "json_invalid": 0, "schema_invalid": 0}
    assert report.rates["llm_truncated_rate"] == pytest.approx(2 / 6)
    assert [f.record_id for f in report.flags] == [r.id for r in records[:6]]
    assert report.flags[3].finish_reason == "length" and report.flags[4].finish_reason is None
    assert report.lengths_tokens.tolist() == [9, 11, 0, 256, 256, 8]
    assert seen_prompts == [f"question {i}" for i in range(6)]
    assert report.evaluations["non_empty"].mean_score == pytest.approx(5 / 6)
    [event] = report.to_dict()["flags"][2]["evaluations"]
    assert event["attributes"] == {
        "gen_ai.evaluation.name": "non_empty",
        "gen_ai.evaluation.score.value": 0.0,
        "gen_ai.response.id": "chatcmpl-2",
    }

    signals = report.signals("support-bot", "v3", 1_000.0, 2_000.0)
    monitor.store.write_signals(signals, ts=2_000.0)
    stored = {s.name: s for _, s in monitor.store.signals(model="support-bot")}
    monitor.close()
    assert stored["llm_empty_rate"].value == pytest.approx(1 / 6) and stored["llm_empty_rate"].breached
    assert stored["llm_evaluation_score"].labels == {"evaluation": "non_empty"}
    assert stored["llm_truncated_rate"].window_start == 1_000.0


def test_cancelled_calls_are_not_judged_as_truncated_answers():
    from aisre.records import InferenceRecord, Status

    def record(status, text, finish):
        return InferenceRecord(
            model="m",
            version="v",
            inputs=[{"role": "user", "content": "hi"}],
            output_text=text,
            status=status,
            tags={"finish_reason": finish} if finish else {},
        )

    records = [record(Status.OK, "a full answer", "stop"), record(Status.CANCELLED, "a partial", None)]
    report = llm_quality(records)
    assert report.n == 1 and report.skipped_errors == 1
    assert report.counts["truncated"] == 0
