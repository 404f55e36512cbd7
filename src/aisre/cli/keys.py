"""`aisre keys ...`: create, list and revoke the gateway's API keys."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

import typer
from rich.table import Table

from aisre.cli.common import config_from, console, fail, find_config, store_from
from aisre.config import AisreConfig
from aisre.errors import AisreError
from aisre.store import open_store
from aisre.store.expiry import parse_expiry
from aisre.store.keys import (
    BUDGET_PERIODS,
    InvalidKeyOptionError,
    KeyNotFoundError,
    KeyRecord,
    KeyStore,
)

app = typer.Typer(help="Create, list and revoke API keys (only a keyed hash is stored).", no_args_is_help=True)

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Path to aisre.yaml.")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="Store URL, e.g. sqlite:///aisre.db.")]

# KeyStore.create's argument -> the option that sets it, so library errors name the option.
_OPTION = {
    "name": "--name",
    "models": "--models",
    "rpm": "--rpm",
    "tpm": "--tpm",
    "max_concurrent": "--max-concurrent",
    "budget_usd": "--budget-usd",
    "budget_period": "--budget-period",
    "expires_at": "--expires",
}


def _expires(text: str | None) -> float | None:
    """--expires in any form `parse_expiry` accepts (the admin API's `expires` accepts the same)."""
    if text is None:
        return None
    try:
        return parse_expiry(text, time.time(), "--expires")
    except InvalidKeyOptionError as exc:
        raise fail(str(exc)) from None


def _models(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [m.strip() for m in text.split(",")]
    if not all(names):
        raise fail(f"--models: expected comma-separated model names like gpt-4o,llama-3, got {text!r}")
    return names


def _when(ts: float | None) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _budget(r: KeyRecord) -> str:
    if r.budget_usd is None:
        return "-"
    return f"${r.budget_usd:g}" + (f" {r.budget_period}" if r.budget_period else " total")


def _limits(r: KeyRecord) -> list[str]:
    return [
        "all" if r.models is None else ",".join(r.models),
        *("-" if v is None else f"{v:,}" for v in (r.rpm, r.tpm, r.max_concurrent)),
        _budget(r),
    ]


def _open_for_create(config: str | None, store: str | None) -> tuple[KeyStore, set[str] | None]:
    """The key store (its database created if nothing was recorded yet) and, when a config file is given
    or found, the models it serves (a key may only name those) and its server-secret variable."""
    path = find_config(config)
    cfg = config_from(path) if path is not None else None
    url = store or (cfg or AisreConfig()).store.url
    secret_env = (cfg or AisreConfig()).auth.key_secret_env
    try:
        keys = KeyStore(open_store(url), secret_env=secret_env)
    except AisreError as exc:
        raise fail(f"--store: {exc}" if store else str(exc)) from None
    return keys, None if cfg is None else set(cfg.models)


def _open(config: str | None, store: str | None) -> KeyStore:
    try:
        return KeyStore(store_from(config, store))
    except AisreError as exc:
        raise fail(str(exc)) from None


@app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="A unique name, e.g. the team or service using the key.")],
    models: Annotated[str | None, typer.Option("--models", help="Allowed models, a,b (default all).")] = None,
    rpm: Annotated[int | None, typer.Option("--rpm", help="Requests per minute.")] = None,
    tpm: Annotated[int | None, typer.Option("--tpm", help="Tokens per minute.")] = None,
    max_concurrent: Annotated[int | None, typer.Option("--max-concurrent", help="Requests in flight.")] = None,
    budget_usd: Annotated[float | None, typer.Option("--budget-usd", help="Spend limit in US dollars.")] = None,
    budget_period: Annotated[
        str | None, typer.Option("--budget-period", help="daily or monthly (default: the budget never resets).")
    ] = None,
    expires: Annotated[str | None, typer.Option("--expires", help="30d, 12h, or an ISO date/time (UTC).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the secret (for scripts).")] = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Create a key and print its secret, once."""
    if budget_period is not None and budget_period not in BUDGET_PERIODS:
        raise fail(f"--budget-period: expected one of {', '.join(BUDGET_PERIODS)}, got {budget_period!r}")
    if budget_period is not None and budget_usd is None:
        raise fail(f"--budget-period: expected --budget-usd too (the period resets that budget), got {budget_period!r}")
    allowed, expires_at = _models(models), _expires(expires)
    keys, known = _open_for_create(config, store)
    try:
        record, secret = keys.create(
            name, allowed, rpm, tpm, max_concurrent, budget_usd, budget_period, expires_at, known_models=known
        )
    except InvalidKeyOptionError as exc:
        raise fail(f"{_OPTION.get(exc.field, exc.field)}: expected {exc.expected}, got {exc.got!r}") from None
    except AisreError as exc:
        raise fail(str(exc)) from None
    if quiet:
        console.out(secret, highlight=False)
        return
    table = Table(title=f"created API key {record.id} ({record.name})")
    for column in ("models", "rpm", "tpm", "concurrent", "budget", "expires (UTC)"):
        table.add_column(column)
    table.add_row(*_limits(record), _when(record.expires_at))
    console.print(table)
    console.print(
        f"hashed with the server secret from {keys.server_secret_source}; every gateway that "
        "verifies this key must use the same one",
        highlight=False,
    )
    console.print("[bold]secret (store it now; it cannot be shown again):[/]")
    console.out(secret, highlight=False)


@app.command("list")
def list_keys(
    all_keys: Annotated[bool, typer.Option("--all", "-a", help="Include revoked keys.")] = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """List keys and their limits (never their secrets)."""
    keys = _open(config, store)
    records = keys.list(include_revoked=all_keys)
    if not records:
        console.print("no API keys (create one with: aisre keys create --name NAME)")
        return
    now = time.time()
    table = Table(title=f"API keys in {keys.store.path}")
    for column in (
        "id",
        "name",
        "status",
        "models",
        "rpm",
        "tpm",
        "concurrent",
        "budget",
        "expires (UTC)",
        "created (UTC)",
    ):
        table.add_column(column, no_wrap=column in ("id", "status"))
    for r in records:
        status = r.status(now)
        style = {"active": "green", "expired": "yellow", "revoked": "red"}[status]
        table.add_row(r.id, r.name, f"[{style}]{status}[/]", *_limits(r), _when(r.expires_at), _when(r.created_at))
    console.print(table)


@app.command()
def revoke(
    id_or_name: Annotated[str, typer.Argument(metavar="ID_OR_NAME", help="A key id or an active key name.")],
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Revoke a key; every gateway process refuses it from its next request."""
    keys = _open(config, store)
    started = time.time()
    try:
        record = keys.revoke(id_or_name)
    except KeyNotFoundError as exc:
        raise fail(f"ID_OR_NAME: {exc} (see aisre keys list --all)") from None
    if record.revoked_at is not None and record.revoked_at < started:
        console.print(f"{record.id} ({record.name}) was already revoked at {_when(record.revoked_at)} UTC")
        return
    console.print(f"revoked {record.id} ({record.name}); it is refused from the next request on")
