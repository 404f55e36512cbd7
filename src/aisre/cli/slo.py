"""`aisre slo ...`: service level objectives: `status`, `history` and `validate` judge them from the store
(the embedded evaluator); `rules` writes them as Prometheus rules (Sloth's shape)."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from aisre.cli.common import config_from, console, fail, find_config, parse_time

app = typer.Typer(help="Service level objectives: status, history, validation, Prometheus rules.", no_args_is_help=True)

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

    chosen, cfg = _config_with_slos(config)
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


AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Judge as of this time (ISO, UTC if no zone; or 2h = two hours ago). Default: now."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _config_with_slos(config: str | None) -> tuple[str, Any]:
    """The config found (-c, $AISRE_CONFIG, ./aisre.yaml) and loaded; exit 2 when it has no SLOs."""
    chosen = find_config(config)
    if chosen is None:
        raise fail("no config: pass -c aisre.yaml (or set AISRE_CONFIG)")
    cfg = config_from(chosen)
    if not cfg.slos:
        raise fail(f"{chosen}: no SLOs (add a slos: section)")
    return chosen, cfg


def _slos_and_store(config: str | None) -> tuple[str, Any, Any]:
    from aisre.cli.common import store_from

    chosen, cfg = _config_with_slos(config)
    return chosen, cfg, store_from(chosen, None)


def _clock(at: str | None) -> Any:
    from aisre.clock import SYSTEM_CLOCK, ManualClock

    when = parse_time(at, "--at")
    return SYSTEM_CLOCK if when is None else ManualClock(when)


def _number(value: float | None, fmt: str = "{:.4g}") -> str:
    return "-" if value is None else fmt.format(value)


@app.command("status")
def status_command(config: ConfigOpt = None, as_json: JsonOpt = False, at: AtOpt = None) -> None:
    """Every SLO judged from the store now: SLI, objective, budget remaining, burn rates, alert states."""
    from rich.table import Table

    from aisre.slo.evaluate import STATUS_WINDOWS, evaluate

    _, cfg, store = _slos_and_store(config)
    reports = evaluate(cfg.slos, store, _clock(at))
    if as_json:
        sys.stdout.write(json.dumps([r.to_dict() for r in reports], indent=2) + "\n")
        return
    table = Table(title="SLOs")
    for column in ("SLO", "model", "SLI now", "objective", "budget left", *(f"burn {w}" for w in STATUS_WINDOWS)):
        table.add_column(column, justify="left" if column in ("SLO", "model") else "right")
    table.add_column("page")
    table.add_column("ticket")
    notes = []
    for r in reports:
        if r.problem is not None:
            notes.append(f"{r.name}: {r.problem}")
        remaining = None if r.budget is None or r.budget.total == 0 else r.budget.remaining
        table.add_row(
            r.name,
            r.model,
            _number(r.sli, "{:.4%}"),
            f"{r.objective:.4%}",
            _number(remaining, "{:.1%}"),
            *(_number(r.burn_rates.get(w), "{:.2f}x") for w in STATUS_WINDOWS),
            _state(r.alerts.get("page")),
            _state(r.alerts.get("ticket")),
        )
    console.print(table)
    for note in notes:
        console.print(note, highlight=False, soft_wrap=True, markup=False)


def _state(state: str | None) -> str:
    colour = {"firing": "bold red", "pending": "yellow", "resolved": "green"}.get(state or "")
    return "-" if state is None else (f"[{colour}]{state}[/]" if colour else state)


@app.command("validate")
def validate_command(config: ConfigOpt = None) -> None:
    """Check that every SLO parses, can be read from the store and generates Prometheus rules;
    exit 2 naming every problem."""
    from aisre.slo.events import where_clause
    from aisre.slo.rules import rules

    chosen, cfg = _config_with_slos(config)  # a spec that does not parse exits 2 here, every problem named
    problems = []
    for slo in cfg.slos:
        for check in (lambda s=slo: rules([s]), lambda s=slo: where_clause(s)):
            try:
                check()
            except ValueError as exc:
                problems.append(f"{chosen}: slos.{slo.name}: {exc}")
    for problem in problems:
        fail(problem)
    if problems:
        raise typer.Exit(2)
    later = [s.name for s in cfg.slos if s.sli.kind in ("freshness", "fairness")]
    console.print(f"{chosen}: {len(cfg.slos)} SLOs valid", highlight=False, soft_wrap=True)
    if later:
        console.print(f"not yet evaluable by the embedded evaluator: {', '.join(later)}", highlight=False)


@app.command("history")
def history_command(
    name: Annotated[str, typer.Argument(help="The SLO's name.")],
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    step: Annotated[str, typer.Option("--step", help="Time between points (e.g. 1h, 1d).")] = "1d",
    at: AtOpt = None,
) -> None:
    """The SLO's remaining error budget at each step over its period (a burn-down), as bars or JSON."""
    from aisre.config.slo import parse_duration
    from aisre.slo.evaluate import history
    from aisre.slo.events import NotEvaluable

    chosen, cfg, store = _slos_and_store(config)
    by_name = {s.name: s for s in cfg.slos}
    if name not in by_name:
        raise fail(f"no SLO named {name!r} in {chosen} (SLOs: {', '.join(by_name)})")
    try:
        step_s = parse_duration(step)
    except ValueError as exc:
        raise fail(f"--step: {exc}") from None
    slo = by_name[name]
    if step_s > slo.period_s:
        raise fail(f"--step: {step} is longer than the SLO's period ({slo.period})")
    try:
        points = history(slo, store, _clock(at).now(), step_s)
    except (NotEvaluable, ValueError) as exc:
        raise fail(f"{name}: {exc}") from None
    if as_json:
        rows = [{"at": t, "budget_remaining": v} for t, v in points]
        sys.stdout.write(json.dumps({"slo": name, "step_s": step_s, "points": rows}, indent=2) + "\n")
        return
    for t, v in points:
        when = dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M")
        if v is None:
            console.print(f"{when}  {'no events':>9}", highlight=False)
            continue
        bar = "#" * int(round(max(min(v, 1.0), 0.0) * 40))
        console.print(f"{when}  {v:>9.1%}  {bar}{'  overspent' if v < 0 else ''}", highlight=False, markup=False)
