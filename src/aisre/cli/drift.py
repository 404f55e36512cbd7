"""`aisre drift REF CUR`: compare two tables (CSV or Parquet) column by column."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aisre.cli.common import console, fail
from aisre.errors import AisreError

LARGE_ROWS = 100_000


def read_table(path: str, option: str) -> Any:
    """A CSV or Parquet file as a pyarrow Table; errors name the option and the file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    p = Path(path)
    if not p.exists():
        raise fail(f"{option}: no such file {path}")
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(p)
        if suffix in (".csv", ".tsv", ".txt") or suffix.endswith("gz"):
            delimiter = "\t" if suffix == ".tsv" else ","
            return pacsv.read_csv(p, parse_options=pacsv.ParseOptions(delimiter=delimiter))
    except (pa.ArrowInvalid, OSError) as exc:
        raise fail(f"{option}: cannot read {path}: {exc}") from None
    raise fail(f"{option}: expected a .csv, .tsv or .parquet file, got {p.name}")


def drift_command(
    reference: Annotated[str, typer.Argument(help="Reference data: CSV or Parquet.")],
    current: Annotated[str, typer.Argument(help="Current data: CSV or Parquet.")],
    json_out: Annotated[str | None, typer.Option("--json", help="Write JSON here ('-' = stdout).")] = None,
    html_out: Annotated[str | None, typer.Option("--html", help="Write a self-contained HTML report here.")] = None,
    method: Annotated[str, typer.Option("--method", help="auto, ks, psi, wasserstein, jensenshannon, ...")] = "auto",
    compat: Annotated[str | None, typer.Option("--compat", help="evidently or nannyml numbers.")] = None,
    columns: Annotated[str | None, typer.Option("--columns", help="Comma-separated columns to test.")] = None,
    correction: Annotated[str | None, typer.Option("--correction", help="bonferroni or bh.")] = None,
    share: Annotated[float, typer.Option("--share", help="Dataset drift when this share drifts.")] = 0.5,
) -> None:
    """Test every column of CUR against REF; print a table, optionally JSON and HTML."""
    from aisre.monitor.drift import drift
    from aisre.monitor.tabular.frame import to_columns

    ref_table, cur_table = read_table(reference, "REF"), read_table(current, "CUR")
    wanted = [c.strip() for c in columns.split(",")] if columns else None
    try:
        ref_cols = to_columns(ref_table, wanted)
        cur_cols = to_columns(cur_table, wanted)
    except AisreError as exc:
        raise fail(str(exc)) from None
    missing = [c for c in ref_cols if c not in cur_cols]
    if missing:
        raise fail(f"CUR: columns missing compared with REF: {missing}")
    options: dict[str, Any] = {"method": method, "compat": compat, "correction": correction, "share_threshold": share}
    rows = max(ref_table.num_rows, cur_table.num_rows)
    try:
        if rows >= LARGE_ROWS and "progress" in inspect.signature(drift).parameters:
            with Progress(
                TextColumn("[bold]drift[/] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            ) as bar:
                task = bar.add_task("columns", total=len(ref_cols))
                result = drift(ref_cols, cur_cols, progress=lambda name: bar.advance(task), **options)
        else:
            result = drift(ref_cols, cur_cols, **options)
    except (AisreError, ValueError) as exc:
        raise fail(str(exc)) from None
    doc = result.to_dict()
    if json_out == "-":
        console.out(json.dumps(doc, indent=2), highlight=False)
    else:
        _print_table(result, ref_table.num_rows, cur_table.num_rows)
    if json_out and json_out != "-":
        Path(json_out).write_text(json.dumps(doc, indent=2))
        console.print(f"wrote {json_out}")
    if html_out:
        from aisre.monitor.report.html import drift_report_html

        title = f"Drift: {Path(current).name} vs {Path(reference).name}"
        page = drift_report_html(result, ref_cols, cur_cols, title=title)
        Path(html_out).write_text(page, encoding="utf-8")
        console.print(f"wrote {html_out} ({len(page.encode()) / 1024:.0f} KB)")


def _print_table(result: Any, n_ref: int, n_cur: int) -> None:
    table = Table(title=f"drift: {n_cur:,} current rows vs {n_ref:,} reference rows")
    for name in ("column", "method", "statistic", "p-value", "threshold", "drift"):
        table.add_column(name, justify="left" if name in ("column", "method") else "right")
    ordered = sorted(result.columns.items(), key=lambda kv: (not kv[1].drift, kv[0]))
    for name, r in ordered:
        p = "-" if r.p_value is None else f"{r.p_value:.4g}"
        table.add_row(
            name,
            r.method,
            f"{r.statistic:.4g}",
            p,
            f"{r.threshold:g}",
            "[bold red]drift[/]" if r.drift else "[green]ok[/]",
        )
    console.print(table)
    verdict = "[bold red]dataset drift[/]" if result.dataset_drift else "[green]no dataset drift[/]"
    console.print(f"{verdict}: share of drifted columns {result.share_drifted:.2f}")
