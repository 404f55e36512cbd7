"""`aisre serve`: run the gateway (uvicorn with uvloop and httptools, plus the gateway's limits).

The whole config is checked, and the app built, before anything is printed or bound: a bad
config exits 2 with every problem listed, never after a banner and never with a traceback.
"""

from __future__ import annotations

import enum
import math
import os
import socket
from typing import Annotated, Any

import typer

from aisre.cli.common import DEFAULT_CONFIG, console, fail
from aisre.config import AisreConfig, load_config
from aisre.errors import AisreError


class LogLevel(enum.StrEnum):
    """uvicorn's log levels (typer lists them and refuses any other)."""

    critical = "critical"
    error = "error"
    warning = "warning"
    info = "info"
    debug = "debug"
    trace = "trace"


def serve_command(
    config: Annotated[str, typer.Option("--config", "-c", help="Path to aisre.yaml.")] = DEFAULT_CONFIG,
    host: Annotated[str | None, typer.Option(help="Bind address (default: gateway.host).")] = None,
    port: Annotated[int | None, typer.Option(min=0, max=65535, help="Port (default: gateway.port).")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Worker processes (default: gateway.workers).")] = None,
    log_level: Annotated[LogLevel, typer.Option(case_sensitive=False, help="uvicorn log level.")] = LogLevel.warning,
) -> None:
    """Serve the models of aisre.yaml over the OpenAI API and the Open Inference Protocol v2."""
    import uvicorn

    from aisre.gateway.protocol import http_protocol

    try:
        cfg = load_config(config)
    except AisreError as exc:
        raise fail(str(exc)) from None
    if not cfg.models:
        raise fail(f"{config}: no models configured; add a 'models:' section (see README)")
    g = cfg.gateway
    host, port, workers = host or g.host, g.port if port is None else port, workers or g.workers
    _check_bindable(host, port)
    app = _built_app(cfg, keep=workers == 1)
    console.print(
        f"aisre gateway on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''}), "
        f"models: {', '.join(cfg.models)}"
    )
    if cfg.dashboard.enabled:
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 - where a browser on this machine goes
        console.print(f"dashboard: http://{f'[{shown}]' if ':' in shown else shown}:{port}/dashboard/")
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "loop": "uvloop",
        "http": http_protocol(g),
        "log_level": log_level.value,
        "access_log": False,
        "proxy_headers": False,
        "server_header": False,
        # uvicorn takes whole seconds; rounding up never cuts a configured grace short.
        "timeout_graceful_shutdown": math.ceil(g.shutdown_grace_s),
    }
    if workers > 1:
        os.environ["AISRE_CONFIG"] = os.path.abspath(config)
        uvicorn.run("aisre.gateway.app:app_from_env", factory=True, workers=workers, **options)
    else:
        uvicorn.run(app, **options)


def _check_bindable(host: str, port: int) -> None:
    """Refuse an address that cannot be served (unknown host, port taken, no permission) before
    the banner; uvicorn would otherwise print it and then exit with its own error."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise fail(f"--host: cannot resolve {host!r} to a local address ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise fail(f"--port/--host: cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _built_app(cfg: AisreConfig, keep: bool) -> Any:
    """The gateway app, built now so that every config problem (a model file that does not
    load, a store that cannot open) is reported before serving. With several workers each
    builds its own; this one only validates, and its recorder is closed again."""
    from aisre.gateway.app import create_app
    from aisre.telemetry import Recorder

    try:
        if keep:
            return create_app(cfg)
        recorder = Recorder.from_config(cfg)
        try:
            create_app(cfg, recorder)
        finally:
            recorder.close()
    except AisreError as exc:
        raise fail(str(exc)) from None
    return None
