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
        bool,
        typer.Option(
            "--once", help="Check the windows due now and judge the SLOs once, then exit (0 ok, 2 a window failed)."
        ),
    ] = False,
    gateway: Annotated[
        str | None,
        typer.Option(
            "--gateway",
            help="A running gateway's URL: playbooks open breakers and set weights through its admin API "
            "(admin key from $AISRE_ADMIN_KEY).",
        ),
    ] = None,
) -> None:
    """Run the monitoring jobs of `monitors:` on their schedule and judge the `slos:` every
    `slo_evaluation.interval`, until SIGTERM or Ctrl-C.

    Each complete window is checked once; signals go to the store and, with
    `telemetry.metrics.port`, to /metrics, as do the SLO gauges and `aisre_slo_events_total`;
    alerts that fire or resolve go to the receivers of `notifications:`. One process per store
    runs the jobs, and one judges the SLOs (a lock beside the database for each), so `aisre watch`
    beside `aisre serve` stands by instead of doubling them. The `playbooks:` run after every
    judging tick; their breaker and weight actions need `--gateway`.
    """
    from aisre.clock import SYSTEM_CLOCK
    from aisre.config import checks, load_config
    from aisre.store import open_store
    from aisre.telemetry.metrics import Metrics

    try:
        cfg = load_config(config)
        checks.require([p for p in checks.find(cfg, parts=[checks.RECORDER]) if p.loc[0] in ("store", "monitors")])
    except AisreError as exc:
        raise fail(str(exc)) from None
    judging = bool(cfg.slos or cfg.playbooks or cfg.canaries) and cfg.slo_evaluation.enabled
    if not cfg.monitors and not judging:
        raise fail(f"{config}: nothing to watch; add a 'monitors:', 'slos:' or 'playbooks:' section")
    actuator = _actuator(gateway)
    try:
        if not cfg.store.is_sqlite:  # what watch runs must be on PostgreSQL (it serves no dashboard, checks no keys)
            from aisre.store.postgres import check_config

            off = {"dashboard": cfg.dashboard.model_copy(update={"enabled": False})}
            check_config(cfg.model_copy(update={**off, "auth": cfg.auth.model_copy(update={"enabled": False})}))
        store = open_store(cfg.store.url, retention_days=cfg.store.retention_days, pool_size=cfg.store.pool_size)
    except AisreError as exc:
        raise fail(str(exc)) from None
    metrics = Metrics()
    m = cfg.telemetry.metrics
    if m.enabled and m.port is not None:
        metrics.serve(m.host, m.port)
    if once:
        _once(cfg, store, SYSTEM_CLOCK, metrics, actuator)
        return
    from aisre.monitor.jobs.background import start_background as start_monitors
    from aisre.slo.service import start_background as start_judge

    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    what = [f"{len(cfg.monitors)} monitor{'s' * (len(cfg.monitors) != 1)}"] if cfg.monitors else []
    what += [f"{len(cfg.slos)} SLO{'s' * (len(cfg.slos) != 1)}"] if judging and cfg.slos else []
    what += [f"{len(cfg.playbooks)} playbook{'s' * (len(cfg.playbooks) != 1)}"] if judging and cfg.playbooks else []
    console.print(f"watching {' and '.join(what)} of {config}; Ctrl-C stops")
    running = [
        start_monitors(cfg, store, SYSTEM_CLOCK, metrics),
        start_judge(cfg, store, SYSTEM_CLOCK, metrics, actuator),
    ]
    try:
        stop.wait()
    finally:
        for background in running:
            if background is not None:
                background.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
    console.print("stopped")


def _actuator(url: str | None) -> Any:
    """`--gateway URL` as an `AdminActuator` (the admin key from $AISRE_ADMIN_KEY), else None."""
    if url is None:
        return None
    import os

    from aisre.respond.playbooks import AdminActuator

    if not url.startswith(("http://", "https://")):
        raise fail(f"--gateway: expected the gateway's http:// or https:// URL, got {url!r}")
    key = os.environ.get("AISRE_ADMIN_KEY")
    if not key:
        raise fail("--gateway: set AISRE_ADMIN_KEY to the gateway's admin key (auth.admin_key)")
    return AdminActuator(url, key)


def _once(cfg: Any, store: Any, clock: Any, metrics: Any, actuator: Any = None) -> None:
    failed = False
    if cfg.monitors:
        from aisre.locks import store_lock
        from aisre.monitor.jobs.background import lock_path
        from aisre.monitor.jobs.runner import MonitorRunner

        lock = store_lock(store, "monitors", lock_path(store.path))
        failed = _run_monitors_once(MonitorRunner(cfg, store, clock, metrics), lock)
    if (cfg.slos or cfg.playbooks or cfg.canaries) and cfg.slo_evaluation.enabled:
        _judge_once(cfg, store, clock, metrics, actuator)
    if failed:
        raise typer.Exit(2)


def _run_monitors_once(runner: Any, lock: Any) -> bool:
    if not lock.acquire():
        raise fail(f"another process runs the monitors of this store (it holds {lock.path})")
    try:
        signals = runner.run_due()
    finally:
        lock.release()
    console.print(f"{len(signals)} signals from the windows due", highlight=False)
    for line in runner.last_errors:
        err_console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True, markup=True)
    return bool(runner.last_errors)


def _judge_once(cfg: Any, store: Any, clock: Any, metrics: Any, actuator: Any = None) -> None:
    """One SLO evaluation (alerts start from inactive, so a burning SLO fires and is notified)."""
    from aisre.locks import store_lock
    from aisre.slo.service import SLOService, lock_path

    lock = store_lock(store, "slo", lock_path(store.path))
    if not lock.acquire():
        raise fail(f"another process judges the SLOs of this store (it holds {lock.path})")
    service = SLOService(cfg, store, clock, metrics, actuator)
    try:
        for r in service.tick():
            burning = [s for s, state in r.alerts.items() if state == "firing"]
            budget = "-" if r.budget is None else f"{r.budget.remaining:.1%} of budget left"
            state = r.problem or (f"{budget}; firing: {', '.join(burning)}" if burning else budget)
            console.print(f"SLO {r.name}: {state}", highlight=False, soft_wrap=True)
        for c in service.canaries.events if service.canaries is not None else []:
            console.print(f"canary {c.model} {c.canary}: {c.action} at {c.percent:g}%: {c.detail}", markup=False)
        for e in service.playbooks.events if service.playbooks is not None else []:
            line = f"playbook {e.playbook}: {e.kind}: {e.detail}"
            console.print(line, style=None if e.ok else "bold red", highlight=False, soft_wrap=True, markup=False)
        timeout = max((rc.timeout_s for rc in cfg.notifications.receivers), default=0.0) * 2 + 1
        if not service.notifier.drain(timeout):
            err_console.print("[bold red]error:[/] some notifications could not be delivered", markup=True)
    finally:
        service.close()
        lock.release()
