"""`aisre ab report`, `aisre canary analyze`, `aisre shadow report`: experiment verdicts from the store.

Thin: each command reads the window, calls aisre.respond (ab_report, analyze_canary_in_store,
shadow_report) and prints a rich table or, with --json, the report as JSON.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer
from rich.table import Table

from aisre.cli.common import config_from, console, fail, store_from
from aisre.cli.options import window
from aisre.errors import AisreError

ab_app = typer.Typer(help="A/B tests: two versions compared with significance and effect sizes.", no_args_is_help=True)
canary_app = typer.Typer(help="Canary analysis: promote, hold or rollback.", no_args_is_help=True)
shadow_app = typer.Typer(help="Shadow evaluation: the shadow's answers against the primary's.", no_args_is_help=True)

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Path to aisre.yaml.")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="Store URL, e.g. sqlite:///aisre.db.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="Window start: 15m, 2h, 7d, or an ISO time.")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Window end (exclusive): 15m, 2h, 7d, or an ISO time.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the report as JSON instead of tables.")]
AlphaOpt = Annotated[float, typer.Option("--alpha", help="Significance level (family-wise for canary).")]


@ab_app.callback()
def ab() -> None:
    """A/B tests between two served versions."""


@canary_app.callback()
def canary() -> None:
    """Canary analysis."""


@shadow_app.callback()
def shadow() -> None:
    """Shadow evaluation."""


def _num(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _print_json(report: Any) -> None:
    from aisre.monitor.report.jsonsafe import dumps

    print(dumps(report.to_dict()))


@ab_app.command("report")
def ab_report_command(
    model: Annotated[str, typer.Argument(help="The model.")],
    a: Annotated[str, typer.Option("--a", help="Version A (control).")],
    b: Annotated[str, typer.Option("--b", help="Version B (treatment).")],
    since: SinceOpt = None,
    until: UntilOpt = None,
    alpha: AlphaOpt = 0.05,
    primary: Annotated[
        str, typer.Option("--primary", help="Verdict metric: auto, quality, error_rate or latency.")
    ] = "auto",
    sequential: Annotated[
        bool, typer.Option("--sequential", help="Verdict from always-valid mSPRT p-values (safe to peek).")
    ] = False,
    quality: Annotated[str, typer.Option("--quality", help="accuracy, abs_error or squared_error.")] = "accuracy",
    json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Compare versions A and B of MODEL on their served traffic: per-arm numbers, tests, effects, verdict."""
    from aisre.respond.ab import ab_report

    start, end = window(since, until)
    st = store_from(config, store)
    try:
        report = ab_report(
            st,
            model,
            a,
            b,
            since=start,
            until=end,
            alpha=alpha,
            primary=primary,
            sequential=sequential,
            quality_metric=quality,  # type: ignore[arg-type]
        )
    except AisreError as exc:
        raise fail(str(exc)) from None
    if json:
        return _print_json(report)
    arms = Table(title=f"{model}: A={a} vs B={b}")
    for col in ("arm", "version", "requests", "error rate", "latency mean s", "p50 s", "p95 s", "labelled", "quality"):
        arms.add_column(col)
    for key in ("a", "b"):
        arm = report.arms[key]
        lat = arm["latency_s"]
        arms.add_row(
            key.upper(),
            arm["version"],
            str(arm["requests"]),
            _num(arm["error_rate"]),
            _num(lat["mean"]),
            _num(lat["p50"]),
            _num(lat["p95"]),
            str(arm["labelled"]),
            _num(arm["quality"]),
        )
    console.print(arms)
    tests = Table(title=f"B - A ({int(round((1 - alpha) * 100))}% intervals)")
    for col in ("metric", "A", "B", "difference", "interval", "lift", "test", "p", "always-valid p"):
        tests.add_column(col)
    for c in report.comparisons:
        tests.add_row(
            c.metric,
            _num(c.a),
            _num(c.b),
            _num(c.difference.estimate),
            f"[{_num(c.difference.lower)}, {_num(c.difference.upper)}] {c.difference.method}",
            _num(c.lift.estimate),
            c.test.method,
            _num(c.test.p_value),
            _num(c.sequential.p_value) if c.sequential else "-",
        )
    console.print(tests)
    how = "sequential mSPRT" if sequential else "fixed-sample test"
    console.print(f"verdict: [bold]{report.verdict}[/] on {report.primary_metric} ({how}, alpha {alpha})")
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)


@canary_app.command("analyze")
def canary_analyze_command(
    model: Annotated[str, typer.Argument(help="The model.")],
    canary: Annotated[str, typer.Option("--canary", help="The canary version.")],
    stable: Annotated[str, typer.Option("--stable", help="The stable version.")],
    since: SinceOpt = None,
    until: UntilOpt = None,
    alpha: AlphaOpt = 0.05,
    sensitive: Annotated[
        str | None, typer.Option("--sensitive", help="Tag or input field for fairness by group.")
    ] = None,
    json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Analyse one canary step: errors, latency, quality, estimated quality, drift, fairness -> promote |
    hold | rollback (exit 0, 0, 1). Promotion is held while the SLO budget policy (slos: in the config) freezes it."""
    from aisre.respond.canary import CanaryPolicy, analyze_canary_in_store
    from aisre.respond.registry import slo_freeze

    start, end = window(since, until)
    st = store_from(config, store)
    cfg = config_from(config)
    try:
        freezes = slo_freeze(cfg.slos, st)(model, canary) if cfg.slos else []
        result = analyze_canary_in_store(
            st,
            model,
            canary=canary,
            stable=stable,
            since=start,
            until=end,
            policy=CanaryPolicy(alpha=alpha),
            sensitive=sensitive,
            frozen=bool(freezes),
        )
    except AisreError as exc:
        raise fail(str(exc)) from None
    result.reasons += [f"frozen: {f}" for f in freezes]
    if json:
        _print_json(result)
        raise typer.Exit(1 if result.decision == "rollback" else 0)
    table = Table(title=f"{model}: canary {canary} vs stable {stable}")
    for col in ("check", "kind", "stable", "canary", "margin", "p worse", "level", "p non-inferior", "status"):
        table.add_column(col)
    for c in result.checks:
        table.add_row(
            c.name,
            c.kind,
            _num(c.stable),
            _num(c.canary),
            _num(c.margin),
            _num(c.p_worse),
            _num(c.alpha),
            _num(c.p_noninferior),
            c.status,
        )
    console.print(table)
    console.print(
        f"decision: [bold]{result.decision}[/] (false-rollback rate <= {alpha} family-wise, "
        f"{result.policy.correction}; promotion needs non-inferiority on every tested check at {alpha})"
    )
    for reason in result.reasons:
        console.print(f"  {reason}", highlight=False)
    raise typer.Exit(1 if result.decision == "rollback" else 0)


@shadow_app.command("report")
def shadow_report_command(
    model: Annotated[str, typer.Argument(help="The model.")],
    shadow: Annotated[str, typer.Option("--shadow", help="The shadow version.")],
    since: SinceOpt = None,
    until: UntilOpt = None,
    write_signals: Annotated[bool, typer.Option("--write-signals", help="Store the shadow_* signals.")] = False,
    json: JsonOpt = False,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Pair MODEL's shadow records with the primaries they mirror and judge the shadow: exit 0 pass, 1 fail."""
    import time

    from aisre.respond.shadow import shadow_report

    start, end = window(since, until)
    st = store_from(config, store)
    try:
        report = shadow_report(st, model, shadow, since=start, until=end, write_signals=write_signals, now=time.time())
    except AisreError as exc:
        raise fail(str(exc)) from None
    if json:
        _print_json(report)
        raise typer.Exit(0 if report.passed else 1)
    table = Table(title=f"{model}: shadow {shadow} vs {', '.join(report.primary_versions) or '-'}")
    table.add_column("measure")
    table.add_column("value")
    pairing = ", ".join(f"{k} {v}" for k, v in report.pairing.items()) or "none"
    table.add_row("pairs", f"{report.pairs} ({pairing}); unpaired shadow records {report.unpaired_shadow}")
    if report.agreement:
        ag = report.agreement
        table.add_row("agreement", f"{_num(ag['rate'])} [{_num(ag['lower'])}, {_num(ag['upper'])}]")
    if report.correlation:
        co = report.correlation
        table.add_row("correlation", f"pearson {_num(co['pearson'])}, spearman {_num(co['spearman'])}")
        table.add_row("mean |difference|", _num(co["mean_abs_difference"]))
    er = report.errors
    table.add_row(
        "error rate", f"primary {_num(er['primary'])}, shadow {_num(er['shadow'])}, delta {_num(er['delta'])}"
    )
    la = report.latency
    table.add_row("latency p95 s", f"primary {_num(la['primary_p95_s'])}, shadow {_num(la['shadow_p95_s'])}")
    if report.quality:
        q = report.quality
        table.add_row(
            "accuracy", f"primary {_num(q['primary'])}, shadow {_num(q['shadow'])}, McNemar p {_num(q['p_worse'])}"
        )
    console.print(table)
    checks = Table(title="criteria")
    for col in ("check", "passed", "detail"):
        checks.add_column(col)
    for c in report.checks:
        checks.add_row(c["name"], "yes" if c["passed"] else "[red]no[/]", c["detail"])
    console.print(checks)
    console.print(f"shadow: [bold]{'PASS' if report.passed else 'FAIL'}[/]")
    for note in report.notes:
        console.print(f"note: {note}", highlight=False)
    raise typer.Exit(0 if report.passed else 1)
