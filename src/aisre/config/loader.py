"""Reading `aisre.yaml`: YAML to typed config, with every error naming its key path."""

from __future__ import annotations

import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from aisre.config import checks
from aisre.config.checks import Problem
from aisre.config.gateway import VersionConfig
from aisre.config.model import AisreConfig
from aisre.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def load_config(
    path: str | os.PathLike[str], *, check_runtime: bool = False, connect: bool = False, load_models: bool = False
) -> AisreConfig:
    """Parse and validate a config file; raises ConfigError listing every problem.

    `check_runtime` adds what the runtime checks at start-up (files, environment variables, URLs,
    prices, limits: `aisre.config.checks.find`), reported together with the schema's problems;
    `connect` also pings Redis, `load_models` also unpickles model files (running their code).
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"file not found: {source}"], source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read {source}: {exc}"], source) from None
    runtime = {"connect": connect, "load_models": load_models} if check_runtime else None
    return _parse(text, source, Path(path).resolve().parent, runtime)


def resolve_paths(cfg: AisreConfig, base: Path) -> AisreConfig:
    """Make the relative file paths of a config file relative to the file's own directory.

    So `aisre serve -c deploy/aisre.yaml` finds `deploy/models/fraud.joblib` and
    `deploy/aisre.db` from any working directory.
    """

    def absolute(p: str) -> str:
        return p if Path(p).is_absolute() else str(base / p)

    store = cfg.store
    if store.is_sqlite:  # a PostgreSQL URL names a server, not a file
        store = store.model_copy(update={"url": "sqlite:///" + absolute(store.path)})
    log = cfg.log
    if log.jsonl and log.jsonl != "-":
        log = log.model_copy(update={"jsonl": absolute(log.jsonl)})
    models = {}
    for name, model in cfg.models.items():
        versions = {
            v: (ver.model_copy(update={"sklearn": absolute(ver.sklearn)}) if ver.sklearn else ver)
            for v, ver in model.versions.items()
        }
        models[name] = model.model_copy(update={"versions": versions})
    evaluation = {
        name: entry.model_copy(update={"data": absolute(entry.data)}) if entry.data else entry
        for name, entry in cfg.evaluation.items()
    }
    return cfg.model_copy(update={"store": store, "log": log, "models": models, "evaluation": evaluation})


def parse_config(text: str, source: str = "config", *, check_runtime: bool = False) -> AisreConfig:
    """Parse and validate YAML text (relative paths stay relative to the working directory)."""
    return _parse(text, source, None, {} if check_runtime else None)


def _parse(text: str, source: str, base: Path | None, runtime: dict[str, bool] | None) -> AisreConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"not valid YAML{where}: {problem}"], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"(top level): expected a mapping of sections, got {type(data).__name__}"], source)
    unset: list[Problem] = []
    data = _expand_env(data, (), unset)
    return _validate(data, source, base, runtime, unset)


def config_from_dict(data: dict[str, Any], source: str = "config", *, check_runtime: bool = False) -> AisreConfig:
    return _validate(data, source, None, {} if check_runtime else None, [])


def _validate(
    data: dict[str, Any], source: str, base: Path | None, runtime: dict[str, bool] | None, unset: list[Problem]
) -> AisreConfig:
    """Schema, then (with `runtime`) start-up checks, all reported at once. Where the schema fails, the
    start-up checks still run on the sections that are valid on their own; problems under a key whose
    environment variable is unset are left out (they are about the empty stand-in value)."""
    found: list[Problem] = []
    left_out: set[checks.Loc] = set()
    cfg: AisreConfig | None
    try:
        cfg = AisreConfig.model_validate(data)
    except ValidationError as exc:
        found += schema_problems(exc, AisreConfig)
        cfg, left_out = _valid_sections(data) if runtime is not None else (None, set())
    if cfg is not None and base is not None:
        cfg = resolve_paths(cfg, base)
    if cfg is not None and runtime is not None:
        start_up = checks.find(
            cfg, connect=runtime.get("connect", False), load_models=runtime.get("load_models", False)
        )
        found += [p for p in start_up if not any(p.under(loc) for loc in left_out)]
    found = unset + [p for p in found if not any(p.under(u.loc) for u in unset)]
    checks.require(found, source)
    assert cfg is not None
    return cfg


def _valid_sections(data: dict[str, Any]) -> tuple[AisreConfig | None, set[checks.Loc]]:
    """A config of the sections (and models) that validate alone, and the keys left out of it."""
    kept: dict[str, Any] = {}
    left_out: set[checks.Loc] = set()
    for key, value in data.items():
        if key not in AisreConfig.model_fields:
            continue
        if key == "models" and isinstance(value, dict):
            kept[key] = {}
            for name, model in value.items():
                usable = next((m for m in (model, _versions_only(model)) if _validates({key: {name: m}})), None)
                if usable is None:
                    left_out.add((key, str(name)))
                else:
                    kept[key][name] = usable
        elif _validates({key: value}):
            kept[key] = value
        else:
            left_out.add((key,))
    if ("store",) in left_out:
        left_out.add(("auth",))  # the key secret file sits next to the store
    try:
        return AisreConfig.model_validate(kept), left_out
    except ValidationError:
        return None, left_out


def _versions_only(model: Any) -> Any:
    """A model without its cross-references (route, shadow, fallback) and without the versions that are
    invalid alone, so the files, prices and limits of a model with a bad route are still checked."""
    if not isinstance(model, dict) or not isinstance(model.get("versions"), dict):
        return model
    versions = {v: cfg for v, cfg in model["versions"].items() if _validates_as(VersionConfig, cfg)}
    cut = {k: v for k, v in model.items() if k not in ("route", "shadow", "fallback")}
    return {**cut, "versions": versions}


def _validates_as(section: type[BaseModel], data: Any) -> bool:
    try:
        section.model_validate(data)
    except ValidationError:
        return False
    return True


def _validates(data: dict[str, Any]) -> bool:
    return _validates_as(AisreConfig, data)


def format_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """Turn pydantic's errors into 'key.path: what was wrong (got X); expected Y' lines."""
    return [str(p) for p in schema_problems(exc, root)]


def schema_problems(exc: ValidationError, root: type[BaseModel]) -> list[Problem]:
    """pydantic's errors as Problems: the key path, what was wrong (got X), what was expected."""
    found = []
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not str(p).startswith("function-"))
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(root, [str(p) for p in loc[:-1]])
            hint = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
            guess = f"; did you mean '{hint[0]}'?" if hint else ""
            found.append(Problem(loc, f"unknown key{guess} (expected one of: {', '.join(allowed)})"))
            continue
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        if isinstance(got, str) and "://" in got and "@" in got:  # a database URL: never echo its password
            from aisre.store.postgres import redact

            got = redact(got)
        shown = "" if isinstance(got, dict) or err["type"] == checks.PROBLEM_TYPE else f" (got {got!r})"
        found.append(Problem(loc, f"{msg}{shown}"))
    return found


def _allowed_keys(root: type[BaseModel], loc: list[str]) -> list[str]:
    """The keys allowed at `loc`, walking through nested sections and dict-of-section fields."""
    model: Any = root
    skip_key = False
    for part in loc:
        if skip_key:  # `part` is a user-chosen key of a dict (a model or version name)
            skip_key = False
            continue
        fields = getattr(model, "model_fields", {})
        field = next((f for name, f in fields.items() if (f.alias or name) == part), None)
        if field is None:
            break
        annotation = _unwrap_optional(field.annotation)
        if typing.get_origin(annotation) in (dict, list):  # the next part is a name or an index: skip it
            annotation = typing.get_args(annotation)[-1]
            skip_key = True
        model = _section_of(annotation)
    return sorted(f.alias or name for name, f in getattr(model, "model_fields", {}).items())


def _section_of(annotation: Any) -> Any:
    """The section of `str | ReferenceRange` (the one model of a union), else the annotation itself."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if len(models) == 1:
            return models[0]
    return annotation


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _expand_env(value: Any, path: checks.Loc, unset: list[Problem]) -> Any:
    """Replace ${NAME} and ${NAME:-default} in strings with environment values."""
    if isinstance(value, dict):
        return {k: _expand_env(v, (*path, str(k)), unset) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*path, i), unset) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        unset.append(
            Problem(path, f"environment variable {name} is not set (use ${{{name}:-default}} to give a default)")
        )
        return ""

    return _ENV_REF.sub(substitute, value)
