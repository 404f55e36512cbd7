"""Every check a config must pass before anything starts, in one place, so `aisre check-config` and the
runtime can never disagree.

Two kinds. *Structural* checks (a route naming an unknown version, a header with a line break) need
nothing but the config; the pydantic validators call them and `raise_all` reports every problem at its
own key path. *Environment* checks (`find`) look at what the runtime would meet at start-up: files that
must exist and be readable, environment variables, URLs the runtime parses, prices and limits its
constructors refuse. They are run by `load_config(check_runtime=True)` / `aisre check-config`, by
`Recorder.from_config` and by `create_app`, always through the same functions (the runtime's own
parsers and constructors: `Price`, `Limits`, `Budget`, `Origin.parse`, redis' `parse_url`, the key
store's secret checks). Nothing here starts a server, opens the store or unpickles a model, except
`load_models=True` (which runs the code in the model files) and `connect=True` (which pings Redis).
Those runtime modules are imported inside the functions: they import `aisre.config` themselves.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aisre.errors import ConfigError

if TYPE_CHECKING:
    from aisre.config.gateway import AuthConfig, ModelConfig, StateConfig, VersionConfig
    from aisre.config.model import AisreConfig, LogConfig, RedactionConfig, StoreConfig
    from aisre.config.monitors import MonitorJobConfig

Loc = tuple[str | int, ...]
RECORDER = "recorder"  # store, log, redaction: what `Recorder.from_config` builds
GATEWAY = "gateway"  # models, auth, state: what `create_app` builds on top
EVALUATION = "evaluation"  # golden data sets of `evaluation:` (check-config only: serving never reads them)
PROBLEM_TYPE = "aisre_config"  # the pydantic error type of structural problems (shown without "got")
_SQLITE_HEADER = b"SQLite format 3\x00"
# How a joblib.dump file starts: a pickle (protocol >= 2, or 0/1: GLOBAL module\nname), or compressed.
_JOBLIB_HEAD = re.compile(
    rb"\x80|c[\w.]+\n|x[\x01\x5e\x9c\xda]|\x1f\x8b|BZh|\xfd7zXZ\x00|\x5d\x00\x00|\x04\x22\x4d\x18|ZF"
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong: where (the key path) and what, with what was expected."""

    loc: Loc
    message: str

    @property
    def path(self) -> str:
        return ".".join(str(p) for p in self.loc) or "(top level)"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"

    def under(self, prefix: Loc) -> bool:
        return self.loc[: len(prefix)] == prefix


def raise_all(found: Sequence[Problem], title: str) -> None:
    """From a pydantic validator: raise every problem at once, each at its own key path."""
    if not found:
        return
    from pydantic import ValidationError
    from pydantic_core import InitErrorDetails, PydanticCustomError

    details = [
        InitErrorDetails(
            type=PydanticCustomError(PROBLEM_TYPE, "{message}", {"message": p.message}), loc=p.loc, input=None
        )
        for p in found
    ]
    raise ValidationError.from_exception_data(title, details)


def require(found: Sequence[Problem], source: str = "config") -> None:
    """Raise one ConfigError listing every problem, if there is any."""
    if found:
        raise ConfigError([str(p) for p in found], source)


# -- structural: the config alone --------------------------------------------------------------------------


def header_problems(headers: Mapping[str, str]) -> list[str]:
    """Headers the HTTP clients could not send: names with spaces, ':' or control characters, values with
    line breaks, other control characters or characters outside Latin-1 (what HTTP/1.1 can carry)."""
    bad = []
    for name, value in headers.items():
        if not name or any(c in name for c in " :") or not _sendable(name) or not _sendable(value):
            bad.append(
                f"header {name!r}: names may not contain spaces, ':' or line breaks, values may not contain "
                "line breaks or other control characters, and both must be Latin-1 text"
            )
    return bad


def _sendable(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return not any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in text)


def model_problems(model: ModelConfig) -> list[Problem]:
    """Cross-references inside one model: route, fallback and shadow name real versions; usable weights."""
    known = sorted(model.versions)
    found = []
    for loc, names in (("route",), list(model.route)), (("fallback",), model.fallback):
        unknown = [n for n in names if n not in model.versions]
        if unknown:
            found.append(Problem(loc, f"names unknown versions {unknown}; versions are {known}"))
    if model.shadow is not None and model.shadow.version not in model.versions:
        found.append(
            Problem(("shadow", "version"), f"names unknown version {model.shadow.version!r}; versions are {known}")
        )
    if any(w < 0 for w in model.route.values()):
        found.append(Problem(("route",), f"weights must be >= 0, got {model.route}"))
    elif model.route and sum(model.route.values()) <= 0:
        found.append(Problem(("route",), f"weights must not all be 0, got {model.route}"))
    if model.protocol == "openai":
        for name, version in model.versions.items():
            if version.sklearn:
                found.append(
                    Problem(
                        ("versions", name, "sklearn"),
                        "'sklearn' versions serve the Open Inference Protocol: use protocol: oip",
                    )
                )
    return found


# -- environment: what the runtime meets at start-up --------------------------------------------------------


def find(
    config: AisreConfig,
    *,
    parts: Iterable[str] = (RECORDER, GATEWAY, EVALUATION),
    connect: bool = False,
    load_models: bool = False,
) -> list[Problem]:
    """Every problem the runtime would refuse `config` for at start-up (`parts`: what will be built)."""
    parts = set(parts)
    found: list[Problem] = []
    if RECORDER in parts:
        found += store_problems(config.store)
        found += log_problems(config.log)
        found += redaction_problems(config.redaction)
    if GATEWAY in parts:
        for name, model in config.models.items():
            found += model_runtime_problems(name, model, load_models=load_models)
        found += auth_problems(config.auth, config.store)
        found += state_problems(config.state, connect=connect)
        found += rule_problems(config)
    for i, job in enumerate(getattr(config, "monitors", ())):
        found += monitor_problems(i, job)
    if EVALUATION in parts:
        from aisre.config.evaluation import evaluation_problems

        found += evaluation_problems(config)
    return found


def rule_problems(config: AisreConfig) -> list[Problem]:
    """Fallback rule functions of `breakers:` that do not import or cannot take a request (imports user code)."""
    from aisre.respond.rules import RuleLoadError, load_rule

    found = []
    for i, breaker in enumerate(getattr(config, "breakers", ())):
        if breaker.fallback.rule is not None:
            try:
                load_rule(breaker.fallback.rule)
            except RuleLoadError as exc:
                found.append(Problem(("breakers", i, "fallback", "rule"), str(exc)))
    return found


def problems(config: AisreConfig, **options: Any) -> list[str]:
    """`find` as 'key.path: what' lines."""
    return [str(p) for p in find(config, **options)]


def check(config: AisreConfig, *, parts: Iterable[str] = (RECORDER, GATEWAY), source: str = "config") -> None:
    """Raise one ConfigError with every start-up problem of `parts` (what the runtime calls)."""
    require(find(config, parts=parts), source)


def store_problems(store: StoreConfig) -> list[Problem]:
    """What `SQLiteStore` would fail on: a missing or read-only directory, a file that is not SQLite.
    (A PostgreSQL URL was checked by the schema; whether the server answers is found when it is opened.)"""
    if not store.is_sqlite:
        return []
    path = Path(store.path)
    where = ("store", "url")
    directory = path.parent
    if not directory.is_dir():
        return [Problem(where, f"cannot create store {path}: directory {directory} does not exist")]
    if not os.access(directory, os.W_OK | os.X_OK):
        return [
            Problem(
                where,
                f"cannot open store {path}: directory {directory} is not writable (SQLite keeps its journal there)",
            )
        ]
    if not path.exists():
        return []
    if not path.is_file() or not os.access(path, os.R_OK | os.W_OK):
        return [Problem(where, f"cannot open store {path}: not a file this user can read and write")]
    with path.open("rb") as f:
        head = f.read(len(_SQLITE_HEADER))
    if head and head != _SQLITE_HEADER:
        return [Problem(where, f"cannot open store {path}: file is not a database (expected SQLite)")]
    return []


def log_problems(log: LogConfig) -> list[Problem]:
    """What `JsonlSink` would fail on when it opens the JSON-lines log for appending."""
    if not log.jsonl or log.jsonl == "-":
        return []
    path = Path(log.jsonl)
    problem = _writable_file(path)
    return [Problem(("log", "jsonl"), f"cannot open JSON-lines log {path}: {problem}")] if problem else []


def _writable_file(path: Path) -> str | None:
    if path.exists():
        if not path.is_file():
            return "not a regular file"
        return None if os.access(path, os.W_OK) else "not writable by this user"
    if not path.parent.is_dir():
        return f"directory {path.parent} does not exist"
    return None if os.access(path.parent, os.W_OK | os.X_OK) else f"directory {path.parent} is not writable"


def redaction_problems(redaction: RedactionConfig) -> list[Problem]:
    """Hashing needs its key in the environment (also what `Redactor.from_config` refuses)."""
    if redaction.hash and not os.environ.get(redaction.hash_key_env):
        return [
            Problem(
                ("redaction", "hash"),
                f"set the environment variable {redaction.hash_key_env} to a secret key "
                "(hashes of short values without a key can be reversed by guessing)",
            )
        ]
    return []


def model_runtime_problems(name: str, model: ModelConfig, *, load_models: bool = False) -> list[Problem]:
    """One model's replicas, model files, prices, limits and budget, as the gateway would build them."""
    from aisre.gateway.cost import Budget
    from aisre.gateway.limits import Limits

    found = []
    for version, cfg in model.versions.items():
        found += _version_problems(("models", name, "versions", version), cfg, load_models)
    for dimension in ("rpm", "tpm", "max_concurrent"):
        try:
            Limits(**{dimension: getattr(model.limits, dimension)})
        except ValueError as exc:
            message = str(exc).removeprefix(f"limits.{dimension} ")
            found.append(Problem(("models", name, "limits", dimension), message))
    if model.budget is not None:
        try:
            Budget.from_config(model.budget, label=name)
        except ValueError as exc:
            found.append(_located(("models", name), str(exc)))
    return found


def _version_problems(loc: Loc, cfg: VersionConfig, load_models: bool) -> list[Problem]:
    from aisre.gateway.cost import Price
    from aisre.gateway.http1 import Origin

    found = []
    for i, url in enumerate(cfg.replicas):
        try:
            Origin.parse(url)
        except ValueError as exc:
            found.append(Problem((*loc, "replicas", i), f"cannot use {url!r}: {exc}"))
    if cfg.sklearn:
        problem = model_file_problem(cfg.sklearn)
        if problem is None and load_models:
            problem = _load(cfg.sklearn)[1]
        if problem is not None:
            found.append(Problem((*loc, "sklearn"), problem))
    if cfg.price is not None:
        p = cfg.price
        try:
            Price(p.input_per_1m_usd, p.output_per_1m_usd, p.per_request_usd)
        except ValueError as exc:
            found.append(_located(loc, str(exc)))
    return found


def _located(base: Loc, message: str) -> Problem:
    """A runtime constructor's 'field.path: what' message, placed under `base`."""
    field, sep, rest = message.partition(": ")
    if sep and re.fullmatch(r"[\w.]+", field):
        return Problem((*base, *field.split(".")), rest)
    return Problem(base, message)


def model_file_problem(path: str) -> str | None:
    """Without unpickling: the file exists, can be read and starts like a joblib.dump file."""
    file = Path(path)
    if not file.exists():
        return f"no such file {path}"
    if not file.is_file() or not os.access(file, os.R_OK):
        return f"cannot read {path}: not a file this user can read"
    with file.open("rb") as f:
        head = f.read(16)
    if not head:
        return f"{path} is empty; expected a model saved with joblib.dump"
    if not _JOBLIB_HEAD.match(head):
        return f"{path} is not a joblib file (it starts with {head[:8]!r}); expected a model saved with joblib.dump"
    return None


def load_estimator(path: str, where: str) -> Any:
    """The estimator in a joblib file, or ConfigError naming `where` (the gateway's way to load one)."""
    found = model_file_problem(path)
    estimator, problem = (None, found) if found else _load(path)
    if problem is not None:
        raise ConfigError([f"{where}: {problem}"])
    return estimator


def _load(path: str) -> tuple[Any, str | None]:
    try:
        import joblib

        estimator = joblib.load(path)
    except FileNotFoundError:
        return None, f"no such file {path}"
    except Exception as exc:  # noqa: BLE001 - unpickling can raise anything
        return None, f"cannot load {path}: {exc}"
    if not hasattr(estimator, "predict"):
        return None, f"{path} holds {type(estimator).__name__}, which has no predict()"
    return estimator, None


def auth_problems(auth: AuthConfig, store: StoreConfig) -> list[Problem]:
    """With keys on: the server secret the key store will use is strong enough and private."""
    if not auth.enabled:
        return []
    from aisre.store.keys import ApiKeyError, check_server_secret, postgres_secret_missing, read_or_create_secret_file

    value = os.environ.get(auth.key_secret_env)
    if not store.is_sqlite:
        if value is None:
            return [Problem(("auth", "key_secret_env"), postgres_secret_missing(auth.key_secret_env))]
        try:
            check_server_secret(value, f"${auth.key_secret_env}")
        except ApiKeyError as exc:
            return [Problem(("auth", "key_secret_env"), str(exc))]
        return []
    db = Path(store.path)
    secret_file = db.with_name(db.name + ".key-secret")  # as KeyStore.secret_file
    try:
        if value is not None:
            check_server_secret(value, f"${auth.key_secret_env}")
        elif secret_file.exists():  # then this only checks and reads; a missing file is created at start-up
            check_server_secret(read_or_create_secret_file(secret_file), str(secret_file))
    except (ApiKeyError, OSError) as exc:
        return [Problem(("auth", "key_secret_env"), str(exc))]
    return []


def state_problems(state: StateConfig, *, connect: bool = False) -> list[Problem]:
    """The Redis URL parses as the Redis client parses it; with `connect`, Redis answers a PING."""
    if state.url is None:
        return []
    from redis.connection import parse_url

    where = ("state", "url")
    try:
        parse_url(state.url)
    except ValueError as exc:
        return [Problem(where, f"not a usable Redis URL: {exc}")]
    db = state.url.split("?", 1)[0].split("://", 1)[1].partition("/")[2] if state.url.startswith("redis") else ""
    if db and not db.isdigit():
        return [Problem(where, f"the database after the host must be a number such as /0, got /{db}")]
    return _ping(state.url) if connect else []


def _ping(url: str) -> list[Problem]:
    import redis

    from aisre.gateway.shared_state import safe_url

    client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        return [Problem(("state", "url"), f"cannot reach Redis at {safe_url(url)}: {exc}")]
    finally:
        client.close()
    return []


def monitor_problems(index: int, job: MonitorJobConfig) -> list[Problem]:
    """A job's reference file must exist and load as a saved `Reference`; its drift methods must exist."""
    from aisre.monitor.drift.registry import ALL_METHODS

    loc: Loc = ("monitors", index)
    found = []
    if isinstance(job.reference, str):
        from aisre.errors import AisreError
        from aisre.monitor.profiles.reference import Reference

        path = Path(job.reference)
        if not path.is_file():
            found.append(
                Problem(
                    (*loc, "reference"),
                    f"reference file {path} does not exist (write one with `aisre monitor reference DATA -o FILE`)",
                )
            )
        else:
            try:
                saved = Reference.load(path)
            except (AisreError, OSError, ValueError) as exc:
                found.append(Problem((*loc, "reference"), f"cannot load reference {path}: {exc}"))
            else:
                found += [Problem((*loc, *key), text) for key, text in job.reference_field_problems(saved.samples)]
    names = [job.method] if isinstance(job.method, str) else list(job.method.values())
    unknown = sorted({n for n in names if n != "auto" and n not in ALL_METHODS})
    if unknown:
        known = ", ".join(sorted(ALL_METHODS))
        found.append(Problem((*loc, "method"), f"unknown drift methods {unknown}; expected auto or one of {known}"))
    return found
