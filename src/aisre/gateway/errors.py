"""Gateway errors: one exception carrying the HTTP status and a message for the client,
rendered in the shape each protocol expects (OpenAI's error object, or OIP's {"error"})."""

from __future__ import annotations

import orjson
from starlette.responses import Response

_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "not_found_error", 413: "invalid_request_error", 429: "rate_limit_error",
                 502: "upstream_error", 503: "service_unavailable", 504: "timeout"}  # fmt: skip


class GatewayError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:  # fmt: skip
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


def openai_error(err: GatewayError) -> Response:
    body = {"error": {"message": err.message, "type": _OPENAI_TYPES.get(err.status, "api_error"),
                      "param": err.param, "code": err.code}}  # fmt: skip
    return Response(orjson.dumps(body), err.status, err.headers, media_type="application/json")


def oip_error(err: GatewayError) -> Response:
    return Response(orjson.dumps({"error": err.message}), err.status, err.headers, media_type="application/json")
