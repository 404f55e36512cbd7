"""The `aisre` command: thin; it parses, calls the library and prints."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from aisre._version import __version__
from aisre.cli import keys as keys_cli
from aisre.cli import log, monitor
from aisre.cli.common import DEFAULT_CONFIG, console, fail
from aisre.cli.drift import drift_command
from aisre.cli.serve import serve_command
from aisre.config import load_config
from aisre.errors import ConfigError

app = typer.Typer(
    help="aisre: AI reliability engineering (serve, record, observe, judge, act).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(log.app, name="log")
app.add_typer(monitor.app, name="monitor")
app.add_typer(keys_cli.app, name="keys")
app.command("drift")(drift_command)
app.command("serve")(serve_command)


def _version(value: bool) -> None:
    if value:
        console.print(f"aisre {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """aisre: AI reliability engineering."""


@app.command("check-config")
def check_config(
    path: Annotated[str, typer.Argument(help="The config file.")] = DEFAULT_CONFIG,
    config: Annotated[str | None, typer.Option("--config", "-c", help="The config file.")] = None,
) -> None:
    """Validate aisre.yaml; print every problem with its key path, or a summary."""
    chosen = config or path
    try:
        cfg = load_config(chosen)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    table = Table(title=f"{chosen}: OK", show_header=False)
    table.add_row("store", f"{cfg.store.url} ({cfg.store.durability}, overflow={cfg.store.overflow})")
    retention = cfg.store.retention_days
    table.add_row("retention", "forever" if retention is None else f"{retention:g} days")
    m = cfg.telemetry.metrics
    table.add_row(
        "metrics",
        "off"
        if not m.enabled
        else (f"http://{m.host}:{m.port}/metrics" if m.port is not None else "on (no own endpoint)"),
    )
    t = cfg.telemetry.tracing
    table.add_row("tracing", "off" if not t.enabled else (t.otlp_endpoint or "on (no exporter)"))
    table.add_row("jsonl log", cfg.log.jsonl or "off")
    r = cfg.redaction
    table.add_row("redaction", f"drop {r.drop or '-'}, hash {r.hash or '-'}")
    console.print(table)


def main() -> None:
    app()
