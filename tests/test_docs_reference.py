"""The generated references are committed, complete and true: docs/config-reference.md,
docs/aisre.schema.json and docs/cli-reference.md equal what the generators print now; every key the
loader accepts and every command appears; the JSON Schema accepts the example configs (and every
shorthand the loader accepts) and rejects a misspelt key, as the loader does."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import yaml
from typer.testing import CliRunner

from aisre.cli.main import app
from aisre.config import parse_config
from aisre.docs_reference import cli_reference, config_reference, config_schema
from aisre.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


def _schema() -> dict[str, Any]:
    return config_schema.schema()


def _validator() -> jsonschema.Draft202012Validator:
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _as_json(data: Any) -> Any:
    """What an editor validates: YAML's timestamps and the like as text."""
    return json.loads(json.dumps(data, default=str))


# ---- the committed files are the generators' output ----------------------------------------------


@pytest.mark.parametrize(
    ("path", "generate", "command"),
    [
        ("docs/config-reference.md", config_reference.render, config_reference.REGENERATE),
        (
            "docs/aisre.schema.json",
            lambda: json.dumps(_schema(), indent=2, ensure_ascii=False) + "\n",
            "aisre docs config --json-schema -o docs/aisre.schema.json",
        ),
        ("docs/cli-reference.md", cli_reference.render, cli_reference.REGENERATE),
    ],
)
def test_the_committed_reference_is_what_the_generator_prints(path, generate, command):
    committed = (ROOT / path).read_text(encoding="utf-8")
    assert committed == generate(), f"{path} is out of date: regenerate it with `{command}` (from the repo root)"


def test_aisre_docs_writes_the_same_text_and_refuses_an_unwritable_path(tmp_path: Path):
    runner = CliRunner()
    for args, expected in (
        (["docs", "config"], config_reference.render()),
        (["docs", "cli"], cli_reference.render()),
    ):
        out = tmp_path / f"{args[1]}.md"
        result = runner.invoke(app, [*args, "-o", str(out)])
        assert result.exit_code == 0, result.output
        assert out.read_text(encoding="utf-8") == expected
    printed = runner.invoke(app, ["docs", "config", "--json-schema"])
    assert printed.exit_code == 0 and json.loads(printed.stdout)["title"] == "aisre.yaml"
    bad = runner.invoke(app, ["docs", "cli", "-o", str(tmp_path / "missing" / "cli.md")])
    assert bad.exit_code == 2 and "--out" in bad.output and "does not exist" in bad.output


# ---- complete ------------------------------------------------------------------------------------


def _schema_paths(node: dict[str, Any], defs: dict[str, Any], path: str, seen: tuple[str, ...] = ()) -> set[str]:
    """Every key path under a schema node, walked from the JSON Schema (not from the reference's own walk)."""
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return set()
        return _schema_paths(defs[name], defs, path, (*seen, name))
    found: set[str] = set()
    for alternative in node.get("anyOf", []) + node.get("oneOf", []) + node.get("allOf", []):
        found |= _schema_paths(alternative, defs, path, seen)
    for key, sub in node.get("properties", {}).items():
        full = f"{path}.{key}" if path else key
        found.add(full)
        found |= _schema_paths(sub, defs, full, seen)
    if isinstance(node.get("items"), dict):
        found |= _schema_paths(node["items"], defs, f"{path}[]", seen)
    if isinstance(node.get("additionalProperties"), dict):
        found |= _schema_paths(node["additionalProperties"], defs, f"{path}.<*>", seen)
    return found


def _generic(path: str) -> str:
    return re.sub(r"<[^>]+>", "<*>", path)


def test_every_key_the_loader_accepts_is_in_the_config_reference():
    schema = _schema()
    accepted = _schema_paths(schema, schema["$defs"], "")
    assert len(accepted) > 250  # the walk found the nested sections, not just the top level
    documented = {_generic(p) for p in config_reference.key_paths()}
    missing = sorted(accepted - documented)
    assert not missing, f"keys missing from the reference: {missing}"
    text = (ROOT / "docs/config-reference.md").read_text(encoding="utf-8")
    absent = [p for p in config_reference.key_paths() if f"| `{p}` |" not in text]
    assert not absent, f"regenerate with `{config_reference.REGENERATE}`; not in the file: {absent}"


def test_the_config_reference_states_types_defaults_and_allowed_values():
    keys = {k.path: k for s in config_reference.sections() for k in s.keys}
    assert keys["store.durability"].type == "one of `durable`, `fast`"
    assert keys["store.durability"].default == '`"fast"`'
    assert keys["gateway.port"].type == "integer (>= 0, <= 65535)"
    assert keys["models.<model>.protocol"].default == "required"
    assert keys["slos[].period"].type == "duration" and keys["slos[].period"].default == '`"30d"`'
    assert keys["breakers[].open_when[].for"].type == "duration"  # `Duration | None`: null is the default
    assert "sqlite:///aisre.db" in keys["store"].type  # the shorthand is documented
    assert "`rollback`" in keys["playbooks[].do"].type
    assert not any(p.startswith("playbooks[].do[]") for p in keys)  # written as shorthands, not {kind, arg}
    # from docstrings: the clause that starts with the key, whole (not cut inside parentheses or at a list)
    assert keys["state.on_failure"].description.endswith(
        "`open` keeps serving with per-process limits, `closed` refuses."
    )
    assert keys["monitors[].schedule"].description == "How often to run (default: the window; `1m` for count windows)."
    assert keys["breakers[].open_when[].slo"].description.startswith("`slo` (an SLO's name): open when its burn rate")
    described = [k for k in keys.values() if k.description]
    assert len(described) > len(keys) * 0.9, [k.path for k in keys.values() if not k.description]


def _commands(command: Any, path: str) -> list[tuple[str, Any]]:
    found = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():
        if not sub.hidden:
            found.extend(_commands(sub, f"{path} {name}"))
    return found


def test_every_command_and_option_is_in_the_cli_reference():
    text = (ROOT / "docs/cli-reference.md").read_text(encoding="utf-8")
    commands = _commands(typer.main.get_command(app), "aisre")
    assert len(commands) > 40
    for path, command in commands:
        heading = f"## `{path}`\n"
        assert heading in text, f"`{path}` missing: regenerate with `{cli_reference.REGENERATE}`"
        section = text.split(heading, 1)[1].split("\n## ", 1)[0]
        for param in command.params:
            if param.hidden or param.name == "help":
                continue
            names = [param.name.upper()] if param.param_type_name == "argument" else param.opts
            for name in names:
                assert f"`{name}`" in section, f"{path}: {name} missing from the reference"


# ---- the JSON Schema agrees with the loader ------------------------------------------------------


def _examples() -> list[Path]:
    """examples/*.yaml that are aisre configs (the loader accepts them)."""
    found = []
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        try:
            parse_config(path.read_text(encoding="utf-8"), str(path))
        except ConfigError:
            continue
        found.append(path)
    return found


def test_the_json_schema_accepts_the_example_configs():
    examples = _examples()
    assert {p.name for p in examples} >= {"monitors.yaml", "slos.yaml"}
    validator = _validator()
    for path in examples:
        errors = [
            f"{list(e.absolute_path)}: {e.message}"
            for e in validator.iter_errors(_as_json(yaml.safe_load(path.read_text())))
        ]
        assert not errors, f"{path.name}: {errors}"


def test_the_json_schema_accepts_the_yaml_the_docs_show_when_the_loader_does(monkeypatch):
    validator = _validator()
    checked = 0
    for doc in ("README.md", "docs/quickstart.md", "docs/concepts.md"):
        path = ROOT / doc
        if not path.exists():
            continue
        for block in re.findall(r"```yaml\n(.*?)```", path.read_text(encoding="utf-8"), re.S):
            for name in re.findall(r"\$\{(\w+)", block):  # the secrets a block reads from the environment
                monkeypatch.setenv(name, "secret")
            try:
                parse_config(block, doc)
            except ConfigError:
                continue  # a fragment (`replicas: [...]`), not a whole config
            errors = [e.message for e in validator.iter_errors(_as_json(yaml.safe_load(block)))]
            assert not errors, f"{doc}: the loader accepts this block, the schema does not: {errors}\n{block}"
            checked += 1
    assert checked >= 6


SHORTHAND_CONFIG = """
store: sqlite:///aisre.db
state: redis://127.0.0.1:6379/0
models:
  fraud:
    protocol: oip
    versions:
      v1: {replicas: ["http://127.0.0.1:9201"]}
      v2: {replicas: ["http://127.0.0.1:9202"]}
    fallback: v1
    retry_on: [502, timeout]
notifications:
  receivers: [{name: oncall, webhook: "http://127.0.0.1:9/hook"}]
monitors:
  - name: fraud-hourly
    model: fraud
    version: v2
    reference: {since: "2026-01-01T00:00:00+00:00", until: 1767312000}
    window: 1h
    checks: [data_drift, performance, estimated_performance, fairness]
    method: jensenshannon
    threshold: std
    performance: {threshold: std}
    estimated_performance: {threshold: std}
    fairness: {sensitive: region}
evaluation:
  fraud:
    metrics: {accuracy: {min: 0.9}}
    fairness: [{metric: demographic_parity_difference, sensitive: region, max: 0.1}]
playbooks:
  - name: drift-rollback
    model: fraud
    version: v2
    when: {signal: dataset_drift, breached: true, for: 10m}
    do: [rollback, freeze_promotions, {notify: [oncall]}, {set_weights: {v1: 100, v2: 0}}]
"""


def test_every_shorthand_the_loader_accepts_the_schema_accepts():
    parse_config(SHORTHAND_CONFIG)  # the loader takes it
    errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in _validator().iter_errors(yaml.safe_load(SHORTHAND_CONFIG))
    ]
    assert not errors


def test_every_before_validator_of_the_config_models_is_described_for_the_schema():
    """A new shorthand must be added to SHORTHANDS, or editors would flag configs the loader accepts."""
    unlisted: list[str] = []
    for section in config_reference.sections():
        decorators = section.model.__pydantic_decorators__
        for validator in decorators.field_validators.values():
            if validator.info.mode in ("before", "wrap", "plain"):
                unlisted.extend(
                    f"{section.model.__name__}.{f}"
                    for f in validator.info.fields
                    if (section.model.__name__, f) not in config_schema.SHORTHANDS
                )
        for model_validator in decorators.model_validators.values():
            if model_validator.info.mode in ("before", "wrap"):
                unlisted.append(f"{section.model.__name__} (model validator {model_validator.cls_var_name})")
    assert not unlisted, f"add these to aisre.docs_reference.config_schema.SHORTHANDS: {sorted(set(unlisted))}"


@pytest.mark.parametrize(
    ("config", "where"),
    [
        ({"stor": "sqlite:///aisre.db"}, "stor"),
        ({"gateway": {"prot": 8080}}, "prot"),
        (
            {
                "slos": [
                    {"name": "a", "model": "m", "objectiv": 0.99, "objective": 0.99, "sli": {"kind": "availability"}}
                ]
            },
            "objectiv",
        ),
    ],
)
def test_a_misspelt_key_is_refused_by_the_schema_and_the_loader(config, where):
    errors = list(_validator().iter_errors(config))
    assert errors and any(where in e.message for e in errors), [e.message for e in errors]
    with pytest.raises(ConfigError, match=where):
        parse_config(yaml.safe_dump(config))
