"""Records to and from storage rows and JSON: one encoding, shared by every sink."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson

from aisre.records import InferenceRecord, Label, Route, Signal, Status

_JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

# The `inferences` table keeps as columns only what reads filter or aggregate on; the rest
# of the record travels in one JSON `body`. Fewer bound parameters per row is what makes
# >= 100k rows/s possible (SQLite binding costs about as much per column as the insert).
COLUMNS: tuple[str, ...] = (
    "id",
    "ts",
    "model",
    "version",
    "route",
    "status",
    "latency_s",
    "cost_usd",
    "key_id",
    "body",
)


def _fallback(value: Any) -> Any:
    """Anything orjson cannot encode natively is stored as its string form, never dropped."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return str(value)


def _encode(value: Any) -> bytes:
    try:
        return orjson.dumps(value, default=_fallback, option=_JSON_OPTS)
    except orjson.JSONEncodeError:
        # What orjson refuses outright (integers beyond 64 bits, cycles) is made safe and
        # written anyway: never a batch that can never be written.
        return orjson.dumps(_sanitize(value, set()), default=_fallback, option=_JSON_OPTS)


def _sanitize(value: Any, seen: set[int]) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**64:
        return str(value)
    if isinstance(value, dict | list | tuple):
        if id(value) in seen:
            return "[...]"
        seen.add(id(value))
        if isinstance(value, dict):
            out: Any = {k: _sanitize(v, seen) for k, v in value.items()}
        else:
            out = [_sanitize(v, seen) for v in value]
        seen.discard(id(value))
        return out
    return value


def dumps(value: Any) -> str | None:
    if value is None:
        return None
    return _encode(value).decode()


def loads(text: str | bytes | None) -> Any:
    return None if text is None else orjson.loads(text)


def record_to_row(r: InferenceRecord) -> tuple:
    # Spelled out, not a loop over names: this runs once per record on the writer thread.
    body: dict[str, Any] = {"inputs": r.inputs, "prediction": r.prediction}
    if r.scores is not None:
        body["scores"] = r.scores
    if r.output_text is not None:
        body["output_text"] = r.output_text
    if r.operation != "predict":
        body["operation"] = r.operation
    if r.error is not None:
        body["error"] = r.error
    if r.input_tokens is not None or r.output_tokens is not None:
        body["input_tokens"] = r.input_tokens
        body["output_tokens"] = r.output_tokens
    if r.ttft_s is not None or r.tpot_s is not None:
        body["ttft_s"] = r.ttft_s
        body["tpot_s"] = r.tpot_s
    if r.trace_id is not None:
        body["trace_id"] = r.trace_id
    if r.replica is not None:
        body["replica"] = r.replica
    if r.tags:
        body["tags"] = r.tags
    return (
        r.id,
        r.ts,
        r.model,
        r.version,
        r.route,
        r.status,
        r.latency_s,
        r.cost_usd,
        r.key_id,
        _encode(body).decode(),
    )


def row_to_record(row: tuple | Any) -> InferenceRecord:
    id_, ts, model, version, route, status, latency_s, cost_usd, key_id, body = tuple(row)
    b = orjson.loads(body)
    return InferenceRecord(
        model=model,
        version=version,
        inputs=b.get("inputs"),
        prediction=b.get("prediction"),
        scores=b.get("scores"),
        output_text=b.get("output_text"),
        operation=b.get("operation", "predict"),
        route=Route(route),
        status=Status(status),
        error=b.get("error"),
        latency_s=latency_s,
        ttft_s=b.get("ttft_s"),
        tpot_s=b.get("tpot_s"),
        input_tokens=b.get("input_tokens"),
        output_tokens=b.get("output_tokens"),
        cost_usd=cost_usd,
        key_id=key_id,
        trace_id=b.get("trace_id"),
        replica=b.get("replica"),
        tags=b.get("tags") or {},
        ts=ts,
        id=id_,
    )


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
    for name in (
        "scores",
        "output_text",
        "operation",
        "route",
        "status",
        "error",
        "latency_s",
        "ttft_s",
        "tpot_s",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "key_id",
        "trace_id",
        "replica",
    ):
        value = getattr(r, name)
        if value is not None:
            obj[name] = value
    if r.tags:
        obj["tags"] = r.tags
    return _encode(obj) + b"\n"


def label_to_row(label: Label) -> tuple:
    return (label.record_id, label.ts, dumps(label.value))


SIGNAL_COLUMNS = "ts, model, version, name, labels, window_start, window_end, value, threshold, breached"


def signals_query(
    placeholder: str, model: str | None, name: str | None, since: float | None, version: str | None
) -> tuple[str, list[Any]]:
    """The SELECT of stored signals, oldest first, and its parameters (`placeholder`: `?` or `%s`)."""
    parts, params = [], []
    filters = (("model", model, "="), ("name", name, "="), ("ts", since, ">="), ("version", version, "="))
    for column, value, op in filters:
        if value is not None:
            parts.append(f"{column} {op} {placeholder}")
            params.append(value)
    where = (" WHERE " + " AND ".join(parts)) if parts else ""
    return f"SELECT {SIGNAL_COLUMNS} FROM signals{where} ORDER BY ts, seq", params


def rows_to_signals(rows: Any) -> list[tuple[float, Signal]]:
    """(computed_at, signal) from rows of `SIGNAL_COLUMNS`."""
    return [
        (ts, Signal(m, v, n, value, threshold, bool(b), loads(labels), ws, we))
        for ts, m, v, n, labels, ws, we, value, threshold, b in rows
    ]
