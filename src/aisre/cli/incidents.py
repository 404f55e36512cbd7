"""`aisre incidents ...`: list, show, acknowledge and resolve incidents (their timelines are append-only)."""

from __future__ import annotations

import json
import os
from typing import Annotated

import typer
from rich.table import Table

from aisre.cli.common import config_from, console, fail, find_config
from aisre.cli.models import actor, print_json, when
from aisre.config import AisreConfig
from aisre.errors import AisreError, UnknownIncidentError
from aisre.respond.incidents import INCIDENT_STATUSES, Incident, Incidents
from aisre.store import open_store

app = typer.Typer(
    help="Incidents: what went wrong, the evidence, what was done, and who closed it.", no_args_is_help=True
)

ConfigOpt = Annotated[str | None, typer.Option("--config", "-c", help="Path to aisre.yaml.")]
StoreOpt = Annotated[str | None, typer.Option("--store", help="Store URL, e.g. sqlite:///aisre.db.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
IdArg = Annotated[str, typer.Argument(metavar="ID", help="The incident number (see aisre incidents list).")]
NoteOpt = Annotated[str | None, typer.Option("--note", help="A note for the timeline.")]
_STYLE = {"open": "red", "acknowledged": "yellow", "resolved": "green"}


def _open(config: str | None, store: str | None) -> Incidents:
    path = find_config(config)
    url = store or (config_from(path) if path is not None else AisreConfig()).store.url
    local = url.removeprefix("sqlite:///")
    if url.startswith("sqlite:///") and not os.path.exists(local):
        raise fail(f"no store at {local} (nothing recorded yet, or pass --store / -c)")
    try:
        return Incidents(open_store(url))
    except AisreError as exc:
        raise fail(f"--store: {exc}" if store else str(exc)) from None


def _id(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise fail(f"ID: expected an incident number like 12 (see aisre incidents list), got {text!r}")
    return int(text)


def _line(i: Incident) -> list[str]:
    where = " ".join(p for p in (i.model, i.version) if p) or "-"
    return [str(i.id), f"[{_STYLE[i.status]}]{i.status}[/]", i.severity, where, i.title, when(i.opened_at)]


@app.command("list")
def list_command(
    status: Annotated[str | None, typer.Option("--status", help=f"Only: {', '.join(INCIDENT_STATUSES)}.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Only this model's incidents.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many, newest first.")] = 50,
    config: ConfigOpt = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Incidents, newest first."""
    if status is not None and status not in INCIDENT_STATUSES:
        raise fail(f"--status: expected one of {', '.join(INCIDENT_STATUSES)}, got {status!r}")
    if limit < 1:
        raise fail(f"--limit: expected a whole number >= 1, got {limit}")
    incidents = _open(config, store).list(status=status, model=model, limit=limit)
    if as_json:
        print_json([i.to_dict() for i in incidents])
        return
    if not incidents:
        console.print("no incidents" + (f" with status {status}" if status else ""))
        return
    table = Table(title="incidents, newest first")
    for column in ("id", "status", "severity", "model", "title", "opened (UTC)"):
        table.add_column(column, no_wrap=column in ("id", "status"))
    for i in incidents:
        table.add_row(*_line(i))
    console.print(table)


@app.command("show")
def show_command(
    incident_id: IdArg, config: ConfigOpt = None, store: StoreOpt = None, as_json: JsonOpt = False
) -> None:
    """One incident and its timeline: trigger, evidence, actions and their outcome, notes."""
    number = _id(incident_id)
    try:
        incident = _open(config, store).get(number)
    except AisreError as exc:
        raise fail(f"ID: {exc} (see aisre incidents list)") from None
    if as_json:
        print_json(incident.to_dict())
        return
    i = incident
    console.print(f"[bold]incident {i.id}[/]: {i.title}", highlight=False)
    console.print(
        f"{i.status}, severity {i.severity}, model {i.model or '-'} {i.version or ''}; opened {when(i.opened_at)} "
        f"by {i.opened_by}"
        + (f"; acknowledged {when(i.acked_at)} by {i.acked_by}" if i.acked_at else "")
        + (f"; resolved {when(i.resolved_at)} by {i.resolved_by}" if i.resolved_at else ""),
        highlight=False,
    )
    table = Table(title="timeline, oldest first")
    for column in ("time (UTC)", "kind", "actor", "summary", "data"):
        table.add_column(column, no_wrap=column in ("kind",))
    for e in i.events:
        table.add_row(when(e.at), e.kind, e.actor, e.summary, json.dumps(e.data, sort_keys=True) if e.data else "")
    console.print(table)


@app.command("ack")
def ack_command(incident_id: IdArg, note: NoteOpt = None, config: ConfigOpt = None, store: StoreOpt = None) -> None:
    """Acknowledge an open incident (someone is on it)."""
    number = _id(incident_id)
    try:
        incident = _open(config, store).ack(number, actor=actor(), note=note)
    except AisreError as exc:
        raise fail(f"ID: {exc}" if isinstance(exc, UnknownIncidentError) else str(exc)) from None
    console.print(f"incident {incident.id} acknowledged by {incident.acked_by}", highlight=False)


@app.command("resolve")
def resolve_command(incident_id: IdArg, note: NoteOpt = None, config: ConfigOpt = None, store: StoreOpt = None) -> None:
    """Resolve an incident; the note says how it ended."""
    number = _id(incident_id)
    try:
        incident = _open(config, store).resolve(number, actor=actor(), note=note)
    except AisreError as exc:
        raise fail(f"ID: {exc}" if isinstance(exc, UnknownIncidentError) else str(exc)) from None
    console.print(f"incident {incident.id} resolved by {incident.resolved_by}", highlight=False)
