"""`aisre monitor check --engine spark|dask --dataset DIR`: drift of an exported dataset's window on an engine."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from aisre.cli.common import console, err_console, fail
from aisre.cli.options import renamed, window
from aisre.errors import AisreError

NO_DATA = 3
_OPTIONS = {"method": "--method", "engine": "--engine"}


def check_dataset(
    engine: str | None,
    dataset: str | None,
    model: str,
    version: str | None,
    reference: str,
    since: str | None,
    until: str | None,
    method: str,
    json_out: bool,
) -> None:
    from aisre.cli.monitor import _reference
    from aisre.monitor.engines.dataset import ENGINES, open_dataset
    from aisre.monitor.tabular.frame import to_columns

    if engine is None:
        raise fail(f"--engine: required with --dataset (one of {', '.join(ENGINES)})")
    if engine not in ENGINES:
        raise fail(f"--engine: expected one of {', '.join(ENGINES)}, got {engine!r}")
    if dataset is None:
        raise fail("--dataset: required with --engine (the directory `aisre log export --dataset DIR` wrote)")
    start, end = window(since, until)
    ref = _reference(reference)
    try:
        names = list(to_columns(ref))
        frame, absent = open_dataset(engine, dataset, model, names, version, start, end)
        if not names or len(absent) == len(names):
            raise fail(
                f"--dataset: none of the reference's columns {names[:20]} (as in_<name> or <name>) are in {dataset}"
            )
        compared = [n for n in names if n not in absent]
        if _empty(frame, engine):
            which = f"{model}/{version}" if version else model
            err_console.print(f"no data: no rows of {which} in {dataset} in the window; nothing was checked")
            raise typer.Exit(NO_DATA)
        import aisre

        result = aisre.drift(ref, frame, method=method, columns=compared)
    except AisreError as exc:
        raise fail(renamed(str(exc), _OPTIONS)) from None
    if json_out:
        console.out(result.to_json(), highlight=False)
    else:
        _print(result, model, engine)
    say = err_console if json_out else console
    for column in absent:
        say.print(f"missing: reference column {column!r} is not in the dataset (neither in_{column} nor {column})")


def _empty(frame: Any, engine: str) -> bool:
    if engine == "spark":
        return not frame.take(1)
    return len(frame.head(1, npartitions=-1)) == 0


def _print(result: Any, model: str, engine: str) -> None:
    verdict = "[bold red]drift[/]" if result.dataset_drift else "no drift"
    table = Table(title=f"{model} on {engine}: {result.n_drifted} of {len(result.columns)} columns drifted ({verdict})")
    for name in ("column", "method", "statistic", "p-value", "threshold", "drift"):
        table.add_column(name)
    for column, r in sorted(result.columns.items(), key=lambda kv: (not kv[1].drift, kv[0])):
        table.add_row(
            column,
            r.method,
            f"{r.statistic:.4g}",
            "-" if r.p_value is None else f"{r.p_value:.3g}",
            f"{r.threshold:g}",
            "[bold red]yes[/]" if r.drift else "no",
        )
    console.print(table)
