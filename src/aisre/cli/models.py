"""`aisre models ...`: the model registry (register, promote, roll back, and who changed what, when, why)."""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from aisre.cli.common import config_from, console, fail, find_config, parse_time
from aisre.config import AisreConfig
from aisre.errors import AisreError
from aisre.respond.promotion import configured_registry, evaluation_summary
from aisre.respond.registry import STATUSES, Registry
from aisre.store import open_store
from aisre.store.registry import HistoryEntry, ModelVersion

app = typer.Typer(
    help="The model registry: versions, their status, the stable pointer and history.", no_args_is_help=True
)

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Path to aisre.yaml.")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="Store URL, e.g. sqlite:///aisre.db.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why: kept in the history.")]
# Library parameter -> the option or argument that sets it, so errors name what the user typed.
_OPTION = {
    "to": "--to",
    "model": "MODEL",
    "version": "VERSION",
    "endpoint": "--endpoint",
    "artifact": "--artifact",
    "reference": "--reference",
    "trained_at": "--trained-at",
    "metadata": "--metadata",
    "endpoint, artifact": "--endpoint, --artifact",
}
_STATUS_STYLE = {"candidate": "cyan", "shadow": "magenta", "canary": "yellow", "stable": "green", "retired": "dim"}


def actor() -> str:
    """Who runs the command: `cli:<user>` (the login name; `$AISRE_ACTOR` overrides it, e.g. in CI)."""
    explicit = os.environ.get("AISRE_ACTOR")
    if explicit:
        return explicit
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def open_registry(config: str | None, store: str | None, create: bool = False) -> Registry:
    """The registry as the config sets it up (SLO freeze, evaluation gate); `create` makes a missing store."""
    path = find_config(config)
    cfg = config_from(path) if path is not None else AisreConfig()
    url = store or cfg.store.url
    local = url.removeprefix("sqlite:///")
    if not create and url.startswith("sqlite:///") and not os.path.exists(local):
        raise fail(
            f"no store at {local} (nothing registered yet: aisre models register MODEL VERSION, or pass --store)"
        )
    try:
        return configured_registry(cfg, open_store(url))  # sqlite:/// or postgresql://
    except AisreError as exc:
        raise fail(f"--store: {exc}" if store else str(exc)) from None


def library_error(exc: AisreError) -> typer.Exit:
    """A library error retold with the CLI's option names ("to: ..." -> "--to: ...")."""
    message = str(exc)
    head, sep, rest = message.partition(":")
    return fail(f"{_OPTION[head]}{sep}{rest}" if sep and head in _OPTION else message)


def when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def _status(status: str) -> str:
    return f"[{_STATUS_STYLE.get(status, 'white')}]{status}[/]"


def _versions_table(title: str, versions: list[ModelVersion]) -> Table:
    table = Table(title=title)
    for column in ("model", "version", "status", "endpoint / artifact", "trained (UTC)", "updated (UTC)"):
        table.add_column(column, no_wrap=column in ("version", "status"))
    for v in versions:
        where = v.endpoint or v.artifact or "-"
        table.add_row(v.model, v.version, _status(v.status), where, when(v.trained_at), when(v.updated_at))
    return table


def _history_table(title: str, history: list[HistoryEntry]) -> Table:
    table = Table(title=title)
    for column in ("#", "time (UTC)", "version", "action", "from -> to", "stable", "actor", "reason"):
        table.add_column(column, no_wrap=column in ("#", "version", "action"))
    for h in history:
        stable = h.stable_after or "-"
        if h.stable_before != h.stable_after:
            stable = f"{h.stable_before or '-'} -> {h.stable_after or '-'}"
        table.add_row(
            str(h.seq),
            when(h.at),
            h.version,
            h.action,
            f"{h.from_status or '-'} -> {h.to_status}",
            stable,
            h.actor,
            h.reason or "",
        )
    return table


@app.command("list")
def list_command(
    model: Annotated[str | None, typer.Option("--model", help="Only this model.")] = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every registered version and its status."""
    registry = open_registry(config, store)
    versions = registry.list(model)
    if as_json:
        print_json([v.to_dict() for v in versions])
        return
    if not versions:
        console.print("no model versions registered (register one with: aisre models register MODEL VERSION)")
        return
    console.print(_versions_table(f"model versions in {registry.store.path}", versions))


@app.command("show")
def show_command(
    model: Annotated[str, typer.Argument(help="The model.")],
    version: Annotated[str | None, typer.Argument(help="One version (default: all of the model's).")] = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A model (its versions, stable version, recent history) or one version with its metadata and history."""
    registry = open_registry(config, store)
    try:
        versions = [registry.get(model, version)] if version is not None else registry.list(model)
        if not versions:
            registry.history(model)  # raises the "not registered" error that names the registered models
        history = registry.history(model, version)
    except AisreError as exc:
        raise library_error(exc) from None
    stable = registry.stable(model)
    evaluations = {v.version: evaluation_summary(registry.store, model, v.version) for v in versions}
    if as_json:
        print_json(
            {
                "model": model,
                "stable": stable.version if stable else None,
                "versions": [{**v.to_dict(), "evaluation": evaluations[v.version]} for v in versions],
                "history": [h.to_dict() for h in history],
            }
        )
        return
    console.print(f"[bold]{model}[/]: stable version {stable.version if stable else '(none)'}", highlight=False)
    console.print(_versions_table(f"{model} {version}" if version else f"{model} versions", versions))
    for name, summary in evaluations.items():
        if summary is not None:
            verdict = "passed" if summary["passed"] else "failed (" + ", ".join(summary["failed"]) + ")"
            console.print(f"{name}: offline evaluation #{summary['seq']} {verdict} at {when(summary['ts'])}")
    if version is not None:
        console.print("reference: " + (versions[0].reference or "-"), highlight=False)
        console.print("metadata: " + json.dumps(versions[0].metadata, sort_keys=True), highlight=False)
    shown = history[-20:]
    console.print(_history_table(f"history ({len(shown)} of {len(history)} changes, oldest first)", shown))


@app.command("register")
def register_command(
    model: Annotated[str, typer.Argument(help="The model.")],
    version: Annotated[str, typer.Argument(help="The new version's name, e.g. v3 or 2026-12-01.")],
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Where it is served (http(s) URL).")] = None,
    artifact: Annotated[str | None, typer.Option("--artifact", help="Where it is stored (path or URL).")] = None,
    trained_at: Annotated[
        str | None,
        typer.Option("--trained-at", help="When it was trained: ISO time (UTC if no zone), Unix seconds, or 3d (ago)."),
    ] = None,
    reference: Annotated[str | None, typer.Option("--reference", help="Its monitoring reference data set.")] = None,
    metadata: Annotated[str | None, typer.Option("--metadata", help='A JSON object, e.g. {"auc": 0.91}.')] = None,
    reason: ReasonOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a new version as a candidate (and record its training time as a freshness mark)."""
    trained: float | None = None
    if trained_at is not None:
        try:
            trained = float(trained_at)
        except ValueError:
            trained = parse_time(trained_at, "--trained-at")
    meta = None
    if metadata is not None:
        try:
            meta = json.loads(metadata)
        except json.JSONDecodeError as exc:
            raise fail(
                f'--metadata: expected a JSON object like {{"auc": 0.91}}, got {metadata!r} ({exc.msg})'
            ) from None
    registry = open_registry(config, store, create=True)
    try:
        entry = registry.register(
            model,
            version,
            actor=actor(),
            endpoint=endpoint,
            artifact=artifact,
            trained_at=trained,
            reference=reference,
            metadata=meta,
            reason=reason,
        )
    except AisreError as exc:
        raise library_error(exc) from None
    if as_json:
        print_json(entry.to_dict())
        return
    console.print(f"registered {model} {version} as a candidate", highlight=False)


@app.command("promote")
def promote_command(
    model: Annotated[str, typer.Argument(help="The model.")],
    version: Annotated[str, typer.Argument(help="The version to move.")],
    to: Annotated[str, typer.Option("--to", help=f"The new status: {', '.join(STATUSES)}.")],
    reason: ReasonOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Move a version to a new status (legal moves only; refused while an SLO freezes promotions or the
    offline-evaluation gate has not passed). Running gateways follow within a few seconds."""
    if to not in STATUSES:
        raise fail(f"--to: expected one of {', '.join(STATUSES)}, got {to!r}")
    registry = open_registry(config, store)
    try:
        before = registry.stable(model)
        entry = registry.promote(model, version, to, actor=actor(), reason=reason)
    except AisreError as exc:
        raise library_error(exc) from None
    if as_json:
        print_json(entry.to_dict())
        return
    note = f" ({before.version} is retired and stays a rollback target)" if to == "stable" and before else ""
    console.print(f"{model} {version} is now {to}{note}", highlight=False)


@app.command("rollback")
def rollback_command(
    model: Annotated[str, typer.Argument(help="The model.")],
    reason: ReasonOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Retire the model's canaries (the stable version keeps all traffic) or, with none, go back to the
    previous stable version."""
    registry = open_registry(config, store)
    try:
        result = registry.rollback(model, actor=actor(), reason=reason)
    except AisreError as exc:
        raise library_error(exc) from None
    if as_json:
        print_json(result.to_dict())
        return
    gone = ", ".join(result.rolled_back)
    if result.kind == "canary":
        console.print(f"{model}: rolled back canary {gone}; {result.stable or '(no stable)'} keeps all traffic")
    else:
        console.print(f"{model}: rolled back from {gone} to the previous stable version {result.stable}")


@app.command("freeze")
def freeze_command(
    model: Annotated[str, typer.Argument(help="The model.")],
    reason: ReasonOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Refuse promotions of the model to canary or stable until `aisre models unfreeze` (as a playbook's
    `freeze_promotions` does)."""
    _set_freeze(model, True, reason, config, store)


@app.command("unfreeze")
def unfreeze_command(
    model: Annotated[str, typer.Argument(help="The model.")],
    reason: ReasonOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Lift every manual or playbook freeze of the model (an SLO whose budget is spent still freezes it)."""
    _set_freeze(model, False, reason, config, store)


def _set_freeze(model: str, frozen: bool, reason: str | None, config: str | None, store: str | None) -> None:
    from aisre.records import Signal
    from aisre.respond.playbooks import FREEZE_SIGNAL

    registry = open_registry(config, store)
    by = actor() if frozen else "*"
    labels = {"by": by, **({"reason": reason} if reason else {})}
    signal = Signal(model, "*", FREEZE_SIGNAL, float(frozen), None, frozen, labels)
    registry.store.write_signals([signal], registry.clock.now())
    left = [] if frozen else (registry.frozen_by(model, "*") if registry.frozen_by is not None else [])
    if frozen:
        console.print(f"{model}: promotions frozen by {by}", highlight=False)
    elif left:
        console.print(
            f"{model}: manual and playbook freezes lifted; still frozen by {', '.join(left)}", highlight=False
        )
    else:
        console.print(f"{model}: promotions allowed", highlight=False)


@app.command("retire")
def retire_command(
    model: Annotated[str, typer.Argument(help="The model.")],
    version: Annotated[str, typer.Argument(help="The version to retire.")],
    reason: ReasonOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Retire a version (not the stable one); a retired version is no longer a rollback target."""
    registry = open_registry(config, store)
    try:
        registry.retire(model, version, actor=actor(), reason=reason)
    except AisreError as exc:
        raise library_error(exc) from None
    console.print(f"{model} {version} is retired", highlight=False)


@app.command("history")
def history_command(
    model: Annotated[str, typer.Argument(help="The model.")],
    version: Annotated[str | None, typer.Option("--version", help="Only this version's changes.")] = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every change to a model's versions, oldest first: who, when, why, from -> to, and the stable pointer."""
    registry = open_registry(config, store)
    try:
        if version is not None:
            registry.get(model, version)  # an unknown version is a mistake, not an empty history
        history = registry.history(model, version)
    except AisreError as exc:
        raise library_error(exc) from None
    if as_json:
        print_json([h.to_dict() for h in history])
        return
    console.print(_history_table(f"{model}: {len(history)} changes, oldest first", history))
