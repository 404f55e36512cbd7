"""`aisre drill SCENARIO.yaml`: rehearse faults against the real gateway on an accelerated clock (promtool-style)."""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Annotated

import typer

from aisre.cli.common import console, err_console, fail
from aisre.errors import AisreError, ConfigError


def drill_command(
    scenario: Annotated[str, typer.Argument(help="The scenario file (see examples/drills/).")],
    json_out: Annotated[
        str | None, typer.Option("--json", help="Also write the result (timeline, detection delays) as JSON here.")
    ] = None,
    workdir: Annotated[
        str | None,
        typer.Option("--workdir", help="Keep the drill's store and models here (default: a temporary directory)."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="Override the scenario's seed (does it pass with other draws too?).")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only the expectations' verdicts.")] = False,
) -> None:
    """Drive synthetic traffic (scikit-learn's breast-cancer data, models trained at start) through the real
    gateway and a real SQLite store on an accelerated clock, inject the scenario's faults, run the monitors,
    SLO judge and playbooks as time passes, and report what aisre detected and did, with the detection delay
    of each fault. Exit 0 when every `expect:` outcome happened, 1 when one did not (each named with what
    happened instead), 2 for a bad scenario (its key path named)."""
    from aisre.errors import require

    try:  # what a drill needs beyond the core: the data frames and the ASGI client to import aisre.drills ...
        for module, package in (("pandas", "pandas"), ("httpx", "httpx")):
            require(module, "drill", "aisre drill", package)
    except AisreError as exc:
        raise fail(str(exc)) from None
    from aisre.drills import Drill, judge, load_scenario, render, to_json

    try:
        spec = load_scenario(scenario)
        if seed is not None:
            spec = spec.model_copy(update={"seed": seed})
    except ConfigError as exc:
        raise fail(_one_line(scenario, exc)) from None
    try:  # ... and the data set and models, checked once the scenario is read: importing scikit-learn takes
        # seconds, and a bad scenario is told without them
        require("sklearn", "drill", "aisre drill", "scikit-learn")
    except AisreError as exc:
        raise fail(str(exc)) from None
    logging.getLogger("aisre").setLevel(logging.ERROR)  # the timeline tells what happened; no log chatter
    started = time.perf_counter()
    try:
        if workdir is not None:
            if (Path(workdir) / "aisre.db").exists():
                raise fail(f"--workdir: {workdir} already holds a drill's store (aisre.db); give an empty directory")
            Path(workdir).mkdir(parents=True, exist_ok=True)
            run = Drill(spec, Path(workdir)).run()
        else:
            with tempfile.TemporaryDirectory(prefix="aisre-drill-") as tmp:
                run = Drill(spec, Path(tmp)).run()
    except ConfigError as exc:
        raise fail(_one_line(scenario, exc)) from None
    except AisreError as exc:
        raise fail(f"{scenario}: {exc}") from None
    wall = time.perf_counter() - started
    verdicts = judge(run)
    if json_out is not None:
        Path(json_out).write_text(json.dumps(to_json(run, verdicts, wall), indent=2, default=str))
    if quiet:
        for v in verdicts:
            console.print(f"{'ok  ' if v.passed else 'FAIL'} {v.detail}", highlight=False, soft_wrap=True)
    else:
        render(run, verdicts, wall, console)
    failed = [v for v in verdicts if not v.passed]
    if failed:
        for v in failed:
            err_console.print(f"{scenario}: expectation failed: {v.detail}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)


def _one_line(path: str, exc: ConfigError) -> str:
    more = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
    return f"{path}: {exc.problems[0] if exc.problems else exc}{more}"
