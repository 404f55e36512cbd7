"""`aisre watch`: the `monitors:` jobs of aisre.yaml, standalone (for library-only users, without `aisre serve`)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated, Any

import typer

from aisre.cli.common import DEFAULT_CONFIG, console, err_console, fail
from aisre.errors import AisreError


def watch_command(
    config: Annotated[str, typer.Option("--config", "-c", help="Path to aisre.yaml.")] = DEFAULT_CONFIG,
    once: Annotated[
        bool, typer.Option("--once", help="Check the windows that are due now and exit (0 ok, 2 a window failed).")
    ] = False,
) -> None:
    """Run the monitoring jobs of `monitors:` on their schedule until SIGTERM or Ctrl-C.

    Each complete window is checked once; signals go to the store and, with
    `telemetry.metrics.port`, to /metrics. One process per store runs the jobs (a lock beside
    the database), so `aisre watch` beside `aisre serve` stands by instead of doubling them.
    """
    from aisre.clock import SYSTEM_CLOCK
    from aisre.config import checks, load_config
    from aisre.monitor.jobs.background import BackgroundMonitors, RunnerLock, lock_path
    from aisre.monitor.jobs.runner import MonitorRunner
    from aisre.store import open_store
    from aisre.telemetry.metrics import Metrics

    try:
        cfg = load_config(config)
        checks.require([p for p in checks.find(cfg, parts=[checks.RECORDER]) if p.loc[0] in ("store", "monitors")])
    except AisreError as exc:
        raise fail(str(exc)) from None
    if not cfg.monitors:
        raise fail(f"{config}: no monitors configured; add a 'monitors:' section")
    try:
        store = open_store(cfg.store.url, retention_days=cfg.store.retention_days)
    except AisreError as exc:
        raise fail(str(exc)) from None
    metrics = Metrics()
    m = cfg.telemetry.metrics
    if m.enabled and m.port is not None:
        metrics.serve(m.host, m.port)
    runner = MonitorRunner(cfg, store, SYSTEM_CLOCK, metrics)
    lock = RunnerLock(lock_path(cfg.store.path))
    if once:
        _once(runner, lock)
        return
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    console.print(f"watching {len(cfg.monitors)} monitor{'s' * (len(cfg.monitors) != 1)} of {config}; Ctrl-C stops")
    background = BackgroundMonitors(runner, lock).start()
    try:
        stop.wait()
    finally:
        background.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    console.print("stopped")


def _once(runner: Any, lock: Any) -> None:
    if not lock.acquire():
        raise fail(f"another process runs the monitors of this store (it holds {lock.path})")
    try:
        signals = runner.run_due()
    finally:
        lock.release()
    console.print(f"{len(signals)} signals from the windows due", highlight=False)
    for line in runner.last_errors:
        err_console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True, markup=True)
    if runner.last_errors:
        raise typer.Exit(2)
