"""`aisre log ...`: read the inference log from the terminal."""

from __future__ import annotations

import math
import time
from typing import Annotated

import orjson
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from aisre.cli.common import console, fail, store_from
from aisre.cli.options import count, window
from aisre.errors import AisreError
from aisre.records import InferenceRecord
from aisre.store import RecordFilter, export_parquet
from aisre.store.codec import iso_time, record_to_json_line
from aisre.store.summary import KeySummary, summarize, summarize_by_key

PROGRESS_ROWS = 100_000  # a dataset export expecting fewer records shows no progress bar

app = typer.Typer(help="Read, summarise and export the inference log.", no_args_is_help=True)

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Path to aisre.yaml.")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="Store URL, e.g. sqlite:///aisre.db.")]
ModelOpt = Annotated[str | None, typer.Option("--model", "-m", help="Only this model.")]
VersionOpt = Annotated[str | None, typer.Option("--version", "-v", help="Only this version.")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="15m, 2h, 7d, or an ISO time.")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="15m, 2h, 7d, or an ISO time.")]


def _filter(model: str | None, version: str | None, since: str | None, until: str | None):
    return RecordFilter(model, version, *window(since, until))


def _short(value: object, width: int = 48) -> str:
    text = "" if value is None else orjson.dumps(value, default=str).decode()
    return text if len(text) <= width else text[: width - 1] + "…"


def _row(r: InferenceRecord) -> list[str]:
    latency = "" if r.latency_s is None else f"{r.latency_s * 1000:.2f}"
    output = r.output_text if r.output_text is not None else r.prediction
    return [
        iso_time(r.ts),
        r.model,
        r.version,
        str(r.route),
        str(r.status),
        latency,
        _short(r.inputs),
        _short(output, 24),
        r.id,
    ]


@app.command()
def tail(
    n: Annotated[int, typer.Option("-n", help="How many records.")] = 20,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing new records.")] = False,
    json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table.")] = False,
    model: ModelOpt = None,
    version: VersionOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Show the newest records."""
    count(n, "-n")
    s = store_from(config, store)
    where = RecordFilter(model, version)
    records = list(reversed(s.records(where, limit=n, newest_first=True)))
    _print(records, json)
    while follow:
        last_ts = records[-1].ts if records else 0.0
        seen = {r.id for r in records if r.ts == last_ts}
        time.sleep(1.0)
        fresh = [r for r in s.records(RecordFilter(model, version, since=last_ts)) if r.id not in seen]
        if fresh:
            _print(fresh, json, header=False)
            records = fresh


def _print(records: list[InferenceRecord], json: bool, header: bool = True) -> None:
    if json:
        for r in records:
            console.out(record_to_json_line(r).decode().rstrip(), highlight=False)
        return
    table = Table(show_header=header, box=None if not header else None)
    for name in ("time (UTC)", "model", "version", "route", "status", "ms", "inputs", "output", "id"):
        table.add_column(name, no_wrap=name in ("time (UTC)", "id"))
    for r in records:
        table.add_row(*_row(r))
    console.print(table)


@app.command()
def stats(
    model: ModelOpt = None,
    version: VersionOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    by_key: Annotated[bool, typer.Option("--by-key", help="Per API key id: calls, tokens, spend.")] = False,
) -> None:
    """Per model/version: count, error rate, cancelled calls, latency percentiles, cost (or per key with --by-key).

    A call whose client disconnected first is `cancelled`: counted, but not an error."""
    s = store_from(config, store)
    if by_key:
        _print_by_key(summarize_by_key(s, _filter(model, version, since, until)), str(s.path))
        return
    rows = summarize(s, _filter(model, version, since, until))
    if not rows:
        console.print("no records match")
        return
    table = Table(title=f"inference log {s.path}")
    columns = (
        "model",
        "version",
        "count",
        "errors",
        "error rate",
        "cancelled",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "cost USD",
    )
    for name in columns:
        table.add_column(name, justify="left" if name in ("model", "version") else "right")

    def ms(v: float) -> str:
        return "-" if math.isnan(v) else f"{v * 1000:.2f}"

    for row in rows:
        table.add_row(
            row.model,
            row.version,
            f"{row.count:,}",
            f"{row.errors:,}",
            f"{row.error_rate:.2%}",
            f"{row.cancelled:,}",
            ms(row.latency_p50_s),
            ms(row.latency_p95_s),
            ms(row.latency_p99_s),
            f"{row.cost_usd:.4f}",
        )
    console.print(table)


def _print_by_key(rows: list[KeySummary], path: str) -> None:
    if not rows:
        console.print("no records match")
        return
    table = Table(title=f"spend by key {path}")
    for name in ("key", "models", "count", "errors", "error rate", "input tokens", "output tokens", "cost USD"):
        table.add_column(name, justify="left" if name in ("key", "models") else "right")
    for row in rows:
        table.add_row(
            row.key_id or "(no key)",
            ",".join(row.models),
            f"{row.count:,}",
            f"{row.errors:,}",
            f"{row.error_rate:.2%}",
            f"{row.input_tokens:,}",
            f"{row.output_tokens:,}",
            f"{row.cost_usd:.4f}",
        )
    console.print(table)


@app.command()
def export(
    parquet: Annotated[str | None, typer.Option("--parquet", help="Write this Parquet file.")] = None,
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", help="Append what is new to this Hive-partitioned Parquet dataset directory."),
    ] = None,
    partition_by: Annotated[
        str,
        typer.Option("--partition-by", help="With --dataset: comma list of model, version, date, hour, route, status."),
    ] = "model,date",
    model: ModelOpt = None,
    version: VersionOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Export records (with their labels) to a Parquet file, or incrementally to a partitioned dataset.

    With --dataset, each run exports only the records added since the previous run into DIR
    (docs/export.md); --until holds back records younger than it (e.g. `--until 1d` lets labels arrive)."""
    if dataset is not None and parquet is None:
        _export_dataset(dataset, partition_by, model, version, since, until, config, store)
        return
    if parquet is None or dataset is not None:
        raise fail("export: expected exactly one of --parquet FILE or --dataset DIR")
    s = store_from(config, store)
    try:
        rows = export_parquet(s, parquet, _filter(model, version, since, until))
    except OSError as exc:
        raise fail(f"--parquet: cannot write {parquet}: {exc}") from None
    console.print(f"wrote {rows:,} records to {parquet}")


class _LazyBar:
    """A progress bar that appears only once an export turns out long (PROGRESS_ROWS records or more)."""

    def __init__(self) -> None:
        self.bar: Progress | None = None
        self.task = TaskID(0)

    def update(self, done: int, expected: int) -> None:
        if self.bar is None:
            if expected < PROGRESS_ROWS:
                return
            self.bar = Progress(
                TextColumn("[bold]export[/] records"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("records", total=expected)
        self.bar.update(self.task, completed=done, total=expected)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _export_dataset(
    dataset: str,
    partition_by: str,
    model: str | None,
    version: str | None,
    since: str | None,
    until: str | None,
    config: str | None,
    store: str | None,
) -> None:
    from aisre.store.dataset_export import export_dataset
    from aisre.store.dataset_layout import parse_partition_by

    if model is not None or version is not None:
        option = "--model" if model is not None else "--version"
        raise fail(f"{option}: not with --dataset (a dataset holds every model; use --partition-by model,...)")
    try:
        keys = parse_partition_by(partition_by)
    except AisreError as exc:
        raise fail(str(exc)) from None
    start, end = window(since, until)
    s = store_from(config, store)
    bar = _LazyBar()
    try:
        result = export_dataset(s, dataset, keys, since=start, until=end, progress=bar.update)
    except AisreError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"--dataset: cannot write {dataset}: {exc}") from None
    finally:
        bar.stop()
    extra = f", {result.rewritten} older parts given new columns" if result.rewritten else ""
    extra += f", {result.removed} leftovers of an interrupted run removed" if result.removed else ""
    console.print(
        f"exported {result.rows:,} records to {dataset} (run {result.run}): {result.files} files,"
        f" {result.bytes:,} bytes, {result.seconds:.1f} s{extra}"
    )


@app.command()
def prune(
    older_than_days: Annotated[float, typer.Option("--older-than-days", help="Age in days.")],
    config: ConfigOpt = None,
    store: StoreOpt = None,
) -> None:
    """Delete records (and their labels) older than N days."""
    if not older_than_days > 0:
        raise fail(f"--older-than-days: expected a number > 0, got {older_than_days}")
    s = store_from(config, store)
    n = s.prune(time.time() - older_than_days * 86_400)
    console.print(f"deleted {n:,} records older than {older_than_days:g} days")
