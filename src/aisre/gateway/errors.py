"""Gateway errors: one exception carrying the HTTP status and a message for the client,
rendered in the shape each protocol expects (OpenAI's error object, or OIP's {"error"})."""

from __future__ import annotations

import orjson
from starlette.responses import Response

from aisre.errors import GatewayError

__all__ = ["GatewayError", "oip_error", "openai_error"]

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    408: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout",
}


def openai_error(err: GatewayError) -> Response:
    body = {
        "error": {
            "message": err.message,
            "type": _OPENAI_TYPES.get(err.status, "api_error"),
            "param": err.param,
            "code": err.code,
        }
    }
    return Response(orjson.dumps(body), err.status, err.headers, media_type="application/json")


def oip_error(err: GatewayError) -> Response:
    return Response(orjson.dumps({"error": err.message}), err.status, err.headers, media_type="application/json")
