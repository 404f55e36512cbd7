"""`aisre monitor ...`: profile a reference, check a stored window against it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from aisre.cli.common import console, fail, parse_time, store_from
from aisre.cli.drift import read_table
from aisre.errors import AisreError

app = typer.Typer(help="Check stored inferences against a reference.", no_args_is_help=True)


def _reference(path: str) -> Any:
    """A saved reference (.json: its raw-value sample) or a CSV/Parquet table."""
    if path.endswith(".json"):
        from aisre.monitor.profiles.reference import Reference

        try:
            return Reference.load(path).samples
        except AisreError as exc:
            raise fail(f"--reference: {exc}") from None
    return read_table(path, "--reference")


@app.command("reference")
def make_reference(
    data: Annotated[str, typer.Argument(help="Reference data: CSV or Parquet.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Where to save the profiled reference (.json).")],
    sample_size: Annotated[int, typer.Option(help="Raw values kept per column for exact tests.")] = 10_000,
    bins: Annotated[str, typer.Option(help="doane, sturges, fd, an integer, or quantile:N.")] = "doane",
) -> None:
    """Profile a reference once and save it; monitoring never needs the raw data again."""
    from aisre.monitor.profiles.reference import Reference

    table = read_table(data, "DATA")
    try:
        ref = Reference.fit(table, bins=int(bins) if bins.isdigit() else bins, sample_size=sample_size)
        ref.save(out)
    except (AisreError, ValueError) as exc:
        raise fail(str(exc)) from None
    console.print(
        f"profiled {ref.settings['rows']:,} rows x {len(ref.column_names)} columns -> {out} "
        f"({Path(out).stat().st_size / 1024:.0f} KB)"
    )


@app.command("check")
def check(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name in the store.")],
    version: Annotated[str, typer.Option("--version", "-v", help="Model version.")],
    reference: Annotated[str, typer.Option("--reference", "-r", help="Reference inputs: CSV, Parquet or .json.")],
    since: Annotated[str | None, typer.Option("--since", help="15m, 2h, 7d or an ISO time.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="15m, 2h, 7d or an ISO time.")] = None,
    reference_outputs: Annotated[str | None, typer.Option("--reference-outputs", help="Reference outputs.")] = None,
    method: Annotated[str, typer.Option("--method", help="auto, ks, psi, ...")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print signals as JSON.")] = False,
    config: Annotated[str | None, typer.Option("--config", "-c", help="Path to aisre.yaml.")] = None,
    store: Annotated[str | None, typer.Option("--store", help="Store URL.")] = None,
) -> None:
    """Compare a window of stored records with the reference; store and print the signals."""
    from aisre.monitor.jobs.checks import check_window

    s = store_from(config, store)
    ref = _reference(reference)
    ref_out = _reference(reference_outputs) if reference_outputs else None
    start, end = parse_time(since, "--since"), parse_time(until, "--until")
    try:
        result = check_window(s, ref, model, version, start, end, reference_outputs=ref_out, method=method)
    except (AisreError, ValueError) as exc:
        raise fail(str(exc)) from None
    s.write_signals(result.signals, time.time())
    if json_out:
        console.out(json.dumps([_signal_dict(x) for x in result.signals], indent=2), highlight=False)
        return
    table = Table(title=f"{model}/{version}: {result.rows:,} records in the window")
    for name in ("signal", "labels", "value", "threshold", "breached"):
        table.add_column(name)
    for x in sorted(result.signals, key=lambda x: (not x.breached, x.name)):
        labels = ", ".join(f"{k}={v}" for k, v in sorted(x.labels.items()))
        table.add_row(
            x.name,
            labels,
            f"{x.value:.4g}",
            "-" if x.threshold is None else f"{x.threshold:g}",
            "[bold red]yes[/]" if x.breached else "no",
        )
    console.print(table)


def _signal_dict(x: Any) -> dict[str, Any]:
    return {
        "model": x.model,
        "version": x.version,
        "name": x.name,
        "labels": x.labels,
        "value": x.value,
        "threshold": x.threshold,
        "breached": x.breached,
        "window_start": x.window_start,
        "window_end": x.window_end,
    }
