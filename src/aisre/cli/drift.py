"""`aisre drift REF CUR`: compare two tables (CSV or Parquet) column by column."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from aisre.cli.common import console, fail
from aisre.cli.options import input_file, output_file, renamed, write_text
from aisre.errors import AisreError

LARGE_ROWS = 100_000
#: Library parameter -> the option that sets it, so library errors name the option.
_OPTIONS = {
    "method": "--method",
    "compat": "--compat",
    "correction": "--correction",
    "threshold": "--threshold",
    "chunk_size": "--chunk-size",
    "k": "--std-k",
}


def read_table(path: str, option: str) -> Any:
    """A CSV or Parquet file as a pyarrow Table; errors name the option and the file."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    p = input_file(path, option)
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pq.read_table(p)
        if suffix in (".csv", ".tsv", ".txt") or suffix.endswith("gz"):
            delimiter = "\t" if suffix == ".tsv" else ","
            return pacsv.read_csv(p, parse_options=pacsv.ParseOptions(delimiter=delimiter))
    except (pa.ArrowInvalid, OSError, ValueError) as exc:  # ValueError: pyarrow's text decoding errors
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
    infinite: Annotated[
        str, typer.Option("--infinite", help="+-inf values: flag (a changed share is drift), drop, or error.")
    ] = "flag",
    threshold: Annotated[
        str | None,
        typer.Option(
            "--threshold",
            help="A number for every column, or 'std': mean + k*std of the statistic over reference chunks "
            "of --chunk-size rows (NannyML's rule, distance methods).",
        ),
    ] = None,
    std_k: Annotated[float, typer.Option("--std-k", help="k of --threshold std.")] = 3.0,
    chunk_size: Annotated[
        int | None, typer.Option("--chunk-size", help="Rows per reference chunk for --threshold std (default: CUR's).")
    ] = None,
) -> None:
    """Test every column of CUR against REF; print a table, optionally JSON and HTML.

    Exit codes: 0 done (drift or not), 2 bad input (each message names the option or file)."""
    from aisre.monitor.drift import drift

    _check_options(method, compat, correction, share, infinite)
    rule = _threshold(threshold, std_k, chunk_size)
    if json_out and json_out != "-":
        output_file(json_out, "--json")
    if html_out:
        output_file(html_out, "--html")
    wanted = [c.strip() for c in columns.split(",")] if columns else None
    if wanted is not None and not all(wanted):
        raise fail(f"--columns: expected comma-separated column names like amount,age, got {columns!r}")
    ref_table, cur_table = read_table(reference, "REF"), read_table(current, "CUR")
    ref_cols, cur_cols = _columns(ref_table, wanted, "REF"), _columns(cur_table, wanted, "CUR")
    missing = [c for c in ref_cols if c not in cur_cols]
    if missing:
        raise fail(f"CUR: columns missing compared with REF: {missing}")
    options: dict[str, Any] = {
        "method": method,
        "compat": compat,
        "correction": correction,
        "share_threshold": share,
        "infinite": infinite,
        "threshold": rule,
        "chunk_size": chunk_size,
    }
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
        raise fail(renamed(str(exc), _OPTIONS)) from None
    text = result.to_json(indent=2)  # strict JSON: NaN -> null, +-inf -> "inf"/"-inf"
    if json_out == "-":
        console.out(text, highlight=False)
    else:
        _print_table(result, ref_table.num_rows, cur_table.num_rows)
    if json_out and json_out != "-":
        write_text(json_out, text, "--json")
        console.print(f"wrote {json_out}")
    if html_out:
        from aisre.monitor.report.html import drift_report_html

        title = f"Drift: {Path(current).name} vs {Path(reference).name}"
        page = drift_report_html(result, ref_cols, cur_cols, title=title)
        write_text(html_out, page, "--html")
        console.print(f"wrote {html_out} ({len(page.encode()) / 1024:.0f} KB)")


def _check_options(method: str, compat: str | None, correction: str | None, share: float, infinite: str) -> None:
    """The options' own values, before any file is read."""
    from aisre.monitor.drift.compat import MODES
    from aisre.monitor.drift.correction import CORRECTIONS
    from aisre.monitor.drift.infinite import POLICIES
    from aisre.monitor.drift.registry import ALL_METHODS

    if method != "auto" and method not in ALL_METHODS:
        raise fail(f"--method: expected auto or one of {', '.join(sorted(ALL_METHODS))}, got {method!r}")
    if compat is not None and compat not in MODES:
        raise fail(f"--compat: expected one of {', '.join(MODES)}, got {compat!r}")
    if correction is not None and correction not in CORRECTIONS:
        raise fail(f"--correction: expected one of {', '.join(CORRECTIONS)}, got {correction!r}")
    if not 0 <= share <= 1:  # NaN fails too
        raise fail(f"--share: expected a share of columns from 0 to 1, got {share}")
    if infinite not in POLICIES:
        raise fail(f"--infinite: expected one of {', '.join(POLICIES)}, got {infinite!r}")


def _threshold(threshold: str | None, std_k: float, chunk_size: int | None) -> Any:
    """--threshold as the library takes it: None, a number, or a StdThreshold."""
    from aisre.monitor.drift.thresholds import StdThreshold

    if threshold is None:
        if chunk_size is not None:
            raise fail("--chunk-size: only with --threshold std (reference chunks of that many rows)")
        return None
    if threshold == "std":
        if not std_k >= 0 or std_k == float("inf"):  # NaN fails too
            raise fail(f"--std-k: expected a finite number >= 0, got {std_k}")
        if chunk_size is not None and chunk_size < 1:
            raise fail(f"--chunk-size: expected a number of rows >= 1, got {chunk_size}")
        try:
            return StdThreshold(k=std_k)
        except (AisreError, ValueError) as exc:
            raise fail(renamed(str(exc), _OPTIONS)) from None
    if chunk_size is not None:
        raise fail("--chunk-size: only with --threshold std (reference chunks of that many rows)")
    try:
        value = float(threshold)
    except ValueError:
        raise fail(f"--threshold: expected a number or 'std', got {threshold!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise fail(f"--threshold: expected a finite number or 'std', got {threshold!r}")
    return value


def _columns(table: Any, wanted: list[str] | None, option: str) -> dict[str, Any]:
    from aisre.monitor.tabular.frame import to_columns

    try:
        return to_columns(table, wanted)
    except AisreError as exc:
        raise fail(f"{option}: {exc}" if wanted is None else renamed(str(exc), _OPTIONS)) from None


def _print_table(result: Any, n_ref: int, n_cur: int) -> None:
    """One row per column with what the test did not see (missing, infinite: reference / current), then notes."""
    table = Table(title=f"drift: {n_cur:,} current rows vs {n_ref:,} reference rows")
    for name in ("column", "method", "statistic", "p-value", "threshold", "drift", "missing", "infinite"):
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
            _pair(r.details, "missing"),
            _pair(r.details, "infinite"),
        )
    console.print(table)
    for name, r in ordered:
        if r.details.get("note"):
            console.print(f"note: {name}: {r.details['note']}", highlight=False, markup=False, soft_wrap=True)
    verdict = "[bold red]dataset drift[/]" if result.dataset_drift else "[green]no dataset drift[/]"
    console.print(f"{verdict}: share of drifted columns {result.share_drifted:.2f}")


def _pair(details: dict[str, Any], what: str) -> str:
    return f"{details.get(f'{what}_reference', 0):,} / {details.get(f'{what}_current', 0):,}"
