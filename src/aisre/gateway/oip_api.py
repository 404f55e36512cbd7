"""The Open Inference Protocol v2 REST API (KServe / Triton / MLServer's wire format).

Versions are served by HTTP replicas speaking OIP or by scikit-learn estimators loaded
in-process. Every row of a request becomes an InferenceRecord (inputs by feature name,
prediction, class probabilities), so the monitor can test drift on gateway traffic.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aisre._version import __version__
from aisre.config.gateway import ModelConfig
from aisre.errors import ClientDisconnected
from aisre.gateway.core import Gateway
from aisre.gateway.disconnect import cancel_on_disconnect
from aisre.gateway.errors import GatewayError, oip_error
from aisre.gateway.local import SklearnVersion
from aisre.gateway.metrics import CANCELLED_STATUS_CLASS, REJECTED_REASONS
from aisre.gateway.oip_binary import HEADER
from aisre.gateway.oip_messages import (
    JSON_MEDIA_TYPE,
    InferRequest,
    parse_infer_request,
    predictions_and_scores,
    read_reply,
    render,
    reply_needs_rewrite,
    rewrite_reply,
    select_outputs,
)
from aisre.gateway.oip_metadata import describe
from aisre.gateway.oip_tensors import TensorError, as_datatype, feature_matrix
from aisre.gateway.requests import read_body
from aisre.gateway.upstream import HttpVersion
from aisre.records import InferenceRecord, Route, Status
from aisre.store.keys import KeyRecord


@dataclass
class Outcome:
    status: int
    body: bytes
    replica: str | None
    predictions: list[Any] | None = None
    scores: list[dict[str, float]] | None = None
    headers: dict[str, str] = field(default_factory=dict)  # Inference-Header-Content-Length of binary bodies
    media_type: str = JSON_MEDIA_TYPE


class OipApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    async def server_metadata(self, request: Request) -> Response:
        return JSONResponse({"name": "aisre", "version": __version__, "extensions": ["binary_tensor_data"]})

    async def live(self, request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(self, request: Request) -> Response:
        ready = all(
            self._version_ready(m, v) for (m, v) in self.gw.versions if self.gw.config.models[m].protocol == "oip"
        )
        return JSONResponse({"ready": ready}, 200 if ready else 503)

    def _version_ready(self, model: str, version: str) -> bool:
        backend = self.gw.versions.get((model, version))
        if isinstance(backend, HttpVersion):
            return backend.balancer.admitted_count() > 0
        return backend is not None

    async def model_metadata(self, request: Request) -> Response:
        try:
            name, config, version = self._lookup(request, self._caller(request))
        except GatewayError as err:
            return oip_error(err)
        versions = [version] if version else list(config.versions)
        meta: dict[str, Any] = {"name": name, "versions": versions, "platform": "aisre"}
        try:
            meta.update(await describe(self.gw, name, versions[0]))
        except GatewayError as err:
            return oip_error(err)
        return JSONResponse(meta)

    async def model_ready(self, request: Request) -> Response:
        try:
            name, config, version = self._lookup(request, self._caller(request))
        except GatewayError as err:
            return oip_error(err)
        ready = all(self._version_ready(name, v) for v in ([version] if version else config.versions))
        return JSONResponse({"name": name, "ready": ready}, 200 if ready else 503)

    def _caller(self, request: Request) -> KeyRecord | None:
        """The caller's key (401 without a valid one when auth is on), checked before anything else."""
        return self.gw.policies.authenticate(request.headers)

    def _lookup(self, request: Request, key: KeyRecord | None) -> tuple[str, ModelConfig, str | None]:
        """The model and pinned version named in the path; 403 first if the key may not use that name,
        and a 404 lists only the models the key may use."""
        name = request.path_params["name"]
        version = request.path_params.get("version")
        self.gw.policies.authorize(key, name)
        config = self.gw.config.models.get(name)
        if config is None:
            oip_models = (m for m, c in self.gw.config.models.items() if c.protocol == "oip")
            known = sorted(self.gw.policies.visible(key, oip_models))
            raise GatewayError(404, f"model '{name}' not found; this gateway serves {known}")
        if config.protocol != "oip":
            raise GatewayError(400, f"model '{name}' speaks the OpenAI API; send it to /v1/chat/completions")
        if version is not None and version not in config.versions:
            versions = list(config.versions)
            raise GatewayError(404, f"version '{version}' of model '{name}' not found; versions: {versions}")
        return name, config, version

    # -- inference ---------------------------------------------------------------------------
    async def infer(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            key = self._caller(request)  # before the body is read or the model looked up
            name, config, pinned = self._lookup(request, key)
            admission = await self.gw.policies.admit(key, name, config, None)
        except GatewayError as err:
            self.gw.metrics.rejected.labels(REJECTED_REASONS.get(err.status, "bad_request")).inc()
            return oip_error(err)
        charged: list[float | None] = [None]
        try:
            return await self._infer(request, name, config, pinned, admission, started, charged)
        finally:  # after the response: limits freed, spend charged
            self.gw.settle_later(admission, name, charged[0], None)

    async def _infer(
        self,
        request: Request,
        name: str,
        config: ModelConfig,
        pinned: str | None,
        admission: Any,
        started: float,
        charged: list[float | None],
    ) -> Response:
        g = self.gw.config.gateway
        try:
            body = await read_body(request, g.max_body_bytes, g.body_timeout_s)
            call = parse_infer_request(body, request.headers.get(HEADER))
        except GatewayError as err:
            self.gw.metrics.rejected.labels("bad_request").inc()
            return oip_error(err)
        deadline = time.monotonic() + g.deadline_s
        headers = request.headers
        parent = self.gw.trace_parent(headers)
        first = pinned or self.gw.routing.choose(name, self.gw.sticky_key(config, headers))
        chain = [(first, False)]
        if pinned is None:
            if self.gw.routing.breaker_open(name, first):
                chain = []
            chain += [(v, True) for v in self.gw.routing.models[name].fallbacks(first)]
        self.gw.metrics.in_flight.labels(name).inc()
        try:
            error = GatewayError(503, f"no version of '{name}' is available (breakers open)")
            for version, is_fallback in chain:
                route = self.gw.route_of(name, version, is_fallback)
                if is_fallback:
                    self.gw.metrics.fallbacks.labels(name, version).inc()
                t = time.perf_counter()
                try:  # a client that leaves meanwhile cancels the call (recorded as cancelled, counted as 499)
                    outcome = await cancel_on_disconnect(request.receive, self._run(name, version, call, deadline))
                except ClientDisconnected as gone:
                    self._record(
                        name,
                        version,
                        route,
                        call.inputs,
                        None,
                        started,
                        error=str(gone),
                        parent=parent,
                        key_id=admission.key_id,
                        cancelled=True,
                    )
                    self.gw.metrics.requests.labels(name, version, CANCELLED_STATUS_CLASS).inc()
                    return Response(status_code=499)  # nobody reads it
                except GatewayError as err:
                    self._record(
                        name,
                        version,
                        route,
                        call.inputs,
                        None,
                        started,
                        error=err.message,
                        parent=parent,
                        key_id=admission.key_id,
                    )
                    self.gw.metrics.upstream_errors.labels(name, version, str(err.status)).inc()
                    error = err
                    if err.status < 500:
                        break
                    continue
                upstream_s = time.perf_counter() - t
                cost = self.gw.policies.price(name, version, None, None) if outcome.status < 400 else None
                charged[0] = cost
                records = self._record(
                    name,
                    version,
                    route,
                    call.inputs,
                    outcome,
                    started,
                    parent=parent,
                    key_id=admission.key_id,
                    cost_usd=cost,
                )
                self._maybe_shadow(name, version, call)
                self.gw.metrics.requests.labels(name, version, f"{outcome.status // 100}xx").inc()
                overhead = max(0.0, time.perf_counter() - started - upstream_s)
                self.gw.metrics.overhead.labels(name).observe(overhead)
                reply_headers = {
                    "x-aisre-version": version,
                    "x-aisre-route": str(route),
                    "x-aisre-overhead-ms": f"{overhead * 1000:.3f}",
                }
                if records:
                    reply_headers["x-aisre-record-id"] = records[0].id
                reply_headers.update(admission.headers)
                reply_headers.update(outcome.headers)
                return Response(outcome.body, outcome.status, reply_headers, media_type=outcome.media_type)
            self.gw.metrics.requests.labels(name, first, f"{error.status // 100}xx").inc()
            return oip_error(error)
        finally:
            self.gw.metrics.in_flight.labels(name).dec()

    async def _run(self, name: str, version: str, call: InferRequest, deadline: float) -> Outcome:
        backend = self.gw.versions[(name, version)]
        if isinstance(backend, SklearnVersion):
            return await self._run_sklearn(backend, name, version, call)
        assert isinstance(backend, HttpVersion)
        upstream_name = self.gw.config.models[name].versions[version].upstream_model or name
        try:
            body = call.upstream_body
        except TensorError as exc:
            raise GatewayError(400, str(exc)) from None
        reply = await backend.call(f"/v2/models/{upstream_name}/infer", body, deadline)
        if reply.status != 200:
            return Outcome(reply.status, reply.body, reply.replica)
        where = f"upstream {name}/{version} ({reply.replica})"
        try:
            doc, arrays = read_reply(reply.body, reply.headers)
        except ValueError as exc:
            raise GatewayError(502, f"{where} returned an invalid OIP response ({exc})") from None
        predictions, scores = predictions_and_scores(arrays)
        if not reply_needs_rewrite(reply.headers, call.outputs):
            return Outcome(200, reply.body, reply.replica, predictions, scores)
        if arrays is None:
            raise GatewayError(502, f"{where} returned outputs that do not decode as OIP tensors")
        rendered = rewrite_reply(doc, arrays, call.outputs)
        return Outcome(200, rendered.body, reply.replica, predictions, scores, rendered.headers, rendered.media_type)

    async def _run_sklearn(self, backend: SklearnVersion, name: str, version: str, call: InferRequest) -> Outcome:
        try:
            X, _ = feature_matrix(call.inputs, backend.feature_names)
        except TensorError as exc:
            raise GatewayError(400, str(exc)) from None
        if backend.n_features is not None and X.shape[1] != backend.n_features:
            raise GatewayError(
                400,
                f"inputs: model {name}/{version} expects {backend.n_features} features per row, got {X.shape[1]}",
            )
        try:
            predictions, proba = await backend.predict(X)
        except (ValueError, TypeError) as exc:
            raise GatewayError(400, f"inputs rejected by {name}/{version}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a broken model must not take the gateway down
            raise GatewayError(502, f"model {name}/{version} failed: {type(exc).__name__}: {exc}") from None
        try:  # responses send the datatypes the metadata declares
            arrays = {"predict": as_datatype(predictions, backend.predict_datatype)}
            if proba is not None:
                arrays["predict_proba"] = as_datatype(proba, "FP64")
        except TensorError as exc:
            raise GatewayError(502, f"model {name}/{version} answered predict in an unexpected dtype: {exc}") from None
        try:
            selected = select_outputs(arrays, call.outputs, f"{name}/{version}")
        except TensorError as exc:
            raise GatewayError(400, str(exc)) from None
        doc = {"model_name": name, "model_version": version}
        if "id" in call.payload:  # echoed when given, as Triton does
            doc["id"] = call.payload["id"]
        rendered = render(doc, selected, call.outputs)
        scores = None
        if proba is not None:
            keys = [str(c) for c in backend.classes]
            scores = [dict(zip(keys, row, strict=False)) for row in proba.tolist()]
        predicted = arrays["predict"].tolist()
        return Outcome(200, rendered.body, None, predicted, scores, rendered.headers, rendered.media_type)

    def _record(
        self,
        name: str,
        version: str,
        route: Route,
        inputs: dict[str, np.ndarray],
        outcome: Outcome | None,
        started: float,
        error: str | None = None,
        parent: Any = None,
        key_id: str | None = None,
        cost_usd: float | None = None,
        cancelled: bool = False,
    ) -> list[InferenceRecord]:
        backend = self.gw.versions[(name, version)]
        feature_names = backend.feature_names if isinstance(backend, SklearnVersion) else []
        try:
            X, names = feature_matrix(inputs, feature_names)
            rows: list[dict[str, Any] | None] = [dict(zip(names, row, strict=False)) for row in X.tolist()]
        except TensorError:
            rows = [None]  # inputs that are not a feature matrix: one record, without inputs
        ok = error is None and outcome is not None and outcome.status < 400
        if error is None and outcome is not None and outcome.status >= 400:
            error = f"upstream answered {outcome.status}"
        latency = time.perf_counter() - started
        now = self.gw.clock.now()
        predictions = outcome.predictions if outcome is not None and outcome.predictions else []
        scores = outcome.scores if outcome is not None and outcome.scores else []
        records = [
            InferenceRecord(
                model=name,
                version=version,
                inputs=row,
                prediction=predictions[i] if i < len(predictions) else None,
                scores=scores[i] if i < len(scores) else None,
                route=route,
                status=Status.CANCELLED if cancelled else Status.OK if ok else Status.ERROR,
                error=error,
                latency_s=latency,
                replica=outcome.replica if outcome else None,
                ts=now,
                key_id=key_id,
                cost_usd=None if cost_usd is None else cost_usd / len(rows),
            )
            for i, row in enumerate(rows)
        ]
        self.gw.record_call(records, latency, parent)
        return records

    def _maybe_shadow(self, name: str, served: str, call: InferRequest) -> None:
        shadow = self.gw.routing.shadow_for(name, served)
        if shadow is not None and not self.gw.spawn(self._shadow(name, shadow, call)):
            self.gw.metrics.shadow.labels(name, shadow, "skipped").inc()

    async def _shadow(self, name: str, version: str, call: InferRequest) -> None:
        started = time.perf_counter()
        deadline = time.monotonic() + self.gw.config.gateway.deadline_s
        try:
            outcome = await self._run(name, version, call, deadline)
        except GatewayError as err:
            self._record(name, version, Route.SHADOW, call.inputs, None, started, error=err.message)
            self.gw.metrics.shadow.labels(name, version, "error").inc()
            return
        self._record(name, version, Route.SHADOW, call.inputs, outcome, started)
        self.gw.metrics.shadow.labels(name, version, "ok" if outcome.status < 400 else "error").inc()
