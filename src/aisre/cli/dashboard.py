"""`aisre dashboard`: the web dashboard and its JSON API alone, over a store (no gateway in this process).

Route weights then come from the model registry, breaker states from the incident log (see
`aisre.dashboard.state`); everything else is what `aisre serve` shows at /dashboard/.
"""

from __future__ import annotations

from typing import Annotated

import typer

from aisre.cli.common import DEFAULT_CONFIG, config_from, console, fail, parse_time, store_from
from aisre.errors import AisreError


def dashboard_command(
    config: Annotated[str, typer.Option("--config", "-c", help="Path to aisre.yaml.")] = DEFAULT_CONFIG,
    store: Annotated[str | None, typer.Option(help="Store URL (default: the config's store.url).")] = None,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port.")] = 8080,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            help="Show the store as of this time, frozen (ISO time, or a duration ago such as 2h): a post-mortem, "
            "or a drill's store (aisre drill --workdir) at the drill's simulated end.",
        ),
    ] = None,
) -> None:
    """Serve the dashboard (traffic, quality, SLO budgets, incidents) at http://HOST:PORT/dashboard/."""
    import uvicorn

    from aisre.cli.serve import _check_bindable
    from aisre.clock import SYSTEM_CLOCK, ManualClock
    from aisre.dashboard.app import Prefixed, dashboard_app

    frozen = parse_time(at, "--at")
    cfg = config_from(config)
    opened = store_from(config, store)
    _check_bindable(host, port)
    try:
        app = Prefixed(dashboard_app(cfg, opened, ManualClock(frozen) if frozen is not None else SYSTEM_CLOCK))
    except AisreError as exc:
        raise fail(str(exc)) from None
    login = " (admin key required: auth.admin_key)" if cfg.auth.admin_key else ""
    when = "" if frozen is None else f", as of {_iso(frozen)}"
    console.print(f"aisre dashboard on http://{host}:{port}/dashboard/ over {opened.url}{login}{when}")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, server_header=False)
    finally:
        opened.close()


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
