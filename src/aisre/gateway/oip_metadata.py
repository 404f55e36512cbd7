"""OIP model metadata of one version: what its responses really send, so a client can trust it.

In-process scikit-learn models are described from the estimator (`predict`'s datatype from its classes,
the same datatype responses are cast to); HTTP replicas describe themselves, and the gateway relays their
inputs and outputs under its own model name and versions.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from aisre.gateway.core import Gateway
from aisre.gateway.errors import GatewayError
from aisre.gateway.local import SklearnVersion
from aisre.gateway.upstream import HttpVersion

_DESCRIBED = ("platform", "inputs", "outputs", "parameters")


async def describe(gw: Gateway, name: str, version: str) -> dict[str, Any]:
    """`platform`, `inputs` and `outputs` of `name`/`version`; 502 when its replica cannot say."""
    backend = gw.versions.get((name, version))
    if isinstance(backend, SklearnVersion):
        return sklearn_metadata(backend)
    if isinstance(backend, HttpVersion):
        return await _replica_metadata(gw, backend, name, version)
    return {}


def sklearn_metadata(backend: SklearnVersion) -> dict[str, Any]:
    width = backend.n_features or -1
    outputs = [{"name": "predict", "datatype": backend.predict_datatype, "shape": [-1]}]
    if backend.has_proba:
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(backend.classes) or -1]})
    return {
        "platform": "sklearn",
        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, width]}],
        "outputs": outputs,
    }


async def _replica_metadata(gw: Gateway, backend: HttpVersion, name: str, version: str) -> dict[str, Any]:
    upstream = gw.config.models[name].versions[version].upstream_model or name
    path = f"/v2/models/{upstream}"
    deadline = time.monotonic() + gw.config.gateway.deadline_s
    reply = await backend.call(path, b"", deadline, method="GET")
    where = f"metadata of {name}/{version}: replica {reply.replica}"
    if reply.status != 200:
        detail = reply.body[:200].decode("utf-8", "replace")
        raise GatewayError(502, f"{where} answered {reply.status} to GET {path}: {detail}")
    try:
        doc = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not isinstance(doc.get("outputs"), list):
        raise GatewayError(502, f"{where} sent no OIP model metadata (an object with inputs and outputs) for {path}")
    return {key: doc[key] for key in _DESCRIBED if key in doc}
