"""A validator for the JSON Schema subset aisre checks LLM outputs against; `jsonschema` when installed.

Subset: `type` (a name or a list of names), `properties`, `required`, `items` (one schema
for every element), `enum`, `additionalProperties` (bool or schema), `minimum`, `maximum`,
`exclusiveMinimum`, `exclusiveMaximum` (numbers, draft 6+ form), `minLength`, `maxLength`
(in code points). Annotations (`$schema`, `$id`, `title`, `description`, `default`,
`examples`, `$comment`, `format`) are ignored, as validators do by default. Any other
keyword is refused by `check_schema`, so a schema is never silently half-checked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from aisre.errors import SchemaError

SUPPORTED = frozenset(
    {
        "type",
        "properties",
        "required",
        "items",
        "enum",
        "additionalProperties",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
    }
)
ANNOTATIONS = frozenset({"$schema", "$id", "title", "description", "default", "examples", "$comment", "format"})
TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})


def check_schema(schema: Any) -> None:
    """Raise SchemaError if `schema` is unusable: by `jsonschema` when importable, else the subset."""
    try:
        import jsonschema
    except ImportError:
        return check_subset_schema(schema)
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise SchemaError(f"schema: {exc.message}") from None


def check_subset_schema(schema: Any, path: str = "schema") -> None:
    """Raise SchemaError naming the first bad keyword (with its path) if `schema` is outside the subset."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, Mapping):
        raise SchemaError(f"{path}: expected an object (or true/false), got {type(schema).__name__}")
    unknown = sorted(set(schema) - SUPPORTED - ANNOTATIONS)
    if unknown:
        raise SchemaError(
            f"{path}: unsupported keyword(s) {unknown}; supported: {sorted(SUPPORTED)} "
            "(install `jsonschema` for the full specification)"
        )
    types = schema.get("type")
    for name in [types] if isinstance(types, str) else (types or []):
        if name not in TYPES:
            raise SchemaError(f"{path}.type: expected one of {sorted(TYPES)}, got {name!r}")
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in schema and not _is_number(schema[key]):
            raise SchemaError(f"{path}.{key}: expected a number, got {schema[key]!r}")
    for key in ("minLength", "maxLength"):
        if key in schema and not (_is_integer(schema[key]) and schema[key] >= 0):
            raise SchemaError(f"{path}.{key}: expected an integer >= 0, got {schema[key]!r}")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise SchemaError(f"{path}.enum: expected a list, got {schema['enum']!r}")
    if "required" in schema and not (
        isinstance(schema["required"], list) and all(isinstance(r, str) for r in schema["required"])
    ):
        raise SchemaError(f"{path}.required: expected a list of property names, got {schema['required']!r}")
    for name, sub in (schema.get("properties") or {}).items():
        check_subset_schema(sub, f"{path}.properties.{name}")
    for key in ("items", "additionalProperties"):
        if key in schema:
            check_subset_schema(schema[key], f"{path}.{key}")


def schema_errors(instance: Any, schema: Any) -> list[str]:
    """Every way `instance` fails `schema`, as `"<json pointer>: <what>"`; empty if valid.

    Uses the `jsonschema` package when it is importable (the full specification), else the
    subset above. Call `check_schema` once first; this assumes a usable schema.
    """
    try:
        import jsonschema
    except ImportError:
        return subset_errors(instance, schema)
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/' + '/'.join(map(str, e.absolute_path)) if e.absolute_path else '/'}: {e.message}"
        for e in validator.iter_errors(instance)
    ]


def subset_errors(instance: Any, schema: Any) -> list[str]:
    """`schema_errors` by the subset alone, whatever is installed."""
    return list(_errors(instance, schema, ""))


def _errors(value: Any, schema: Any, pointer: str) -> Any:
    where = pointer or "/"
    if schema is True:
        return
    if schema is False:
        yield f"{where}: no value is allowed here"
        return
    types = schema.get("type")
    if types is not None:
        wanted = [types] if isinstance(types, str) else list(types)
        if not any(_has_type(value, t) for t in wanted):
            yield f"{where}: expected {' or '.join(wanted)}, got {_type_name(value)}"
            return  # the other keywords would only repeat the type error
    if "enum" in schema and not any(_json_equal(value, option) for option in schema["enum"]):
        yield f"{where}: {value!r} is not one of {schema['enum']!r}"
    if _is_number(value):
        yield from _number_errors(value, schema, where)
    elif isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            yield f"{where}: length {len(value)} is shorter than minLength {schema['minLength']}"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield f"{where}: length {len(value)} is longer than maxLength {schema['maxLength']}"
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from _errors(item, schema["items"], f"{pointer}/{i}")
    elif isinstance(value, dict):
        properties = schema.get("properties") or {}
        for name in schema.get("required", []):
            if name not in value:
                yield f"{where}: required property {name!r} is missing"
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            escaped = str(name).replace("~", "~0").replace("/", "~1")
            if name in properties:
                yield from _errors(item, properties[name], f"{pointer}/{escaped}")
            elif extra is False:
                yield f"{where}: additional property {name!r} is not allowed"
            elif extra is not True:
                yield from _errors(item, extra, f"{pointer}/{escaped}")


def _number_errors(value: float, schema: Mapping[str, Any], where: str) -> Any:
    for key, fails in (
        ("minimum", value < schema.get("minimum", -math.inf)),
        ("maximum", value > schema.get("maximum", math.inf)),
        ("exclusiveMinimum", value <= schema.get("exclusiveMinimum", -math.inf)),
        ("exclusiveMaximum", value >= schema.get("exclusiveMaximum", math.inf)),
    ):
        if fails:
            yield f"{where}: {value!r} fails {key} {schema[key]!r}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    # JSON Schema (draft 6+): 1.0 is an integer; Python's True is not.
    return _is_number(value) and (isinstance(value, int) or float(value).is_integer())


def _has_type(value: Any, name: str) -> bool:
    return {
        "object": lambda: isinstance(value, dict),
        "array": lambda: isinstance(value, list),
        "string": lambda: isinstance(value, str),
        "number": lambda: _is_number(value),
        "integer": lambda: _is_integer(value),
        "boolean": lambda: isinstance(value, bool),
        "null": lambda: value is None,
    }[name]()


def _type_name(value: Any) -> str:
    for name in ("null", "boolean", "integer", "number", "string", "array", "object"):
        if _has_type(value, name):
            return name
    return type(value).__name__


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true != 1 (Python's bool is an int)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b or (_is_number(a) and _is_number(b) and a == b)
