"""The SLO event SQL of `aisre.slo.events` in PostgreSQL's dialect: the same values as SQLite's.

Why a second rendering: SQLite reads the JSON body with ``json_extract``/``json_type``, sums
booleans as 0/1 and truncates with ``CAST(... AS INTEGER)``; PostgreSQL has none of these as
such. Each fragment here gives, row by row, the value SQLite's gives:

- the body is TEXT holding JSON; it is read as ``json`` (not ``jsonb``): ``json`` accepts every
  body the store accepts, including a ``\\u0000`` escape that ``jsonb`` refuses (a refused cast
  would make a batch's bucket update fail on every retry);
- a JSON number is read as ``float8`` (SQLite's REAL); a comparison is cast to 0/1 with
  ``::int`` where SQLite sums the boolean; NULL stays NULL (SUM skips it in both);
- a class label's canonical text (true -> '1', 2.0 -> '2', 'yes' -> 'yes') as
  `aisre.slo.events._canonical` makes it;
- `where` keys compare as SQLite's ``json_extract(...) = ?`` does: a string only equals a JSON
  string, a number (or a bool, bound as 0/1 by sqlite3) equals a JSON number or boolean of
  that value.

Placeholders stay ``?`` (the spec's SQL is stored with them); `aisre.store.postgres_conn.PgConnection`
binds them as psycopg's ``%s``. No fragment holds a literal ``?`` or ``%``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

#: The minute of a record: SQLite's CAST truncates, PostgreSQL's would round.
MINUTE = "floor(i.ts / 60)::bigint"
BODY = "i.body::json"
FIELD = {
    "latency": "i.latency_s",
    "ttft": f"({BODY} ->> 'ttft_s')::float8",
    "tpot": f"({BODY} ->> 'tpot_s')::float8",
}


def where_value(scope: str, value: Any) -> tuple[str, list[Any]]:
    """The condition `body.scope.NAME = value` as SQLite's `json_extract(i.body, path) = ?` judges it,
    and its parameters after the name (which comes first)."""
    x = f"({BODY} -> '{scope}' -> ?)"
    if isinstance(value, str):
        return f"json_typeof({x}) = 'string' AND ({x} #>> '{{}}') = ?", [value]
    number = (
        f"(CASE json_typeof({x}) WHEN 'number' THEN ({x} #>> '{{}}')::float8 "
        f"WHEN 'boolean' THEN (CASE WHEN ({x} #>> '{{}}') = 'true' THEN 1.0 ELSE 0.0 END) END) = ?"
    )
    return number, [float(value)]


def where_params(sql: str, name: str, rest: list[Any]) -> list[Any]:
    """The parameters of a `where_value` condition: the name at each of its `?` but the last."""
    return [name] * (sql.count("?") - len(rest)) + rest


def canonical(x: str) -> str:
    """SQL for the canonical text of the JSON value `x` (a ``json`` expression), as SQLite's `_canonical`."""
    text = f"({x} #>> '{{}}')"
    return (
        f"(CASE json_typeof({x}) WHEN 'boolean' THEN (CASE WHEN {text} = 'true' THEN '1' ELSE '0' END) "
        f"WHEN 'number' THEN (CASE WHEN {text}::numeric = trunc({text}::numeric) THEN trunc({text}::numeric)::text "
        f"ELSE {text}::float8::text END) WHEN 'string' THEN {text} END)"
    )


_LABEL, _PREDICTION = "l.value::json", f"({BODY} -> 'prediction')"
TRUTH, PRED = canonical(_LABEL), canonical(_PREDICTION)
BOTH = f"{TRUTH} IS NOT NULL AND {PRED} IS NOT NULL"
ACCURACY = (f"({TRUTH} = {PRED})::int", f"({BOTH})::int")
BINARY_SUMS = (
    f"({TRUTH} = '1' AND {PRED} = '1')::int",
    f"({PRED} = '1' AND {TRUTH} IS NOT NULL)::int",
    f"({TRUTH} = '1' AND {PRED} IS NOT NULL)::int",
    f"({BOTH} AND ({TRUTH} NOT IN ('0', '1') OR {PRED} NOT IN ('0', '1')))::int",
)
_Y, _YHAT = f"({_LABEL} #>> '{{}}')::float8", f"({_PREDICTION} #>> '{{}}')::float8"
_NUMBERS = f"json_typeof({_LABEL}) = 'number' AND json_typeof({_PREDICTION}) = 'number'"
_EPS = repr(float(np.finfo(np.float64).eps))
REGRESSION_SUMS = (
    f"({_NUMBERS})::int",
    f"CASE WHEN {_NUMBERS} THEN abs({_YHAT} - {_Y}) END",
    f"CASE WHEN {_NUMBERS} THEN ({_YHAT} - {_Y}) * ({_YHAT} - {_Y}) END",
    f"CASE WHEN {_NUMBERS} THEN abs({_YHAT} - {_Y}) / greatest(abs({_Y}), {_EPS}) END",
    f"(l.value IS NOT NULL AND COALESCE(json_typeof({_LABEL}), 'null') <> 'null' "
    f"AND COALESCE(json_typeof({_PREDICTION}), 'null') <> 'null' AND NOT COALESCE({_NUMBERS}, false))::int",
)


def sqlite_json_value(text: str | None) -> Any:
    """What SQLite's ``json_extract`` hands Python for the JSON text of a value read with ``(... -> 'k')::text``:
    None for null or missing, 1/0 for true/false, the JSON text of an object or array, else the scalar."""
    if text is None:
        return None
    value = orjson.loads(text)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, (dict, list)):
        return orjson.dumps(value).decode()
    return value
