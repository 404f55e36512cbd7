"""`aisre slo mark`: record when a model was trained or its reference refreshed (freshness SLOs read it)."""

from __future__ import annotations

import math
import time
from typing import Annotated

import typer

from aisre.cli.common import config_from, console, fail, parse_time


def _when(text: str, option: str) -> float:
    """'now', Unix seconds (1767225600), an ISO time (UTC if no zone) or a duration ago (2h)."""
    value = text.strip()
    if value == "now":
        return time.time()
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if math.isfinite(seconds):
        if seconds < 0:
            raise fail(f"{option}: expected a time at or after 1970-01-01, got {text!r}")
        return seconds
    parsed = parse_time(value, option)  # exits 2 naming the option and the accepted forms
    assert parsed is not None
    return parsed


def mark_command(
    model: Annotated[str, typer.Argument(help="The model's name.")],
    version: Annotated[
        str | None, typer.Option("--version", help="The version marked (default: every version of the model).")
    ] = None,
    trained_at: Annotated[
        str | None,
        typer.Option(
            "--trained-at", help="When the model was trained: ISO time (UTC if no zone), Unix seconds, now, or 2h (ago)"
        ),
    ] = None,
    refreshed_at: Annotated[
        str | None,
        typer.Option("--reference-refreshed-at", help="When the monitoring reference was refreshed (same forms)."),
    ] = None,
    config: Annotated[str | None, typer.Option("--config", "-c", help="Path to aisre.yaml (its store).")] = None,
    store: Annotated[str | None, typer.Option("--store", help="Store URL (default: the config's).")] = None,
) -> None:
    """Record a freshness mark (model_trained_at or reference_refreshed_at) in the store; freshness SLOs
    judge each timeslice by the newest mark recorded by its end."""
    from aisre.errors import AisreError
    from aisre.slo.marks import MODEL_TRAINED_AT, REFERENCE_REFRESHED_AT, mark
    from aisre.store import open_store

    if (trained_at is None) == (refreshed_at is None):
        raise fail("give exactly one of --trained-at TIME or --reference-refreshed-at TIME")
    name, option, text = (
        (MODEL_TRAINED_AT, "--trained-at", trained_at)
        if trained_at is not None
        else (REFERENCE_REFRESHED_AT, "--reference-refreshed-at", refreshed_at)
    )
    assert text is not None
    at = _when(text, option)
    url = store or config_from(config).store.url
    try:
        signal = mark(open_store(url), model, name, at, now=time.time(), version=version)
    except AisreError as exc:
        raise fail(str(exc)) from None
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    console.print(f"{url}: {model}/{signal.version} {name} = {stamp} ({at:.0f})", highlight=False, soft_wrap=True)
