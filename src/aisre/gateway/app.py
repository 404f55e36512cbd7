"""The gateway's ASGI app: routes of both protocols, /metrics, health, and the lifecycle."""

from __future__ import annotations

import asyncio
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
from aisre.config import AisreConfig, checks, load_config
from aisre.gateway.access import MetricsAccess
from aisre.gateway.admin import AdminApi
from aisre.gateway.core import Gateway
from aisre.gateway.errors import GatewayError, oip_error, openai_error
from aisre.gateway.oip_api import OipApi
from aisre.gateway.openai_api import OpenAIApi
from aisre.telemetry import Recorder

log = logging.getLogger("aisre.gateway")


def create_app(config: AisreConfig, recorder: Recorder | None = None, clock: Clock = SYSTEM_CLOCK) -> Any:
    """The gateway as an ASGI app. Owns the Recorder it builds; a passed-in one is only flushed."""
    owns_recorder = recorder is None
    # Every start-up problem at once (the same checks as `aisre check-config`), before anything is opened.
    checks.check(config, parts=[checks.RECORDER, checks.GATEWAY] if owns_recorder else [checks.GATEWAY])
    recorder = recorder or Recorder.from_config(config, clock)
    try:
        gateway = Gateway(config, recorder, clock)  # config problems surface here, before listening
    except BaseException:
        if owns_recorder:
            recorder.close()
        raise
    metrics_access = MetricsAccess(config.auth)
    openai = OpenAIApi(gateway)
    oip = OipApi(gateway)
    admin = AdminApi(gateway)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        await admin.start()  # follows the model registry: changes made by the CLI reach this gateway
        app.state.gateway = gateway
        monitors = None
        if config.monitors:  # a daemon thread, off the event loop; one process per store runs the jobs
            from aisre.monitor.jobs.background import start_background  # numpy/scipy only when needed

            monitors = start_background(config, recorder.store, clock, recorder.metrics)
        judge = None
        if (config.slos or config.playbooks or config.canaries) and config.slo_evaluation.enabled:  # own thread+lock
            from aisre.respond.playbooks import GatewayActuator
            from aisre.slo.service import start_background as start_judge

            actuator = GatewayActuator(gateway, asyncio.get_running_loop())  # playbooks change this gateway's routing
            judge = start_judge(config, recorder.store, clock, recorder.metrics, actuator)
        try:
            yield
        finally:
            if judge is not None:
                await asyncio.to_thread(judge.stop)
            if monitors is not None:
                await asyncio.to_thread(monitors.stop)
            await admin.stop()
            await gateway.stop()
            if owns_recorder:
                recorder.close()

    async def metrics(request: Request) -> Response:
        refusal = metrics_access.refusal(request.headers)
        if refusal is not None:
            return openai_error(refusal)
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
        *admin.routes(),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    if config.dashboard.enabled:  # the web dashboard and its JSON API at /dashboard/ (docs/dashboard.md)
        from aisre.dashboard.app import dashboard_app, mount_routes

        routes += mount_routes(dashboard_app(config, recorder.store, clock, live=gateway))  # type: ignore[arg-type]

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        err = GatewayError(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")
        return oip_error(err) if request.url.path.startswith("/v2") else openai_error(err)

    async def server_error(request: Request, exc: Exception) -> Response:
        return internal_error(request.url.path, exc)

    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error, Exception: server_error}
    )
    fast = {
        ("POST", "/v1/chat/completions"): openai.chat,
        ("POST", "/v1/completions"): openai.completions,
        ("POST", "/v1/embeddings"): openai.embeddings,
    }
    return FastPath(app, fast, oip.infer)


class FastPath:
    """The inference endpoints skip Starlette's router and middleware stack (measured: about a
    third of the gateway's CPU per request); everything else goes through Starlette."""

    def __init__(self, app: Starlette, routes: dict[tuple[str, str], Any], oip_infer: Any) -> None:
        self.app = app
        self.routes = routes
        self.oip_infer = oip_infer

    @property
    def state(self) -> Any:
        return self.app.state

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            handler = self.routes.get((scope["method"], scope["path"]))
            if handler is None and scope["method"] == "POST":
                params = _oip_infer_params(scope["path"])
                if params is not None:
                    scope["path_params"] = params
                    handler = self.oip_infer
            if handler is not None:
                scope["app"] = self.app
                try:
                    response = await handler(Request(scope, receive))
                except Exception as exc:  # noqa: BLE001 - the same last resort as Starlette's
                    response = internal_error(scope["path"], exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def internal_error(path: str, exc: Exception) -> Response:
    """The last resort: a bug in the gateway answers 500 in the protocol's shape, and is logged."""
    log.error("unhandled error on %s", path, exc_info=exc)
    err = GatewayError(500, f"internal gateway error ({type(exc).__name__}); the request was not served")
    return oip_error(err) if path.startswith("/v2") else openai_error(err)


def _oip_infer_params(path: str) -> dict[str, str] | None:
    """/v2/models/{name}/infer and /v2/models/{name}/versions/{version}/infer."""
    parts = path.split("/")
    if len(parts) == 5 and parts[1] == "v2" and parts[2] == "models" and parts[4] == "infer" and parts[3]:
        return {"name": parts[3]}
    if (
        len(parts) == 7
        and parts[1] == "v2"
        and parts[2] == "models"
        and parts[4] == "versions"
        and parts[6] == "infer"
        and parts[3]
        and parts[5]
    ):
        return {"name": parts[3], "version": parts[5]}
    return None


def app_from_env() -> Any:
    """uvicorn factory for `aisre serve --workers N`: the config path comes from $AISRE_CONFIG."""
    path = os.environ.get("AISRE_CONFIG", "aisre.yaml")
    return create_app(load_config(path))
