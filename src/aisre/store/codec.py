"""Records to and from storage rows and JSON: one encoding, shared by every sink."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from aisre.records import InferenceRecord, Label, Route, Status

_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

# Column order of the `inferences` table and of `record_to_row`.
COLUMNS: tuple[str, ...] = (
    "id", "ts", "model", "version", "operation", "route", "status", "error",
    "latency_s", "ttft_s", "tpot_s", "input_tokens", "output_tokens", "cost_usd",
    "key_id", "trace_id", "replica", "inputs", "prediction", "scores", "output_text", "tags",
)  # fmt: skip
JSON_COLUMNS = frozenset({"inputs", "prediction", "scores", "tags"})


def _fallback(value: Any) -> Any:
    """Anything orjson cannot encode natively is stored as its string form, never dropped."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def dumps(value: Any) -> str | None:
    if value is None:
        return None
    return orjson.dumps(value, default=_fallback, option=_JSON_OPTS).decode()


def loads(text: str | bytes | None) -> Any:
    return None if text is None else orjson.loads(text)


def record_to_row(r: InferenceRecord) -> tuple:
    return (
        r.id, r.ts, r.model, r.version, r.operation, str(r.route), str(r.status), r.error,
        r.latency_s, r.ttft_s, r.tpot_s, r.input_tokens, r.output_tokens, r.cost_usd,
        r.key_id, r.trace_id, r.replica, dumps(r.inputs), dumps(r.prediction),
        dumps(r.scores), r.output_text, dumps(r.tags) if r.tags else None,
    )  # fmt: skip


def row_to_record(row: tuple | Any) -> InferenceRecord:
    (id_, ts, model, version, operation, route, status, error, latency_s, ttft_s, tpot_s,
     input_tokens, output_tokens, cost_usd, key_id, trace_id, replica, inputs, prediction,
     scores, output_text, tags) = tuple(row)  # fmt: skip
    return InferenceRecord(
        model=model, version=version, inputs=loads(inputs), prediction=loads(prediction),
        scores=loads(scores), output_text=output_text, operation=operation,
        route=Route(route), status=Status(status), error=error, latency_s=latency_s,
        ttft_s=ttft_s, tpot_s=tpot_s, input_tokens=input_tokens, output_tokens=output_tokens,
        cost_usd=cost_usd, key_id=key_id, trace_id=trace_id, replica=replica,
        tags=loads(tags) or {}, ts=ts, id=id_,
    )  # fmt: skip


def iso_time(ts: float) -> str:
    """ISO 8601 in UTC with milliseconds: 2026-11-27T15:41:49.123Z."""
    stamp = dt.datetime.fromtimestamp(ts, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def record_to_json_line(r: InferenceRecord) -> bytes:
    """One JSON object per inference, newline-terminated; null fields are left out."""
    obj: dict[str, Any] = {"timestamp": iso_time(r.ts), "model": r.model, "version": r.version}
    obj["id"] = r.id
    obj["input"] = r.inputs
    obj["prediction"] = r.prediction
    for name in ("scores", "output_text", "operation", "route", "status", "error",
                 "latency_s", "ttft_s", "tpot_s", "input_tokens", "output_tokens",
                 "cost_usd", "key_id", "trace_id", "replica"):  # fmt: skip
        value = getattr(r, name)
        if value is not None:
            obj[name] = value
    if r.tags:
        obj["tags"] = r.tags
    return orjson.dumps(obj, default=_fallback, option=_JSON_OPTS | orjson.OPT_APPEND_NEWLINE)


def label_to_row(label: Label) -> tuple:
    return (label.record_id, label.ts, dumps(label.value))
