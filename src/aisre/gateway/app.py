"""The gateway's ASGI app: routes of both protocols, /metrics, health, and the lifecycle."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config import AisreConfig, load_config
from aisre.gateway.core import Gateway
from aisre.gateway.errors import GatewayError, oip_error, openai_error
from aisre.gateway.oip_api import OipApi
from aisre.gateway.openai_api import OpenAIApi
from aisre.telemetry import Recorder

log = logging.getLogger("aisre.gateway")


def create_app(config: AisreConfig, recorder: Recorder | None = None, clock: Clock = SYSTEM_CLOCK) -> Starlette:
    """The gateway as an ASGI app. Owns the Recorder it builds; a passed-in one is only flushed."""
    owns_recorder = recorder is None
    recorder = recorder or Recorder.from_config(config, clock)
    gateway = Gateway(config, recorder, clock)
    openai = OpenAIApi(gateway)
    oip = OipApi(gateway)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        app.state.gateway = gateway
        try:
            yield
        finally:
            await gateway.stop()
            if owns_recorder:
                recorder.close()

    async def metrics(request: Request) -> Response:
        assert recorder.metrics is not None
        return Response(recorder.metrics.render(), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    routes = [
        Route("/v1/chat/completions", openai.chat, methods=["POST"]),
        Route("/v1/completions", openai.completions, methods=["POST"]),
        Route("/v1/embeddings", openai.embeddings, methods=["POST"]),
        Route("/v1/models", openai.models, methods=["GET"]),
        Route("/v2", oip.server_metadata, methods=["GET"]),
        Route("/v2/health/live", oip.live, methods=["GET"]),
        Route("/v2/health/ready", oip.ready, methods=["GET"]),
        Route("/v2/models/{name}", oip.model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", oip.model_ready, methods=["GET"]),
        Route("/v2/models/{name}/infer", oip.infer, methods=["POST"]),
        Route("/v2/models/{name}/versions/{version}", oip.model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/ready", oip.model_ready, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/infer", oip.infer, methods=["POST"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        err = GatewayError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")
        return oip_error(err) if request.url.path.startswith("/v2") else openai_error(err)

    async def server_error(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        err = GatewayError(500, f"internal gateway error ({type(exc).__name__}); the request was not served")
        return oip_error(err) if request.url.path.startswith("/v2") else openai_error(err)

    return Starlette(routes=routes, lifespan=lifespan,
                     exception_handlers={HTTPException: http_error, Exception: server_error})  # fmt: skip


def app_from_env() -> Any:
    """uvicorn factory for `aisre serve --workers N`: the config path comes from $AISRE_CONFIG."""
    path = os.environ.get("AISRE_CONFIG", "aisre.yaml")
    return create_app(load_config(path))
