"""`aisre slo ...`: service level objectives: `status`, `history` and `validate` judge them from the store
(the embedded evaluator); `rules` writes them as Prometheus rules (Sloth's shape), from aisre.yaml or an
OpenSLO file; `export` and `import` translate them to and from OpenSLO v1."""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from aisre.cli.common import config_from, console, err_console, fail, find_config, parse_time

app = typer.Typer(
    help="Service level objectives: status, history, validation, Prometheus rules, OpenSLO.", no_args_is_help=True
)

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Path to aisre.yaml (its slos: section).")]


@app.callback()
def slo() -> None:
    """Service level objectives (the slos: section of aisre.yaml)."""


OutputOpt = Annotated[
    str | None, typer.Option("--output", "-o", help="Write the file here (default: standard output).")
]


@app.command("rules")
def rules_command(
    config: ConfigOpt = None,
    output: OutputOpt = None,
    service: Annotated[str, typer.Option("--service", help="The sloth_service label (and sloth_id prefix).")] = "aisre",
    openslo: Annotated[
        str | None,
        typer.Option(
            "--openslo",
            help="Read the SLOs from this OpenSLO file (openslo/v1alpha as Sloth reads it, or openslo/v1) "
            "instead of aisre.yaml; the sloth_service label is each SLO's spec.service.",
        ),
    ] = None,
    label: Annotated[
        list[str] | None,
        typer.Option("--label", "-l", help="KEY=VALUE added to every recording rule (Sloth's --extra-labels)."),
    ] = None,
) -> None:
    """Write Prometheus recording and alerting rules for every SLO, with Sloth's names and labels, so
    Sloth's Grafana dashboards work on them (check them with `promtool check rules`)."""
    from aisre.errors import ConfigError
    from aisre.slo.rules import dump, rules  # imported on use: the CLI starts fast

    labels = _labels(label or [])
    if openslo is not None:
        if config is not None:
            raise fail("--openslo and --config are exclusive: the SLOs come from one of them")
        if service != "aisre":
            raise fail("--service applies to --config: an OpenSLO SLO's sloth_service is its spec.service")
        from aisre.slo.openslo import openslo_rules, read_openslo

        try:
            slos = read_openslo(openslo)
            text = dump(openslo_rules(slos, labels))
        except ConfigError as exc:
            _fail_problems(exc)
        count = len(slos)
    else:
        chosen, cfg = _config_with_slos(config)
        try:
            text = dump(rules(cfg.slos, service=service, labels=labels))
        except ValueError as exc:
            raise fail(f"{chosen}: {exc}") from None
        count = len(cfg.slos)
    if not _write(text, output):
        return
    console.print(
        f"{output}: {count} SLOs, {text.count('- record:')} recording and {text.count('- alert:')} alerting rules",
        highlight=False,
        soft_wrap=True,
    )


@app.command("export")
def export_command(
    config: ConfigOpt = None,
    output: OutputOpt = None,
    openslo: Annotated[bool, typer.Option("--openslo", help="As OpenSLO v1 documents (the only format).")] = False,
    service: Annotated[str, typer.Option("--service", help="The SLOs' spec.service (and sloth_service).")] = "aisre",
) -> None:
    """Write the SLOs as OpenSLO v1: an SLI (bad/total PromQL, exactly the queries of `aisre slo rules`), an
    SLO, and an AlertPolicy + AlertCondition per burn-rate alert (see docs/openslo.md)."""
    from aisre.slo.openslo_aisre import dump_documents, export_openslo

    if not openslo:
        raise fail("choose the format: --openslo (OpenSLO v1, the only one)")
    chosen, cfg = _config_with_slos(config)
    try:
        text = dump_documents(export_openslo(cfg.slos, service=service))
    except ValueError as exc:
        raise fail(f"{chosen}: {exc}") from None
    if _write(text, output):
        console.print(f"{output}: {len(cfg.slos)} SLOs as OpenSLO v1", highlight=False, soft_wrap=True)


@app.command("import")
def import_command(
    file: Annotated[str, typer.Argument(help="An OpenSLO file (openslo/v1 or openslo/v1alpha).")],
    output: OutputOpt = None,
) -> None:
    """Print (or write) the aisre `slos:` section for the OpenSLO SLOs that are aisre SLOs (queries on
    aisre's metrics, e.g. from `aisre slo export`); the others are named, with why: their PromQL can be
    served by `aisre slo rules --openslo FILE`. Exit 2 when none is an aisre SLO."""
    from aisre.errors import ConfigError
    from aisre.slo.openslo import read_openslo
    from aisre.slo.openslo_aisre import import_slos, slos_yaml

    try:
        slos, notes = import_slos(read_openslo(file))
    except ConfigError as exc:
        _fail_problems(exc)
    for note in notes:
        err_console.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)
    if not slos:
        raise fail(f"{file}: no SLO maps onto aisre's SLIs (see the notes above)")
    if _write(slos_yaml(slos), output):
        console.print(f"{output}: {len(slos)} SLOs (aisre slos: section)", highlight=False, soft_wrap=True)


def _labels(pairs: list[str]) -> dict[str, str]:
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", key):
            raise fail(f"--label: expected KEY=VALUE with a Prometheus label name as KEY, got {pair!r}")
        labels[key] = value
    return labels


def _write(text: str, output: str | None) -> bool:
    """Write to `output` (True) or to standard output (False)."""
    if output is None:
        sys.stdout.write(text)
        return False
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write --output {output}: {exc.strerror or exc}") from None
    return True


def _fail_problems(exc: Any) -> NoReturn:
    """Exit 2 with one line per problem of a ConfigError."""
    for problem in exc.problems:
        fail(f"{exc.source}: {problem}")
    raise typer.Exit(2)


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
        if r.freeze_promotions:
            notes.append(f"{r.name}: budget spent; its policy freezes promotions of {r.model}")
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
    console.print(f"{chosen}: {len(cfg.slos)} SLOs valid", highlight=False, soft_wrap=True)
    for slo in cfg.slos:
        unit = "events" if slo.budgeting_mode == "events" else f"{slo.timeslice} slices"
        console.print(f"  {slo.name}: {slo.sli.kind}, {unit}, judged from {_judged_from(slo)}", highlight=False)


def _judged_from(slo: Any) -> str:
    """Where the embedded evaluator reads this SLO's SLI (what must exist for it to be judged)."""
    kind = slo.sli.kind
    if kind in ("drift", "llm_quality", "estimated_quality"):
        return "the monitoring jobs' signals"
    if kind == "freshness":
        return "model_trained_at / reference_refreshed_at marks"
    if kind in ("correctness", "quality", "fairness"):
        return "records with their labels" if kind != "fairness" else "records (and labels where the metric needs them)"
    return "records"


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
