"""JSON Schema checks of LLM outputs, by the `jsonschema` package (the optional `aisre[llm]` extra).

One validator, the real one: a schema means the same thing on every machine (an earlier
hand-written subset, swapped for `jsonschema` when it happened to be installed, let the same
schema pass or fail depending on the environment). The dialect is the schema's `$schema`
(drafts 3 to 2020-12), Draft 2020-12 when it has none; an unknown `$schema` is refused
rather than guessed. `format` is an annotation, not checked, as validators do by default.
`jsonschema` is imported only when a schema check is asked for; without it that call raises
`MissingDependencyError` naming the extra.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aisre.errors import SchemaError, require

EXTRA = "llm"


def _jsonschema() -> Any:
    return require("jsonschema", EXTRA, "JSON schema checks of LLM outputs")


def _dialects(jsonschema: Any) -> dict[str, Any]:
    """Meta-schema URI (without a trailing '#') -> validator class, for every draft jsonschema knows."""
    classes = [getattr(jsonschema, name) for name in dir(jsonschema) if name.startswith("Draft")]
    out = {}
    for cls in classes:
        uri = cls.META_SCHEMA.get("$id", cls.META_SCHEMA.get("id"))
        if isinstance(uri, str):
            out[uri.rstrip("#")] = cls
    return out


def _where(path: Iterable[Any], root: str) -> str:
    return root + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _pointer(path: Iterable[Any]) -> str:
    """RFC 6901 JSON pointer ("/" for the root, "~" and "/" in names escaped)."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in path)


def validator_class(schema: Any) -> Any:
    """The `jsonschema` validator class for `schema`'s dialect; SchemaError if `schema` is unusable."""
    jsonschema = _jsonschema()
    if not isinstance(schema, Mapping | bool):
        raise SchemaError(f"schema: expected a JSON object (or true/false), got {type(schema).__name__}")
    dialect = schema.get("$schema") if isinstance(schema, Mapping) else None
    if dialect is None:
        cls = jsonschema.Draft202012Validator
    else:
        known = _dialects(jsonschema)
        cls = known.get(str(dialect).rstrip("#"))
        if cls is None:
            raise SchemaError(f"schema.$schema: unknown dialect {dialect!r}; expected one of {sorted(known)}")
    try:
        cls.check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        raise SchemaError(f"{_where(exc.absolute_path, 'schema')}: {exc.message}") from None
    return cls


def check_schema(schema: Any) -> None:
    """Raise SchemaError naming the bad keyword's path if `schema` is not a valid JSON schema."""
    validator_class(schema)


def compile_schema(schema: Any) -> Callable[[Any], list[str]]:
    """Check `schema` once, then return `errors(instance)`: what `schema_errors` gives, faster."""
    validator = validator_class(schema)(schema)

    def errors(instance: Any) -> list[str]:
        return [f"{_pointer(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]

    return errors


def schema_errors(instance: Any, schema: Any) -> list[str]:
    """Every way `instance` fails `schema`, as `"<json pointer>: <what>"` ("/" is the root); [] if valid."""
    return compile_schema(schema)(instance)
