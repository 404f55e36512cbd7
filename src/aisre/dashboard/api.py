"""The dashboard's JSON API (`/dashboard/api/v1`, docs/dashboard.md): `DashboardData` served over HTTP.

Each handler parses nothing itself - `DashboardData` checks every parameter and names it - and runs
the data call in a worker thread (`asyncio.to_thread`): SQLite reads and SLO evaluation never block the
event loop that serves inference. Bad parameters answer 400, unknown names 404, both naming the
parameter; anything else is a bug, logged and answered 500 in the same JSON shape.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from aisre.dashboard.auth import DashboardAccess
from aisre.dashboard.data import DashboardData
from aisre.dashboard.params import BadParameter, UnknownItem
from aisre.errors import AisreError

log = logging.getLogger("aisre.dashboard")


class JSON(Response):
    """orjson: fast for long series, and NaN/inf become null (valid JSON for a browser)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS)


def error(status: int, message: str, param: str | None = None, headers: dict[str, str] | None = None) -> JSON:
    return JSON({"error": {"message": message, "param": param}}, status_code=status, headers=headers)


class DashboardApi:
    def __init__(self, data: DashboardData, access: DashboardAccess) -> None:
        self.data = data
        self.access = access

    def routes(self) -> list[Route]:
        def get(path: str, call: Callable[[Request], Any], html: bool = False) -> Route:
            return Route(path, self._endpoint(call, html), methods=["GET"])

        d = self.data
        return [
            get("/overview", lambda r: d.overview()),
            get(
                "/models/{model}/traffic",
                lambda r: d.traffic(r.path_params["model"], **_q(r, "since", "until", "step", "version")),
            ),
            get(
                "/models/{model}/signals",
                lambda r: d.signals(r.path_params["model"], **_q(r, "kind", "version", "since", "until")),
            ),
            get("/models/{model}/registry", lambda r: d.registry(r.path_params["model"])),
            get(
                "/models/{model}/versions/{version}/drift-report",
                lambda r: d.drift_report(
                    r.path_params["model"], r.path_params["version"], **_q(r, "since", "until", "monitor")
                ),
                html=True,
            ),
            get("/slos", lambda r: d.slos()),
            get("/slos/{name}", lambda r: d.slo(r.path_params["name"], **_q(r, "since", "until", "step"))),
            get("/incidents", lambda r: d.incidents(**_q(r, "status", "model", "limit"))),
            get("/incidents/{id}", lambda r: d.incident(r.path_params["id"])),
        ]

    def _endpoint(self, call: Callable[[Request], Any], html: bool) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            refusal = self.access.refusal(request.headers, request.cookies)
            if refusal is not None:
                return error(401, refusal, "authorization", {"WWW-Authenticate": 'Bearer realm="aisre dashboard"'})
            try:
                result = await asyncio.to_thread(call, request)
            except BadParameter as exc:
                return error(400, str(exc), exc.param)
            except UnknownItem as exc:
                return error(404, str(exc), exc.param)
            except AisreError as exc:  # a library check without a parameter name of ours (still the caller's input)
                return error(400, str(exc))
            except Exception as exc:  # noqa: BLE001 - a bug: logged, answered in the API's shape
                log.error("dashboard API error on %s", request.url.path, exc_info=exc)
                return error(500, f"internal dashboard error ({type(exc).__name__}); see the server log")
            if html:
                return HTMLResponse(result, headers={"Cache-Control": "no-store"})
            return JSON(result, headers={"Cache-Control": "no-store"})

        return endpoint


def _q(request: Request, *names: str) -> dict[str, str | None]:
    """The named query parameters (None when absent); an unexpected one is refused by name."""
    unknown = [k for k in request.query_params if k not in names]
    if unknown:
        expected = ", ".join(names) or "none"
        raise BadParameter(unknown[0], f"unknown query parameter; this endpoint takes: {expected}")
    return {name: request.query_params.get(name) for name in names}
