"""The dashboard as an ASGI app: the JSON API, the login, the page and its vendored static files.

`dashboard_app` is mounted at `/dashboard` by the gateway (`aisre serve`) and served alone by
`aisre dashboard`. Pages and static files are public (the page shows a login form when the API
answers 401); the API needs the admin key when `auth.admin_key` is set (`aisre.dashboard.auth`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config import AisreConfig
from aisre.dashboard.api import DashboardApi, error
from aisre.dashboard.auth import COOKIE, DashboardAccess
from aisre.dashboard.data import DashboardData
from aisre.store.sqlite import SQLiteStore

PATH = "/dashboard"
STATIC_DIR = Path(__file__).parent / "static"
_PLACEHOLDER = """<!doctype html><html><head><meta charset="utf-8"><title>aisre dashboard</title></head>
<body style="font-family: sans-serif; margin: 2em">
<h1>aisre dashboard</h1>
<p>The dashboard's pages are not installed in this build; its JSON API is served at
<a href="api/v1/overview">api/v1/overview</a> (see docs/dashboard.md).</p>
</body></html>"""


class CachedStatic(StaticFiles):
    """Vendored assets, revalidated on every load (`no-cache` + the ETag/Last-Modified StaticFiles sends: a 304
    when unchanged), so a browser never runs an old mix of ES modules after an upgrade."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = "no-cache"
        return response


def dashboard_app(config: AisreConfig, store: SQLiteStore, clock: Clock = SYSTEM_CLOCK, live: Any = None) -> Starlette:
    """The dashboard over `store` (the gateway passes itself as `live`: route weights and breakers in force)."""
    data = DashboardData(config, store, clock=clock, live=live)
    access = DashboardAccess(config.auth.admin_key)
    api = DashboardApi(data, access)

    async def index(request: Request) -> Response:
        page = STATIC_DIR / "index.html"
        if page.is_file():
            return FileResponse(page, media_type="text/html", headers={"Cache-Control": "no-cache"})
        return HTMLResponse(_PLACEHOLDER, headers={"Cache-Control": "no-cache"})

    async def login(request: Request) -> Response:
        body = await request.body()
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                key = str(orjson.loads(body).get("key") or "")
            except (orjson.JSONDecodeError, AttributeError):
                return error(400, 'key: expected a JSON object {"key": "<admin key>"}', "key")
        else:
            key = (parse_qs(body.decode("utf-8", "replace")).get("key") or [""])[0]
        if not access.required:
            return RedirectResponse(f"{PATH}/", status_code=303)
        if not access.key_matches(key):
            return error(401, "authorization: that is not the admin key", "authorization")
        response = RedirectResponse(f"{PATH}/", status_code=303)
        secure = request.url.scheme == "https"
        response.set_cookie(COOKIE, access.session_token(), path=PATH, httponly=True, samesite="strict", secure=secure)
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse(f"{PATH}/", status_code=303)
        response.delete_cookie(COOKIE, path=PATH)
        return response

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}", "path")

    app = Starlette(
        exception_handlers={HTTPException: not_found},
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/logout", logout, methods=["POST"]),
            Mount("/api/v1", routes=api.routes()),
            Mount("/static", app=CachedStatic(directory=STATIC_DIR, check_dir=False)),
        ],
    )
    app.state.data = data
    return app


class Prefixed:
    """Serve `app` under `PATH` in a process of its own (`aisre dashboard`): `/` and `/dashboard` redirect."""

    def __init__(self, app: Starlette) -> None:
        self.outer = Starlette(
            routes=[
                Route("/", _to_dashboard, methods=["GET"]),
                Route(PATH, _to_dashboard, methods=["GET"]),
                Mount(PATH, app=app),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.outer(scope, receive, send)


async def _to_dashboard(request: Request) -> Response:
    return RedirectResponse(f"{PATH}/", status_code=307)


def mount_routes(app: Starlette) -> list[Any]:
    """The routes a host app adds to serve the dashboard at `PATH`."""
    return [Route(PATH, _to_dashboard, methods=["GET"]), Mount(PATH, app=app)]
