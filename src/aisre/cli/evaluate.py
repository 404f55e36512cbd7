"""`aisre eval MODEL VERSION`: the offline evaluation gate from the command line.

Exit codes: 0 the version passed, 1 it failed (the failing checks are named), 2 the evaluation could not run
(bad input: a missing column, an unknown model or version, an unreadable file, a replica that does not answer),
always as one line naming the problem, never a traceback.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from aisre.cli.common import DEFAULT_CONFIG, console, fail, find_config
from aisre.cli.options import input_file, output_file, write_text
from aisre.errors import AisreError


def eval_command(
    model: Annotated[str, typer.Argument(help="A model of `models:` in aisre.yaml.")],
    version: Annotated[str, typer.Argument(help="One of its versions.")],
    data: Annotated[
        str | None, typer.Option("--data", "-d", help="Golden data: CSV or Parquet (default: evaluation.MODEL.data).")
    ] = None,
    label: Annotated[
        str | None, typer.Option("--label", "-l", help="The label column (default: evaluation.MODEL.label).")
    ] = None,
    config: Annotated[str | None, typer.Option("--config", "-c", help="The config file.")] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write the report as JSON here ('-' = stdout).")
    ] = None,
    html_out: Annotated[str | None, typer.Option("--html", help="Write a self-contained HTML report here.")] = None,
    no_store: Annotated[
        bool, typer.Option("--no-store", help="Do not keep the result (the promotion gate will not see it).")
    ] = False,
) -> None:
    """Score a golden data set through MODEL/VERSION as the gateway serves it and judge it by the thresholds of
    `evaluation.MODEL` (quality with intervals, fairness, latency); keep the verdict for the promotion gate.

    Exit codes: 0 passed, 1 failed, 2 bad input (one line naming the problem)."""
    from aisre.config import load_config
    from aisre.respond.evaluation import evaluate_version
    from aisre.respond.evaluation_report import evaluation_html

    chosen = find_config(config)
    if chosen is None:
        raise fail(f"--config: no config file (looked for ./{DEFAULT_CONFIG} and $AISRE_CONFIG); models come from it")
    if data is not None:
        input_file(data, "--data")
    for path, option in ((json_out, "--json"), (html_out, "--html")):
        if path is not None and path != "-":
            output_file(path, option)
    try:
        cfg = load_config(chosen)
        store = None if no_store else cfg.store.url
        result = evaluate_version(cfg, model, version, data, label, store=store)
    except AisreError as exc:
        raise fail(" ".join(str(exc).split())) from None  # one line, whatever the library's layout
    if json_out == "-":
        import orjson

        typer.echo(orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        _print(result)
        if json_out is not None:
            import orjson

            write_text(json_out, orjson.dumps(result.to_dict(), option=orjson.OPT_INDENT_2).decode(), "--json")
    if html_out is not None:
        write_text(html_out, evaluation_html(result), "--html")
    raise typer.Exit(0 if result.passed else 1)


def _fmt(x: Any) -> str:
    if x is None:
        return "–"
    if isinstance(x, float) and not math.isfinite(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _print(result: Any) -> None:
    table = Table(title=f"{result.model}/{result.version}: offline evaluation", title_justify="left")
    for column in ("check", "kind", "value", "interval", "threshold", "compared", "result"):
        table.add_column(column, justify="left" if column in ("check", "kind", "compared") else "right")
    for c in result.checks:
        interval = "–" if c.lower is None and c.upper is None else f"[{_fmt(c.lower)}, {_fmt(c.upper)}]"
        verdict = "[green]pass[/]" if c.passed else "[bold red]FAIL[/]"
        sign = ">=" if c.direction == "min" else "<="
        table.add_row(
            escape(c.name), c.kind, _fmt(c.value), interval, f"{sign} {_fmt(c.threshold)}", c.judged_by, verdict
        )
    console.print(table)
    rows, target = result.data.get("rows"), result.target
    console.print(
        escape(
            f"{rows} rows of {result.data.get('path')} (label {result.data.get('label')!r}, task {result.task}); "
            f"scored by {target.get('scored')}; latency: {target.get('latency_measures')}, {target.get('calls')} calls"
        ),
        highlight=False,
        soft_wrap=True,
    )
    for c in result.checks:
        if c.note:
            console.print(escape(f"note: {c.name}: {c.note}"), highlight=False, soft_wrap=True)
    for note in result.notes:
        console.print(escape(f"note: {note}"), highlight=False, soft_wrap=True)
    if result.passed:
        console.print(f"[green]PASSED[/] {len(result.checks)} checks" + _stored(result), highlight=False)
    else:
        names = ", ".join(c.name for c in result.failed)
        failed = f"{len(result.failed)} of {len(result.checks)}: {escape(names)}"
        console.print(f"[bold red]FAILED[/] {failed}" + _stored(result), highlight=False, soft_wrap=True)


def _stored(result: Any) -> str:
    return f" (stored as evaluation #{result.seq})" if result.seq is not None else " (not stored)"
