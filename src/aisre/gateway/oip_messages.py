"""An OIP inference call as the gateway sees it: what the request holds and asks for, and how answers are written.

A request body is JSON, or a JSON header followed by binary tensor data (`oip_binary`); either way it
becomes one `InferRequest`: the JSON payload, the input arrays, and which outputs come back in which form.
HTTP replicas are always sent JSON (docs/decisions.md: a replica needs no binary support, and the gateway
decodes every input anyway to record it), and their JSON answers are rewritten into binary outputs here
when the client asked for them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import orjson

from aisre.errors import GatewayError, TensorError
from aisre.gateway.oip_binary import BINARY_MEDIA_TYPE, HEADER, split_body
from aisre.gateway.oip_tensors import (
    binary_data_size,
    decode_inputs,
    decode_outputs,
    encode_binary_tensor,
    encode_tensor,
)
from aisre.gateway.requests import parse_json_object

JSON_MEDIA_TYPE = "application/json"


@dataclass(frozen=True)
class OutputRequest:
    """The `outputs` a request names (None: every output of the model) and which come back as binary data:
    an output's own `parameters.binary_data`, else the request's `parameters.binary_data_output`."""

    names: tuple[str, ...] | None = None
    binary_default: bool = False
    explicit: Mapping[str, bool] = field(default_factory=dict)
    classification: tuple[str, ...] = ()  # the outputs[i] that ask for class_count (Triton's classification)

    def binary(self, name: str) -> bool:
        return self.explicit.get(name, self.binary_default)

    @property
    def any_binary(self) -> bool:
        return self.binary_default or any(self.explicit.values())


@dataclass(frozen=True)
class InferRequest:
    payload: dict[str, Any]
    inputs: dict[str, np.ndarray]
    outputs: OutputRequest
    binary_inputs: tuple[str, ...] = ()  # names of the inputs that arrived as binary data

    @cached_property
    def upstream_body(self) -> bytes:
        """The JSON sent to HTTP replicas: binary inputs written as `data`, every output asked for as JSON.
        Raises TensorError when a binary input holds what JSON cannot carry (NaN, infinity, non-UTF-8 BYTES)."""
        if not self.binary_inputs and not self.outputs.any_binary:
            return orjson.dumps(self.payload)
        payload = dict(self.payload)
        payload["inputs"] = [self._json_input(i, tensor) for i, tensor in enumerate(self.payload["inputs"])]
        if isinstance(payload.get("outputs"), list):
            payload["outputs"] = [_without(out, "binary_data") for out in payload["outputs"]]
        payload = _without(payload, "binary_data_output")
        return orjson.dumps(payload)

    def _json_input(self, i: int, tensor: dict[str, Any]) -> dict[str, Any]:
        if binary_data_size(tensor, f"inputs[{i}]") is None:
            return tensor
        name = tensor["name"]
        array = self.inputs[name]
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise TensorError(
                f"inputs[{i}]: {name!r} holds NaN or infinity, which JSON cannot carry to the model's HTTP "
                "replicas; send finite values"
            )
        if array.dtype == object and any(isinstance(v, bytes) for v in array.ravel().tolist()):
            raise TensorError(
                f"inputs[{i}]: {name!r} holds BYTES that are not UTF-8, which JSON cannot carry to the model's "
                "HTTP replicas; send UTF-8 text"
            )
        json_tensor = _without(tensor, "binary_data_size")
        json_tensor["data"] = encode_tensor(name, array)["data"]
        return json_tensor


def parse_infer_request(body: bytes, header_length: str | None) -> InferRequest:
    """The request body (and its Inference-Header-Content-Length header) as an `InferRequest`; 400 naming the
    field otherwise."""
    try:
        head, binary = split_body(body, header_length)
    except TensorError as exc:
        raise GatewayError(400, str(exc)) from None
    what = "request body" if binary is None else f"inference header (the first {len(head)} bytes of the body)"
    try:
        payload = parse_json_object(head, what)
    except GatewayError as err:
        if binary is None and b"binary_data_size" in body:
            raise GatewayError(
                400,
                f"{err.message}; binary tensor data needs an Inference-Header-Content-Length header giving the "
                "size of the JSON before it",
            ) from None
        raise
    try:
        inputs = decode_inputs(payload, binary)
        outputs = output_request(payload)
    except TensorError as exc:
        raise GatewayError(400, str(exc)) from None
    binary_inputs = () if binary is None else _binary_names(payload["inputs"])
    return InferRequest(payload, inputs, outputs, binary_inputs)


def output_request(payload: Mapping[str, Any]) -> OutputRequest:
    parameters = payload.get("parameters")
    if parameters is not None and not isinstance(parameters, Mapping):
        raise TensorError(f"parameters: expected an object, got {type(parameters).__name__}")
    default = (parameters or {}).get("binary_data_output", False)
    if not isinstance(default, bool):
        raise TensorError(f"parameters.binary_data_output: expected true or false, got {default!r}")
    requested = payload.get("outputs")
    if requested is None or requested == []:
        return OutputRequest(None, default)
    if not isinstance(requested, list):
        raise TensorError(f'outputs: expected a list of {{"name": ...}} objects, got {type(requested).__name__}')
    names: list[str] = []
    explicit: dict[str, bool] = {}
    classification = []
    for i, item in enumerate(requested):
        where = f"outputs[{i}]"
        if not isinstance(item, Mapping):
            raise TensorError(f'{where}: expected an object {{"name": ...}}, got {type(item).__name__}')
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise TensorError(f"{where}.name: expected a non-empty string, got {name!r}")
        if name in names:
            raise TensorError(f"{where}.name: output {name!r} is asked for twice")
        params = item.get("parameters") or {}
        if not isinstance(params, Mapping):
            raise TensorError(f"{where}.parameters: expected an object, got {type(params).__name__}")
        flag = params.get("binary_data")
        if flag is not None:
            if not isinstance(flag, bool):
                raise TensorError(f"{where}.parameters.binary_data: expected true or false, got {flag!r}")
            explicit[name] = flag
        if params.get("class_count"):
            classification.append(where)
        names.append(name)
    return OutputRequest(tuple(names), default, explicit, tuple(classification))


def select_outputs(arrays: dict[str, np.ndarray], request: OutputRequest, model: str) -> dict[str, np.ndarray]:
    """The outputs the request names, in its order (all when it names none); 400 for an unknown name."""
    if request.classification:
        where = request.classification[0]
        raise TensorError(f"{where}.parameters.class_count: model {model} does not support classification outputs")
    if request.names is None:
        return arrays
    for i, name in enumerate(request.names):
        if name not in arrays:
            raise TensorError(f"outputs[{i}].name: unknown output {name!r}; model {model} has {', '.join(arrays)}")
    return {name: arrays[name] for name in request.names}


@dataclass(frozen=True)
class Rendered:
    body: bytes
    headers: dict[str, str]
    media_type: str


def render(doc: dict[str, Any], arrays: Mapping[str, np.ndarray], request: OutputRequest) -> Rendered:
    """A response: `doc` plus `arrays` as its outputs, each as JSON data or binary data as asked."""
    outputs, chunks = [], []
    for name, array in arrays.items():
        if request.binary(name):
            tensor, raw = encode_binary_tensor(name, array)
            chunks.append(raw)
        else:
            tensor = encode_tensor(name, array)
        outputs.append(tensor)
    return _assemble({**doc, "outputs": outputs}, chunks)


def read_reply(body: bytes, headers: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, np.ndarray] | None]:
    """A replica's answer (JSON, or binary if it chose so): the JSON header and the outputs as arrays (None
    when they cannot be decoded). Raises ValueError when it is no OIP response at all."""
    try:
        head, binary = split_body(body, headers.get(HEADER))
        doc = orjson.loads(head)
    except (TensorError, orjson.JSONDecodeError) as exc:
        raise ValueError(str(exc)) from None
    if not isinstance(doc, dict) or "outputs" not in doc:
        raise ValueError("no 'outputs'")
    try:
        return doc, decode_outputs(doc, binary)
    except TensorError:
        return doc, None


def rewrite_reply(doc: dict[str, Any], arrays: Mapping[str, np.ndarray], request: OutputRequest) -> Rendered:
    """A replica's answer re-written with each output in the form the client asked for (other fields kept)."""
    outputs, chunks = [], []
    for out in doc["outputs"]:
        name = out["name"]
        tensor = {k: v for k, v in _without(out, "binary_data_size").items() if k != "data"}
        if request.binary(name):
            encoded, raw = encode_binary_tensor(name, arrays[name])
            chunks.append(raw)
        else:
            encoded = encode_tensor(name, arrays[name])
        parameters = {**tensor.get("parameters", {}), **encoded.pop("parameters", {})}
        tensor.update(encoded)
        if parameters:
            tensor["parameters"] = parameters
        outputs.append(tensor)
    return _assemble({**doc, "outputs": outputs}, chunks)


def reply_needs_rewrite(headers: Mapping[str, str], request: OutputRequest) -> bool:
    return request.any_binary or HEADER in headers


def predictions_and_scores(
    arrays: Mapping[str, np.ndarray] | None,
) -> tuple[list[Any] | None, list[dict[str, float]] | None]:
    """Per-row predictions (the first output) and scores (a 2-D output named like probabilities)."""
    if not arrays:
        return None, None
    first = next(iter(arrays.values()))
    predictions = first.reshape(first.shape[0], -1)[:, 0].tolist() if first.ndim and first.shape[0] else None
    scores = None
    for name, array in list(arrays.items())[1:]:
        if "prob" in name.lower() and array.ndim == 2 and array.dtype.kind in "biuf":
            scores = [{str(i): p for i, p in enumerate(row)} for row in array.astype(float).tolist()]
    return predictions, scores


def _assemble(doc: dict[str, Any], chunks: list[bytes]) -> Rendered:
    head = orjson.dumps(doc)
    if not chunks:
        return Rendered(head, {}, JSON_MEDIA_TYPE)
    return Rendered(head + b"".join(chunks), {HEADER: str(len(head))}, BINARY_MEDIA_TYPE)


def _binary_names(tensors: list[dict[str, Any]]) -> tuple[str, ...]:
    return tuple(t["name"] for i, t in enumerate(tensors) if binary_data_size(t, f"inputs[{i}]") is not None)


def _without(obj: Mapping[str, Any], parameter: str) -> dict[str, Any]:
    """A copy of a tensor or request without one of its `parameters` (and without `parameters` left empty)."""
    copy = dict(obj)
    parameters = copy.get("parameters")
    if isinstance(parameters, Mapping) and parameter in parameters:
        rest = {k: v for k, v in parameters.items() if k != parameter}
        if rest:
            copy["parameters"] = rest
        else:
            del copy["parameters"]
    return copy
