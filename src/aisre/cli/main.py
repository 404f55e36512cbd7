"""The `aisre` command: thin; it parses, calls the library and prints."""

from __future__ import annotations

from typing import Annotated

import typer

from aisre._version import __version__
from aisre.cli import docs as docs_cli
from aisre.cli import experiments, log, monitor, slo
from aisre.cli import incidents as incidents_cli
from aisre.cli import keys as keys_cli
from aisre.cli import models as models_cli
from aisre.cli.common import DEFAULT_CONFIG, console, fail
from aisre.cli.dashboard import dashboard_command
from aisre.cli.demo import demo_command
from aisre.cli.drift import drift_command
from aisre.cli.drill import drill_command
from aisre.cli.evaluate import eval_command
from aisre.cli.marks import mark_command
from aisre.cli.serve import serve_command
from aisre.cli.watch import watch_command
from aisre.config import AisreConfig, load_config
from aisre.errors import ConfigError

app = typer.Typer(
    help="aisre: AI reliability engineering (serve, record, observe, judge, act).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(log.app, name="log")
app.add_typer(monitor.app, name="monitor")
app.add_typer(keys_cli.app, name="keys")
app.add_typer(slo.app, name="slo")
app.add_typer(models_cli.app, name="models")
app.add_typer(incidents_cli.app, name="incidents")
app.add_typer(experiments.ab_app, name="ab")
app.add_typer(experiments.canary_app, name="canary")
app.add_typer(experiments.shadow_app, name="shadow")
app.add_typer(docs_cli.app, name="docs")
slo.app.command("mark")(mark_command)  # in its own module: `aisre slo mark` writes, the rest of `slo` reads
app.command("dashboard")(dashboard_command)
app.command("demo")(demo_command)
app.command("drift")(drift_command)
app.command("drill")(drill_command)
app.command("eval")(eval_command)
app.command("serve")(serve_command)
app.command("watch")(watch_command)


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
    connect: Annotated[bool, typer.Option("--connect", help="Also check that Redis (state.url) answers.")] = False,
    load_models: Annotated[
        bool,
        typer.Option(
            "--load-models", help="Also unpickle the sklearn model files (runs their code: trusted files only)."
        ),
    ] = False,
) -> None:
    """Check aisre.yaml as `aisre serve` would at start-up (schema, files, environment variables, URLs, prices,
    limits, keys) without starting anything; print every problem with its key path (exit 2), or one line (exit 0)."""
    chosen = config or path
    try:
        cfg = load_config(chosen, check_runtime=True, connect=connect, load_models=load_models)
    except ConfigError as exc:
        raise fail(str(exc)) from None
    console.print(f"{chosen}: OK; {summary(cfg)}", highlight=False, soft_wrap=True)


def summary(cfg: AisreConfig) -> str:
    """One line: where records go and what is served."""
    versions = sum(len(m.versions) for m in cfg.models.values())
    metrics = cfg.telemetry.metrics
    parts = [
        f"store {cfg.store.url} ({cfg.store.durability})",
        f"{len(cfg.models)} model{'s' * (len(cfg.models) != 1)}, {versions} version{'s' * (versions != 1)}",
        "metrics " + ("off" if not metrics.enabled else "on" + (f" port {metrics.port}" if metrics.port else "")),
        "tracing " + ("on" if cfg.telemetry.tracing.enabled else "off"),
        "auth " + ("on" if cfg.auth.enabled else "off"),
        "state " + ("shared (Redis)" if cfg.state.url else "per process"),
        f"{len(cfg.slos)} SLO{'s' * (len(cfg.slos) != 1)}",
        f"{len(cfg.monitors)} monitor{'s' * (len(cfg.monitors) != 1)}",
    ]
    receivers = cfg.notifications.receivers
    if receivers:
        parts.append(f"{len(receivers)} alert receiver{'s' * (len(receivers) != 1)}")
    return ", ".join(parts)


def main() -> None:
    app()
