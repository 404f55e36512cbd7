"""Shared CLI plumbing: finding the config and store, parsing times, printing errors."""

from __future__ import annotations

import datetime as dt
import os
import re
import sys
from pathlib import Path
from typing import cast

import typer
from rich.console import Console
from rich.markup import escape

from aisre.config import AisreConfig, load_config
from aisre.errors import AisreError
from aisre.store import SQLiteStore, open_store

# Wide tables when piped (rich would otherwise assume 80 columns).
console = Console(width=None if sys.stdout.isatty() else 200)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

DEFAULT_CONFIG = "aisre.yaml"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}


def fail(message: str, code: int = 2) -> typer.Exit:
    # The message is text, not markup: a problem may quote '[...]' (a URL pattern, a list of names).
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)  # one line per problem
    return typer.Exit(code)


def find_config(path: str | None) -> str | None:
    """The config file to use: `path`, else $AISRE_CONFIG, else ./aisre.yaml if present, else None."""
    chosen = path or os.environ.get("AISRE_CONFIG")
    if chosen is None and Path(DEFAULT_CONFIG).exists():
        chosen = DEFAULT_CONFIG
    return chosen


def config_from(path: str | None) -> AisreConfig:
    """The config at `path`, else $AISRE_CONFIG, else ./aisre.yaml if present, else defaults."""
    chosen = find_config(path)
    if chosen is None:
        return AisreConfig()
    try:
        return load_config(chosen)
    except AisreError as exc:
        raise fail(str(exc)) from None


def store_from(config: str | None, store: str | None) -> SQLiteStore:
    url = store or config_from(config).store.url
    path = url.removeprefix("sqlite:///")
    if url.startswith("sqlite:///") and not Path(path).exists():
        raise fail(f"no store at {path} (nothing recorded yet, or pass --store / -c)")
    try:
        # typed SQLiteStore for its readers; a postgresql:// URL gives a PostgresStore serving the same reads,
        # and whatever needs SQLite raises a StoreError naming issue #12 when set up (docs/store-postgres.md)
        return cast(SQLiteStore, open_store(url))
    except AisreError as exc:
        raise fail(str(exc)) from None


def parse_time(text: str | None, option: str) -> float | None:
    """'15m', '2h', '7d' (ago) or an ISO date/time (UTC if no zone) -> epoch seconds."""
    if text is None:
        return None
    match = _DURATION.match(text.strip())
    if match:
        return dt.datetime.now(dt.UTC).timestamp() - float(match[1]) * _UNIT_S[match[2]]
    try:
        stamp = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise fail(
            f"{option}: expected a duration like 15m, 2h, 7d or an ISO time like 2026-11-27T12:00, got {text!r}"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return stamp.timestamp()
