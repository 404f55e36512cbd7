"""An Open Inference Protocol v2 (REST) mock server in front of an `OipModel`, with the OpenAI mock's faults."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route, request_response

from aisre._version import __version__
from aisre.gateway.oip_tensors import TensorError, decode_inputs, encode_outputs
from aisre.testing.control import control_routes, json_response
from aisre.testing.faults import injected_fault
from aisre.testing.oip_model import OipModel
from aisre.testing.settings import MockSettings
from aisre.testing.state import MockState, Tracked


def oip_error(status: int, message: str) -> Response:
    return json_response({"error": message}, status)


def _requested_outputs(body: dict[str, Any], model: OipModel) -> list[str]:
    requested = body.get("outputs")
    if requested is None:
        return []
    if not isinstance(requested, list):
        raise TensorError(f"outputs: expected a list of {{'name': ...}}, got {type(requested).__name__}")
    names = []
    for i, item in enumerate(requested):
        name = item.get("name") if isinstance(item, dict) else None
        if name not in model.output_names:
            raise TensorError(
                f"outputs[{i}].name: unknown output {name!r}; this model has {', '.join(model.output_names)}"
            )
        names.append(name)
    return names


def oip_app(settings: MockSettings | None = None, model: OipModel | None = None) -> Starlette:
    """A Starlette app serving `model` as `settings.model` version `settings.version`; state at `app.state.mock`."""
    state = MockState(settings or MockSettings())
    served = model or OipModel()

    def unknown(request: Request) -> Response | None:
        """404 unless the path names our model (and, when given, our version)."""
        name = request.path_params["name"]
        version = request.path_params.get("version")
        if name != state.settings.model:
            return oip_error(404, f"model {name!r} not found; this server serves {state.settings.model!r}")
        if version is not None and version != state.settings.version:
            return oip_error(404, f"model {name!r} has no version {version!r}; it has {state.settings.version!r}")
        return None

    async def server_metadata(request: Request) -> Response:
        return json_response({"name": "aisre-mock-oip", "version": __version__, "extensions": []})

    async def live(request: Request) -> Response:
        return json_response({"live": True})

    async def ready(request: Request) -> Response:
        ok = state.settings.healthy
        return json_response({"ready": ok}, 200 if ok else 503)

    async def model_metadata(request: Request) -> Response:
        if (missing := unknown(request)) is not None:
            return missing
        return json_response(served.metadata(state.settings.model, [state.settings.version]))

    async def model_ready(request: Request) -> Response:
        if (missing := unknown(request)) is not None:
            return missing
        ok = state.settings.healthy
        return json_response({"name": state.settings.model, "ready": ok}, 200 if ok else 503)

    async def infer(request: Request) -> Response:
        fault = await injected_fault(request, state, oip_error)
        if fault is not None:
            return fault
        if (missing := unknown(request)) is not None:
            return missing
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return oip_error(400, f"body: not JSON ({exc})")
        try:
            arrays = decode_inputs(body)
            wanted = _requested_outputs(body, served)
            features = served.features(arrays)
        except TensorError as exc:
            return oip_error(400, str(exc))
        request_id = body.get("id")
        try:
            outputs = await run_in_threadpool(served.run, features, wanted)
        except ValueError as exc:  # scikit-learn's way of saying the input does not fit the model
            return oip_error(400, f"predict: {exc}")
        return json_response(
            {
                "model_name": state.settings.model,
                "model_version": state.settings.version,
                "id": request_id if isinstance(request_id, str) else str(uuid.uuid4()),
                "parameters": {"mock_replica": state.settings.replica_id} if state.settings.replica_id else {},
                "outputs": encode_outputs(outputs),
            }
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return oip_error(exc.status_code, f"{exc.detail}: {request.method} {request.url.path}")

    def tracked(path: str) -> Route:
        return Route(path, Tracked(request_response(infer), state, path), methods=["POST"])

    routes = [
        Route("/v2", server_metadata, methods=["GET"]),
        Route("/v2/health/live", live, methods=["GET"]),
        Route("/v2/health/ready", ready, methods=["GET"]),
        Route("/v2/models/{name}", model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}", model_metadata, methods=["GET"]),
        Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
        Route("/v2/models/{name}/versions/{version}/ready", model_ready, methods=["GET"]),
        tracked("/v2/models/{name}/infer"),
        tracked("/v2/models/{name}/versions/{version}/infer"),
        *control_routes(state),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    app.state.mock = state
    return app
