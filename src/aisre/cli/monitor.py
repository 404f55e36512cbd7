"""`aisre monitor ...`: profile a reference, check a stored window against it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from aisre.cli.common import console, err_console, fail, store_from
from aisre.cli.drift import read_table
from aisre.cli.options import input_file, output_file, renamed, window
from aisre.errors import AisreError

app = typer.Typer(help="Check stored inferences against a reference.", no_args_is_help=True)


#: Exit code of `monitor check` when the window holds no records: nothing was checked, which is not "healthy".
NO_DATA = 3
#: Library parameter -> the option that sets it, so library errors name the option.
_OPTIONS = {"bins": "--bins", "sample_size": "--sample-size", "method": "--method", "until": "--until"}


def _reference(path: str, option: str = "--reference") -> Any:
    """A saved reference (.json: its raw-value sample) or a CSV/Parquet table."""
    if path.endswith(".json"):
        from aisre.monitor.profiles.reference import Reference

        input_file(path, option)
        try:
            return Reference.load(path).samples
        except AisreError as exc:
            raise fail(f"{option}: {exc}") from None
    return read_table(path, option)


@app.command("reference")
def make_reference(
    data: Annotated[str, typer.Argument(help="Reference data: CSV or Parquet.")],
    out: Annotated[str, typer.Option("--out", "-o", help="Where to save the profiled reference (.json).")],
    sample_size: Annotated[int, typer.Option(help="Raw values kept per column for exact tests.")] = 10_000,
    bins: Annotated[str, typer.Option(help="doane, sturges, fd, an integer, or quantile:N.")] = "doane",
) -> None:
    """Profile a reference once and save it; monitoring never needs the raw data again."""
    from aisre.monitor.profiles.profile import check_bins
    from aisre.monitor.profiles.reference import Reference

    chosen_bins: int | str = int(bins) if bins.isdigit() else bins
    try:
        check_bins(chosen_bins)
    except AisreError as exc:
        raise fail(renamed(str(exc), _OPTIONS)) from None
    if sample_size < 1:
        raise fail(f"--sample-size: expected a whole number >= 1 (raw values kept per column), got {sample_size}")
    output_file(out, "--out")
    table = read_table(data, "DATA")
    try:
        ref = Reference.fit(table, bins=chosen_bins, sample_size=sample_size)
    except (AisreError, ValueError) as exc:
        raise fail(renamed(str(exc), _OPTIONS)) from None
    try:
        ref.save(out)
    except OSError as exc:
        raise fail(f"--out: cannot write {out}: {exc.strerror or exc}") from None
    console.print(
        f"profiled {ref.settings['rows']:,} rows x {len(ref.column_names)} columns -> {out} "
        f"({Path(out).stat().st_size / 1024:.0f} KB)"
    )


@app.command("check")
def check(
    model: Annotated[str, typer.Option("--model", "-m", help="Model name in the store.")],
    reference: Annotated[str, typer.Option("--reference", "-r", help="Reference inputs: CSV, Parquet or .json.")],
    version: Annotated[
        str | None, typer.Option("--version", "-v", help="Model version (optional with --dataset).")
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="15m, 2h, 7d or an ISO time.")] = None,
    until: Annotated[str | None, typer.Option("--until", help="15m, 2h, 7d or an ISO time.")] = None,
    reference_outputs: Annotated[str | None, typer.Option("--reference-outputs", help="Reference outputs.")] = None,
    method: Annotated[str, typer.Option("--method", help="auto, ks, psi, ...")] = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print signals as JSON.")] = False,
    config: Annotated[str | None, typer.Option("--config", "-c", help="Path to aisre.yaml.")] = None,
    store: Annotated[str | None, typer.Option("--store", help="Store URL.")] = None,
    engine: Annotated[
        str | None, typer.Option("--engine", help="spark or dask: check --dataset on that engine.")
    ] = None,
    dataset: Annotated[
        str | None, typer.Option("--dataset", help="Exported Parquet dataset (aisre log export --dataset DIR).")
    ] = None,
) -> None:
    """Compare a window of stored records with the reference; store and print the signals.

    With --engine spark|dask --dataset DIR the window is read from an exported Parquet dataset instead
    of the store, each partition profiled on the engine (per-column drift, printed, not stored).

    Exit codes: 0 checked (breaches are in the signals), 2 bad options or files, 3 no data: the
    window holds no records (an unknown model or version, or a quiet window), so nothing was checked.
    """
    from aisre.monitor.jobs.checks import check_window
    from aisre.monitor.report.jsonsafe import dumps

    if engine is not None or dataset is not None:
        from aisre.cli.monitor_dataset import check_dataset

        check_dataset(engine, dataset, model, version, reference, since, until, method, json_out)
        return
    if version is None:
        raise fail("--version: required (the model version in the store); only --dataset checks may leave it out")
    start, end = window(since, until)
    s = store_from(config, store)
    ref = _reference(reference)
    ref_out = _reference(reference_outputs, "--reference-outputs") if reference_outputs else None
    try:
        result = check_window(s, ref, model, version, start, end, reference_outputs=ref_out, method=method)
    except (AisreError, ValueError) as exc:
        raise fail(renamed(str(exc), _OPTIONS)) from None
    stored = {(m, v): n for m, v, n in s.model_versions()} if result.no_data else {(model, version): result.rows}
    if (model, version) in stored:  # a typo'd model name leaves no signals behind
        s.write_signals(result.signals, time.time())
    if json_out:
        console.out(dumps([_signal_dict(x) for x in result.signals], indent=2), highlight=False)
    elif not result.no_data:
        _print_signals(result, model, version)
    say = err_console if json_out else console  # stdout stays pure JSON with --json
    for column in result.missing_inputs:
        say.print(f"missing: reference column {column!r} is not in the stored inputs of {model}/{version}")
    for column in result.missing_outputs:
        say.print(f"missing: reference output {column!r} is not in the stored outputs of {model}/{version}")
    if result.no_data:
        err_console.print(_no_data(model, version, since, until, stored), highlight=False, soft_wrap=True)
        raise typer.Exit(NO_DATA)


def _no_data(model: str, version: str, since: str | None, until: str | None, stored: dict) -> str:
    """Why the window is empty: the model/version is not in the store (listing what is), or the window is quiet."""
    if (model, version) not in stored:
        have = ", ".join(f"{m}/{v} ({n:,} records)" for (m, v), n in sorted(stored.items())[:20]) or "nothing"
        return f"no data: the store has no records of --model {model!r} --version {version!r}; it has: {have}"
    span = f"--since {since or '(start)'} --until {until or '(now)'}"
    return (
        f"no data: no records of {model}/{version} in the window {span} "
        f"(it has {stored[(model, version)]:,} records at other times); nothing was checked"
    )


def _print_signals(result: Any, model: str, version: str) -> None:
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
