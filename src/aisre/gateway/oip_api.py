"""The Open Inference Protocol v2 REST API (KServe / Triton / MLServer's wire format).

Versions are served by HTTP replicas speaking OIP or by scikit-learn estimators loaded
in-process. Every row of a request becomes an InferenceRecord (inputs by feature name,
prediction, class probabilities), so the monitor can test drift on gateway traffic.
This module reads and renders OIP; choosing a version, fallback, records, shadows and
settling are the shared `pipeline.Pipeline`'s.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from aisre._version import __version__
from aisre.config.gateway import ModelConfig
from aisre.errors import ClientDisconnected
from aisre.gateway.core import Gateway
from aisre.gateway.errors import GatewayError, oip_error
from aisre.gateway.local import SklearnVersion
from aisre.gateway.metrics import REJECTED_REASONS
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
from aisre.gateway.pipeline import Answer, InferenceRequest, Pipeline
from aisre.gateway.requests import read_body
from aisre.gateway.upstream import HttpVersion
from aisre.store.keys import KeyRecord


class OipApi:
    """Decodes OIP requests for the shared `Pipeline` and encodes its answers (and errors) as OIP's."""

    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.pipeline = Pipeline(gateway)

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

    # -- inference: decode → pipeline → encode ------------------------------------------------
    async def infer(self, request: Request) -> Response:
        started = time.perf_counter()
        try:
            key = self._caller(request)  # before the body is read or the model looked up
            name, config, pinned = self._lookup(request, key)
            admission = await self.pipeline.admit(key, name, config, None)
        except GatewayError as err:
            self.gw.metrics.rejected.labels(REJECTED_REASONS.get(err.status, "bad_request")).inc()
            return oip_error(err)
        g = self.gw.config.gateway
        call = InferenceRequest(name, config, None, started, 0.0, admission, pinned=pinned, batched=True)
        try:
            try:
                body = await read_body(request, g.max_body_bytes, g.body_timeout_s)
                call.message = parse_infer_request(body, request.headers.get(HEADER))
            except GatewayError as err:
                self.gw.metrics.rejected.labels("bad_request").inc()
                return oip_error(err)
            call.deadline = time.monotonic() + g.deadline_s
            call.trace_parent = self.gw.trace_parent(request.headers)
            call.sticky_key = self.gw.sticky_key(config, request.headers)
            call.receive = request.receive
            try:
                served = await self.pipeline.serve(call, self)
            except GatewayError as err:
                return oip_error(err)
            except ClientDisconnected:
                return Response(status_code=499)  # recorded and counted where it happened; nobody reads it
            answer = served.answer
            return Response(
                answer.body,
                answer.status,
                {**served.headers, **answer.headers},
                media_type=answer.media_type or JSON_MEDIA_TYPE,
            )
        finally:  # after the response: limits freed, spend charged
            self.pipeline.settle(call)

    # -- the pipeline's ProtocolAdapter -------------------------------------------------------
    async def call(self, request: InferenceRequest, version: str) -> Answer:
        """One version: an HTTP replica's answer relayed (rewritten only when the caller asked for
        other outputs or forms), or an in-process model's rendered."""
        name = request.model
        message: InferRequest = request.message
        backend = self.gw.versions[(name, version)]
        if isinstance(backend, SklearnVersion):
            return await self._run_sklearn(backend, name, version, message)
        assert isinstance(backend, HttpVersion)
        upstream_name = request.config.versions[version].upstream_model or name
        try:
            body = message.upstream_body
        except TensorError as exc:
            raise GatewayError(400, str(exc)) from None
        reply = await backend.call(f"/v2/models/{upstream_name}/infer", body, request.deadline)
        if reply.status != 200:
            return Answer(reply.status, reply.replica, reply.attempts, reply.body, JSON_MEDIA_TYPE)
        where = f"upstream {name}/{version} ({reply.replica})"
        try:
            doc, arrays = read_reply(reply.body, reply.headers)
        except ValueError as exc:
            raise GatewayError(502, f"{where} returned an invalid OIP response ({exc})") from None
        outputs = predictions_and_scores(arrays)
        if not reply_needs_rewrite(reply.headers, message.outputs):
            return Answer(200, reply.replica, reply.attempts, reply.body, JSON_MEDIA_TYPE, data=outputs)
        if arrays is None:
            raise GatewayError(502, f"{where} returned outputs that do not decode as OIP tensors")
        rendered = rewrite_reply(doc, arrays, message.outputs)
        return Answer(
            200, reply.replica, reply.attempts, rendered.body, rendered.media_type, rendered.headers, data=outputs
        )

    def rows(self, request: InferenceRequest, version: str, answer: Answer | None) -> list[dict[str, Any]]:
        """One record per input row (its features by name, its prediction and class scores); inputs
        that are not a feature matrix make one record without inputs."""
        backend = self.gw.versions[(request.model, version)]
        feature_names = backend.feature_names if isinstance(backend, SklearnVersion) else []
        try:
            X, names = feature_matrix(request.message.inputs, feature_names)
            inputs: list[dict[str, Any] | None] = [dict(zip(names, row, strict=False)) for row in X.tolist()]
        except TensorError:
            inputs = [None]
        predictions, scores = answer.data if answer is not None and answer.data is not None else (None, None)
        predictions, scores = predictions or [], scores or []
        return [
            {
                "inputs": row,
                "prediction": predictions[i] if i < len(predictions) else None,
                "scores": scores[i] if i < len(scores) else None,
            }
            for i, row in enumerate(inputs)
        ]

    def shadow_message(self, request: InferenceRequest) -> InferRequest:
        return request.message

    def call_rule(self, request: InferenceRequest, version: str, rule: Any) -> Answer:
        """A breaker's fallback rule: `rule(rows)` gets the rows as the records show them (feature name
        -> value) and returns one prediction per row, sent as the `predict` output."""
        name = request.model
        rows = [r["inputs"] or {} for r in self.rows(request, version, None)]
        predictions = list(rule(rows))
        if len(predictions) != len(rows):
            raise GatewayError(
                502, f"fallback rule for {name}/{version} returned {len(predictions)} predictions for {len(rows)} rows"
            )
        datatype = _datatype_of(predictions)
        try:
            arrays = {
                "predict": as_datatype(np.asarray(predictions, dtype=object if datatype == "BYTES" else None), datatype)
            }
            selected = select_outputs(arrays, request.message.outputs, f"{name}/{version}")
        except TensorError as exc:
            raise GatewayError(400, f"{exc} (the fallback rule answers `predict` only)") from None
        doc = {"model_name": name, "model_version": version}
        if "id" in request.message.payload:
            doc["id"] = request.message.payload["id"]
        rendered = render(doc, selected, request.message.outputs)
        return Answer(200, None, 1, rendered.body, rendered.media_type, rendered.headers, data=(predictions, None))

    async def _run_sklearn(self, backend: SklearnVersion, name: str, version: str, call: InferRequest) -> Answer:
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
        return Answer(200, None, 1, rendered.body, rendered.media_type, rendered.headers, data=(predicted, scores))


def _datatype_of(values: list[Any]) -> str:
    """The OIP datatype of a rule's predictions: INT64, FP64, BOOL or BYTES (text)."""
    if all(isinstance(v, bool) for v in values):
        return "BOOL"
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return "FP64"
    return "BYTES"
