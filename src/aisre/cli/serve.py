"""`aisre serve`: run the gateway (uvicorn with uvloop and httptools)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from aisre.cli.common import DEFAULT_CONFIG, console, fail
from aisre.config import load_config
from aisre.errors import AisreError


def serve_command(
    config: Annotated[str, typer.Option("--config", "-c", help="Path to aisre.yaml.")] = DEFAULT_CONFIG,
    host: Annotated[str | None, typer.Option(help="Bind address (default: gateway.host).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: gateway.port).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: gateway.workers).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "warning",
) -> None:
    """Serve the models of aisre.yaml over the OpenAI API and the Open Inference Protocol v2."""
    import uvicorn

    try:
        cfg = load_config(config)
    except AisreError as exc:
        raise fail(str(exc)) from None
    if not cfg.models:
        raise fail(f"{config}: no models configured; add a 'models:' section (see README)")
    g = cfg.gateway
    host, port, workers = host or g.host, g.port if port is None else port, workers or g.workers
    os.environ["AISRE_CONFIG"] = os.path.abspath(config)
    console.print(
        f"aisre gateway on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''}), "
        f"models: {', '.join(cfg.models)}"
    )
    if workers > 1:
        uvicorn.run(
            "aisre.gateway.app:app_from_env",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            log_level=log_level,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=g.shutdown_grace_s,
        )
        return
    from aisre.gateway.app import create_app

    try:
        app = create_app(cfg)
    except AisreError as exc:
        raise fail(str(exc)) from None
    uvicorn.run(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        log_level=log_level,
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=g.shutdown_grace_s,
    )
