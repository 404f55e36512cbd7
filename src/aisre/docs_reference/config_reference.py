"""docs/config-reference.md, generated from the pydantic models of `aisre.yaml`.

The models are the only truth about what the loader accepts (`extra="forbid"`: an unknown key is an
error), so the reference is a walk over them: every key path (`models.<model>.versions.<version>.sklearn`,
`slos[].sli.kind`), its type with the allowed values of a `Literal`, its default, its constraints
(`Field(gt=0)`...) and a description: the field's `description=` where it has one, else the sentences
of its class's docstring that name it in backticks (the models were documented that way first).
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
import re
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

from aisre.config.model import AisreConfig
from aisre.docs_reference.config_schema import SHORTHANDS

#: The placeholder written for the keys of a mapping, by the mapping's own key.
PLACEHOLDERS = {"models": "<model>", "versions": "<version>", "evaluation": "<model>", "metrics": "<metric>"}

REGENERATE = "aisre docs config -o docs/config-reference.md"


@dataclass(frozen=True)
class Key:
    """One key of `aisre.yaml`: where it is, what it takes and what it means."""

    path: str
    type: str
    default: str
    description: str
    sections: tuple[str, ...] = ()  # the paths of the sections under it (a key whose value is a section)


@dataclass(frozen=True)
class Section:
    """A model at a key path (`""` is the top level) and its own keys."""

    path: str
    model: type[BaseModel]
    keys: list[Key]


def sections(model: type[BaseModel] = AisreConfig, path: str = "") -> Iterator[Section]:
    """Every section of the config, depth first in field order, each with its keys."""
    keys: list[Key] = []
    nested: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        key = field.alias or name
        full = f"{path}.{key}" if path else key
        shorthand = SHORTHANDS.get((model.__name__, name))
        under = [] if shorthand is not None and shorthand.replace else _nested_models(field.annotation, full, key)
        nested.extend(under)  # a replaced field (playbooks' `do`) is written its own way, not as its model
        described = _description(model, name, key, field)
        paths = tuple(dict.fromkeys(p for p, _ in under))
        keys.append(Key(full, _field_type(model, name, field), _default(field), described, paths))
    yield Section(path, model, keys)
    for sub_path, sub_model in nested:
        yield from sections(sub_model, sub_path)


def key_paths() -> list[str]:
    """Every key path of the reference, in its order."""
    return [key.path for section in sections() for key in section.keys]


def render() -> str:
    """The whole reference as Markdown."""
    out = [
        "# aisre.yaml reference",
        "",
        f"<!-- generated from src/aisre/config/*.py by `{REGENERATE}`; do not edit by hand -->",
        "",
        "Every key `aisre.yaml` may contain, generated from the config models that the loader validates",
        "with. An unknown key is an error (with a did-you-mean), so a misspelt key never passes silently;",
        "`aisre check-config aisre.yaml` reports every problem at once, each at its key path.",
        "",
        "- Paths: `a.b` is a nested key, `<model>` any name of your choosing (a mapping's key), `[]` an item",
        "  of a list (`slos[].sli.kind` is the `kind` of the `sli` of each SLO).",
        "- Every section is optional and has working defaults; `required` marks what a section needs",
        "  once it is present.",
        "- `${VAR}` and `${VAR:-default}` in any value are replaced from the environment before validation.",
        "- Durations are written like `30s`, `5m`, `1h`, `7d`.",
        "- Relative file paths (the store, `log.jsonl`, `sklearn` files, evaluation data) are relative to",
        "  the config file's directory.",
        "- The JSON Schema of the same models is `docs/aisre.schema.json` (`aisre docs config --json-schema`);",
        "  point an editor at it, e.g. with yaml-language-server, on the file's first line:",
        "  `# yaml-language-server: $schema=PATH/TO/docs/aisre.schema.json` (a relative path or a URL).",
        "",
        "## Sections",
        "",
    ]
    all_sections = list(sections())
    listed: set[str] = set()
    headings = _headings(all_sections)
    for section in all_sections[1:]:
        top = re.split(r"[.\[]", section.path, maxsplit=1)[0]
        if top not in listed:
            listed.add(top)
            out.append(f"- [`{section.path}`](#{_anchor(headings[section.path, section.model])})")
    for section in all_sections:
        out.extend(["", f"## {headings[section.path, section.model]}", ""])
        doc = _docstring(section.model)
        if doc:
            out.extend([_prose(doc), ""])
        out.extend(["| key | type | default | description |", "| --- | --- | --- | --- |"])
        for key in section.keys:
            kind = key.type
            if key.sections:  # "section" links to where its keys are listed
                target = _anchor(next(h for (p, _), h in headings.items() if p == key.sections[0]))
                kind = re.sub(r"\b(sections?)\b", rf"[\1](#{target})", kind, count=1)
            cells = [f"`{key.path}`", kind, key.default, key.description]
            out.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(out) + "\n"


def _headings(all_sections: list[Section]) -> dict[tuple[str, type[BaseModel]], str]:
    """Each section's heading: its path; where a key takes one of several sections (`threshold:
    {std: k}` or `{lower, upper}`), the path and the section's keys, so no two headings are equal."""
    count: dict[str, int] = {}
    for section in all_sections:
        count[section.path] = count.get(section.path, 0) + 1
    headings = {}
    for section in all_sections:
        text = f"`{section.path}`" if section.path else "Top level"
        if count[section.path] > 1:
            names = ", ".join(k.path.rsplit(".", 1)[-1] for k in section.keys)
            text += f" as `{{{names}}}`"
        headings[section.path, section.model] = text
    return headings


# ---- types ---------------------------------------------------------------------------------------


def _field_type(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    shorthand = SHORTHANDS.get((model.__name__, name))
    if shorthand is not None and shorthand.replace:
        return shorthand.text
    text = _type_text(field.annotation, field.metadata)
    constraints = _constraints(field.metadata)
    if constraints:
        text += f" ({constraints})"
    if shorthand is not None and shorthand.text:
        text += f"; or {shorthand.text}"
    return text


def _type_text(tp: Any, metadata: list[Any] | None = None) -> str:
    origin = typing.get_origin(tp)
    if tp is type(None):
        return "null"
    if origin is typing.Annotated:
        base, *extra = typing.get_args(tp)
        return _type_text(base, extra)
    if tp is str and any("duration" in getattr(getattr(m, "func", None), "__name__", "") for m in metadata or []):
        return "duration"  # `Duration` (config/slo.py): pydantic moves its validator to the field's metadata
    if origin is Literal:
        return "one of " + ", ".join(f"`{v}`" for v in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        parts = [_type_text(a) for a in typing.get_args(tp) if a is not type(None)]
        return " or ".join(dict.fromkeys(parts))  # `StdBand | ConstantBand` is one "section"
    if origin is list:
        return f"list of {_plural(_type_text(typing.get_args(tp)[0]))}"
    if origin is dict:
        return f"map of name to {_type_text(typing.get_args(tp)[1])}"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "section"
    names = {str: "string", int: "integer", float: "number", bool: "boolean", dt.datetime: "time (ISO 8601 or Unix s)"}
    if tp in names:
        return names[tp]
    if tp is Any:
        return "any"
    return getattr(tp, "__name__", str(tp))


def _plural(text: str) -> str:
    simple = {"string": "strings", "integer": "integers", "number": "numbers", "section": "sections"}
    return simple.get(text, f"({text})" if " or " in text else text)


def _constraints(metadata: list[Any]) -> str:
    found = []
    for m in metadata:
        if isinstance(m, at.Gt):
            found.append(f"> {m.gt}")
        elif isinstance(m, at.Ge):
            found.append(f">= {m.ge}")
        elif isinstance(m, at.Lt):
            found.append(f"< {m.lt}")
        elif isinstance(m, at.Le):
            found.append(f"<= {m.le}")
        elif isinstance(m, at.MinLen):
            found.append(f"at least {m.min_length}")
        elif isinstance(m, at.MaxLen):
            found.append(f"at most {m.max_length}")
        elif getattr(m, "pattern", None):
            found.append(f"matches `{m.pattern}`")
    return ", ".join(found)


def _nested_models(tp: Any, path: str, key: str) -> list[tuple[str, type[BaseModel]]]:
    """The models under a field, each at its path (`x`, `x[]`, `x.<name>`)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _nested_models(typing.get_args(tp)[0], path, key)
    if origin in (typing.Union, types.UnionType):
        return [found for arg in typing.get_args(tp) for found in _nested_models(arg, path, key)]
    if origin is list:
        return _nested_models(typing.get_args(tp)[0], f"{path}[]", key)
    if origin is dict:
        return _nested_models(typing.get_args(tp)[1], f"{path}.{PLACEHOLDERS.get(key, '<name>')}", key)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [(path, tp)]
    return []


# ---- defaults and descriptions -------------------------------------------------------------------


def _default(field: FieldInfo) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is None:
        return "unset"
    if isinstance(value, BaseModel):
        return "see below"
    if value == [] or value == {}:
        return "none"
    if isinstance(value, list) and all(isinstance(v, BaseModel) for v in value):
        value = [v.model_dump(by_alias=True, exclude_defaults=True) for v in value]
    return f"`{json.dumps(to_jsonable_python(value), separators=(', ', ': '))}`"


def _docstring(model: type[BaseModel]) -> str:
    doc = model.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def _description(model: type[BaseModel], name: str, key: str, field: FieldInfo) -> str:
    """`description=`, else the docstring's clauses about this key: those that start with it
    (`` `sticky`: a request header... ``, `` `durability: durable` acknowledges... ``). Clauses that
    only mention it stay in the section's text above the table, not repeated per key."""
    if field.description:
        return field.description
    keys = [f.alias or n for n, f in model.model_fields.items()]
    subject = re.compile(rf"^`{re.escape(key)}(?![\w.])[^`]*`")
    clauses = [  # a clause about the key says something: not a bare name from a list ("`a`, `b`, `slo`.")
        unit
        for unit in _units(_docstring(model), keys)
        if subject.search(unit) and len(subject.sub("", unit).strip(" .,:;").split()) > 1
    ]
    return " ".join(_without_label(clause, key) for clause in clauses)


def _without_label(clause: str, key: str) -> str:
    """`` `sticky`: a request header... `` -> "A request header..." (the table's row already names the key)."""
    match = re.match(rf"^`{re.escape(key)}`:\s*(.+)$", clause)
    if match is None:
        return clause
    rest = match.group(1)
    return rest[0].upper() + rest[1:]


def _units(doc: str, keys: list[str]) -> list[str]:
    """A docstring cut into clauses: sentences, bullet items (without their dash), and the parts after
    a `;` or `,` that start with one of the section's `keys` (outside parentheses)."""
    blocks: list[str] = []
    for paragraph in re.split(r"\n\s*\n", doc):
        for item in re.split(r"\n(?=\s*- )", paragraph):
            blocks.append(" ".join(item.split()).removeprefix("- "))
    names = "|".join(re.escape(k) for k in keys)
    boundary = re.compile(rf"[;,]\s+(?=`(?:{names})(?![\w.])[^`]*`)")
    units: list[str] = []
    for block in blocks:
        for sentence in re.split(r"(?<!e\.g\.)(?<!i\.e\.)(?<=[.!?])\s+(?=[A-Z`(])", block):
            units.extend(part for part in _split_outside_parentheses(sentence, boundary) if part)
    return units


def _split_outside_parentheses(text: str, boundary: re.Pattern[str]) -> list[str]:
    parts, start = [], 0
    for match in boundary.finditer(text):
        before = text[: match.start()]
        if before.count("(") == before.count(")"):
            parts.append(text[start : match.start()])
            start = match.end()
    return [*parts, text[start:]]


def _prose(doc: str) -> str:
    """A docstring as Markdown: paragraphs reflowed, bullet lists kept."""
    out = []
    for paragraph in re.split(r"\n\s*\n", doc):
        items = re.split(r"\n(?=\s*- )", paragraph)
        out.append("\n".join(" ".join(item.split()) for item in items))
    return "\n\n".join(out)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _anchor(heading: str) -> str:
    """GitHub's anchor for a heading `` `heading` ``: lower case, punctuation dropped, spaces as dashes."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")
