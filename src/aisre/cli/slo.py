"""`aisre slo ...`: service level objectives; `rules` writes them as Prometheus rules (Sloth's shape)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from aisre.cli.common import config_from, console, fail, find_config

app = typer.Typer(help="Service level objectives: Prometheus rules.", no_args_is_help=True)

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Path to aisre.yaml (its slos: section).")]


@app.callback()
def slo() -> None:
    """Service level objectives (the slos: section of aisre.yaml)."""


@app.command("rules")
def rules_command(
    config: ConfigOpt = None,
    output: Annotated[
        str | None, typer.Option("--output", "-o", help="Write the rule file here (default: standard output).")
    ] = None,
    service: Annotated[str, typer.Option("--service", help="The sloth_service label (and sloth_id prefix).")] = "aisre",
) -> None:
    """Write Prometheus recording and alerting rules for every SLO, with Sloth's names and labels, so
    Sloth's Grafana dashboards work on them (check them with `promtool check rules`)."""
    from aisre.slo.rules import dump, rules  # imported on use: the CLI starts fast

    chosen = find_config(config)
    if chosen is None:
        raise fail("no config: pass -c aisre.yaml (or set AISRE_CONFIG)")
    cfg = config_from(chosen)
    if not cfg.slos:
        raise fail(f"{chosen}: no SLOs (add a slos: section)")
    try:
        text = dump(rules(cfg.slos, service=service))
    except ValueError as exc:
        raise fail(f"{chosen}: {exc}") from None
    if output is None:
        sys.stdout.write(text)
        return
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write --output {output}: {exc.strerror or exc}") from None
    console.print(
        f"{output}: {len(cfg.slos)} SLOs, {text.count('- record:')} recording and "
        f"{text.count('- alert:')} alerting rules",
        highlight=False,
        soft_wrap=True,
    )
