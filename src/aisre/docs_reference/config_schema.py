"""docs/aisre.schema.json: the JSON Schema of `aisre.yaml`, for editors (yaml-language-server) and CI.

pydantic's `model_json_schema` describes the typed models, not the shorthands that `mode="before"`
validators accept in YAML (`store: sqlite:///x.db` for `store: {url: ...}`, `fallback: v1` for a list,
`threshold: std`, playbook actions written `rollback` or `{notify: [oncall]}`). `SHORTHANDS` states
each one, for the schema and for the reference; tests/test_docs_reference.py fails when a config model
gains a before-validator that is not listed here, so the schema never rejects a config the loader takes.
"""

from __future__ import annotations

import copy
import typing
from dataclasses import dataclass
from typing import Any

from aisre.config.gateway import RetryOn
from aisre.config.model import AisreConfig
from aisre.config.playbooks import ARG_ACTIONS, SIMPLE_ACTIONS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class Shorthand:
    """What a before-validator accepts beyond the field's type: `text` for the reference, `schema` as
    one more alternative of the field's schema (or its whole schema when `replace`)."""

    text: str
    schema: dict[str, Any] | None = None
    replace: bool = False


_RETRY_ON = [*typing.get_args(RetryOn), *(int(v) for v in typing.get_args(RetryOn) if v.isdigit())]
_ISO_TIME = {"type": "string", "description": "an ISO 8601 time, e.g. 2026-01-01T00:00:00+00:00"}

#: (model class name, field name) -> what its before-validator accepts. `schema=None`: the validator
#: only checks or normalises, the field's own type already says what is accepted.
SHORTHANDS: dict[tuple[str, str], Shorthand] = {
    ("AisreConfig", "store"): Shorthand("a URL string (`store: sqlite:///aisre.db`)", {"type": "string"}),
    ("AisreConfig", "state"): Shorthand("a URL string (`state: redis://127.0.0.1:6379/0`)", {"type": "string"}),
    ("ModelConfig", "fallback"): Shorthand("one version name", {"type": "string"}),
    ("ModelConfig", "retry_on"): Shorthand(
        "list of " + ", ".join(f"`{v}`" for v in typing.get_args(RetryOn)) + " (statuses may be integers: "
        "`[502, timeout]`; one value alone is a list of one)",
        {"anyOf": [{"enum": _RETRY_ON}, {"type": "array", "items": {"enum": _RETRY_ON}}]},
        replace=True,
    ),
    ("FairnessCheck", "sensitive"): Shorthand("one column name", {"type": "string"}),
    ("FairnessOptions", "sensitive"): Shorthand("one field name", {"type": "string"}),
    ("PerformanceOptions", "threshold"): Shorthand("`std` (k = 3)", {"const": "std"}),
    ("EstimatedOptions", "threshold"): Shorthand("`std` (k = 3)", {"const": "std"}),
    ("MonitorJobConfig", "threshold"): Shorthand("`std` (k = 3)", {"const": "std"}),
    ("MonitorJobConfig", "window"): Shorthand("", None),
    ("ReferenceRange", "since"): Shorthand("an ISO 8601 time", _ISO_TIME),
    ("ReferenceRange", "until"): Shorthand("an ISO 8601 time", _ISO_TIME),
    ("PlaybookConfig", "do"): Shorthand(
        "list of actions: "
        + ", ".join(f"`{a}`" for a in SIMPLE_ACTIONS)
        + ", or one-key mappings "
        + ", ".join(f"`{{{k}: {v}}}`" for k, v in ARG_ACTIONS.items()),
        {
            "type": "array",
            "minItems": 1,
            "items": {
                "anyOf": [
                    {"enum": list(SIMPLE_ACTIONS)},
                    {
                        "type": "object",
                        "minProperties": 1,
                        "maxProperties": 1,
                        "propertyNames": {"enum": list(ARG_ACTIONS)},
                    },
                ]
            },
        },
        replace=True,
    ),
}


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of `aisre.yaml`: the models', with the shorthands and the
    reference's descriptions on every property."""
    from aisre.docs_reference.config_reference import sections

    result = AisreConfig.model_json_schema(mode="validation", by_alias=True)
    defs = result.get("$defs", {})
    for section in sections():
        target = result if section.model is AisreConfig else defs.get(section.model.__name__)
        if target is None or "properties" not in target:
            continue
        for (name, info), documented in zip(section.model.model_fields.items(), section.keys, strict=True):
            key = info.alias or name
            prop = target["properties"].get(key)
            if prop is None:
                continue
            shorthand = SHORTHANDS.get((section.model.__name__, name))
            if shorthand is not None and shorthand.schema is not None:
                prop = _with_shorthand(prop, shorthand)
            if documented.description and "description" not in prop:
                prop["description"] = documented.description
            target["properties"][key] = prop
    return {"$schema": SCHEMA_DIALECT, **result, "title": "aisre.yaml"}


def _with_shorthand(prop: dict[str, Any], shorthand: Shorthand) -> dict[str, Any]:
    assert shorthand.schema is not None
    keep = {k: v for k, v in prop.items() if k in ("title", "description", "default")}
    if shorthand.replace:
        return {**keep, **copy.deepcopy(shorthand.schema)}
    body = {k: v for k, v in prop.items() if k not in keep}
    alternatives = body["anyOf"] if set(body) == {"anyOf"} else [body]
    return {**keep, "anyOf": [*alternatives, copy.deepcopy(shorthand.schema)]}
