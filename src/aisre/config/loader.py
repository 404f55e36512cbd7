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

from aisre.config.model import AisreConfig
from aisre.errors import ConfigError

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")


def load_config(path: str | os.PathLike[str]) -> AisreConfig:
    """Parse and validate a config file; raises ConfigError listing every problem."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"file not found: {source}"], source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read {source}: {exc}"], source) from None
    return resolve_paths(parse_config(text, source), Path(path).resolve().parent)


def resolve_paths(cfg: AisreConfig, base: Path) -> AisreConfig:
    """Make the relative file paths of a config file relative to the file's own directory.

    So `aisre serve -c deploy/aisre.yaml` finds `deploy/models/fraud.joblib` and
    `deploy/aisre.db` from any working directory.
    """

    def absolute(p: str) -> str:
        return p if Path(p).is_absolute() else str(base / p)

    store = cfg.store.model_copy(update={"url": "sqlite:///" + absolute(cfg.store.path)})
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
    return cfg.model_copy(update={"store": store, "log": log, "models": models})


def parse_config(text: str, source: str = "config") -> AisreConfig:
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
    problems: list[str] = []
    data = _expand_env(data, (), problems)
    if problems:
        raise ConfigError(problems, source)
    return config_from_dict(data, source)


def config_from_dict(data: dict[str, Any], source: str = "config") -> AisreConfig:
    try:
        return AisreConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, AisreConfig), source) from None


def format_validation_error(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """Turn pydantic's errors into 'key.path: what was wrong (got X); expected Y' lines."""
    lines = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
        path = ".".join(loc) or "(top level)"
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(root, loc[:-1])
            hint = difflib.get_close_matches(loc[-1], allowed, n=1)
            guess = f"; did you mean '{hint[0]}'?" if hint else ""
            lines.append(f"{path}: unknown key{guess} (expected one of: {', '.join(allowed)})")
            continue
        msg = err["msg"].removeprefix("Value error, ")
        got = err.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{path}: {msg}{shown}")
    return lines


def _allowed_keys(root: type[BaseModel], loc: list[str]) -> list[str]:
    """The keys allowed at `loc`, walking through nested sections and dict-of-section fields."""
    model: Any = root
    skip_key = False
    for part in loc:
        if skip_key:  # `part` is a user-chosen key of a dict (a model or version name)
            skip_key = False
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            break
        annotation = _unwrap_optional(field.annotation)
        if typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
            skip_key = True
        model = annotation
    return sorted(getattr(model, "model_fields", {}))


def _unwrap_optional(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return annotation


def _expand_env(value: Any, path: tuple[str, ...], problems: list[str]) -> Any:
    """Replace ${NAME} and ${NAME:-default} in strings with environment values."""
    if isinstance(value, dict):
        return {k: _expand_env(v, (*path, str(k)), problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, (*path, str(i)), problems) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        problems.append(
            f"{'.'.join(path)}: environment variable {name} is not set (use ${{{name}:-default}} to give a default)"
        )
        return ""

    return _ENV_REF.sub(substitute, value)
