"""Control routes of a mock server: read/merge settings, stats, recent requests, reset (`/_mock/*`)."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aisre.testing.state import MockState


def json_response(content: object, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def control_routes(state: MockState) -> list[Route]:
    """Routes that let a test switch failure modes at run time and count what the server received."""

    async def get_settings(request: Request) -> Response:
        return json_response(state.settings.as_dict())

    async def post_settings(request: Request) -> Response:
        try:
            changes = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return json_response({"error": f"body: not JSON ({exc})"}, 400)
        if not isinstance(changes, dict):
            return json_response({"error": "body: expected a JSON object of settings"}, 400)
        try:
            return json_response(state.update(changes).as_dict())
        except ValueError as exc:
            return json_response({"error": str(exc)}, 400)

    async def stats(request: Request) -> Response:
        return json_response(state.stats())

    async def recent(request: Request) -> Response:
        limit = int(request.query_params.get("limit", "0") or 0)
        items = [r.as_dict() for r in state.recent]
        return json_response(items[-limit:] if limit > 0 else items)

    async def reset(request: Request) -> Response:
        state.reset()
        return json_response(state.stats())

    return [
        Route("/_mock/settings", get_settings, methods=["GET"]),
        Route("/_mock/settings", post_settings, methods=["POST"]),
        Route("/_mock/stats", stats, methods=["GET"]),
        Route("/_mock/requests", recent, methods=["GET"]),
        Route("/_mock/reset", reset, methods=["POST"]),
    ]
