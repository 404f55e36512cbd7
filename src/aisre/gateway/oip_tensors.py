"""Open Inference Protocol v2 tensors ↔ numpy arrays: pure functions, errors name the bad field.

Used by the gateway (requests, in-process models) and by the OIP mock server in `aisre.testing`.

A tensor is `{"name", "shape", "datatype", "data"}`; `data` is flat (row-major) or nested to any
depth. BYTES tensors carry JSON strings and decode to object arrays of `str`. A tensor whose
`parameters.binary_data_size` is set has no `data`: its values follow the JSON (see `oip_binary`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from aisre.errors import TensorError
from aisre.gateway.oip_binary import BinaryData, array_from_bytes, array_to_bytes

DATATYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
_BY_DTYPE = {dtype: name for name, dtype in DATATYPES.items() if name != "BYTES"}


def decode_inputs(payload: Any, binary: bytes | memoryview | None = None) -> dict[str, np.ndarray]:
    """The `inputs` of an inference request as arrays shaped as declared, in request order; `binary` is the
    body after the JSON header (None: the request had no Inference-Header-Content-Length)."""
    return _decode_list(payload, "inputs", binary)


def decode_outputs(payload: Any, binary: bytes | memoryview | None = None) -> dict[str, np.ndarray]:
    """The `outputs` of an inference response as arrays (the client side of `encode_outputs`)."""
    return _decode_list(payload, "outputs", binary)


def encode_outputs(arrays: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Arrays (or anything `np.asarray` takes) as OIP tensors with flat `data`."""
    return [encode_tensor(name, value) for name, value in arrays.items()]


encode_inputs = encode_outputs  # the same shape on the request side


def datatype_of(dtype: np.dtype[Any]) -> str:
    """The OIP datatype name of a numpy dtype; strings, bytes and objects are BYTES."""
    if dtype.kind in "OUS":
        return "BYTES"
    try:
        return _BY_DTYPE[dtype.newbyteorder("=")]
    except KeyError:
        raise TensorError(f"dtype {dtype} has no Open Inference Protocol datatype") from None


def as_datatype(value: Any, datatype: str) -> np.ndarray:
    """`value` as an array of `datatype`'s dtype, so a response sends the datatype metadata declared."""
    array = np.asarray(value)
    if datatype == "BYTES":
        return array if array.dtype.kind in "OUS" else array.astype(object)
    if array.dtype == DATATYPES[datatype]:
        return array
    try:
        return array.astype(DATATYPES[datatype])
    except (TypeError, ValueError) as exc:
        raise TensorError(f"cannot send dtype {array.dtype} as {datatype}: {exc}") from None


def encode_binary_tensor(name: str, value: Any) -> tuple[dict[str, Any], bytes]:
    """An array as an OIP tensor with `parameters.binary_data_size`, and the bytes that follow the JSON."""
    array = np.asarray(value)
    try:
        datatype = datatype_of(array.dtype)
    except TensorError as exc:
        raise TensorError(f"{name}: {exc}") from None
    raw = array_to_bytes(array, datatype)
    tensor = {"name": name, "datatype": datatype, "shape": list(array.shape)}
    return {**tensor, "parameters": {"binary_data_size": len(raw)}}, raw


def encode_tensor(name: str, value: Any) -> dict[str, Any]:
    array = np.asarray(value)
    try:
        datatype = datatype_of(array.dtype)
    except TensorError as exc:
        raise TensorError(f"{name}: {exc}") from None
    flat = array.ravel()
    if datatype == "BYTES":
        data = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in flat.tolist()]
    else:
        data = flat.tolist()
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


def _decode_list(payload: Any, field: str, binary: bytes | memoryview | None) -> dict[str, np.ndarray]:
    if not isinstance(payload, Mapping):
        raise TensorError(f"body: expected a JSON object with '{field}', got {type(payload).__name__}")
    if field not in payload:
        raise TensorError(f"{field}: required (a list of tensors)")
    tensors = payload[field]
    if not isinstance(tensors, list) or not tensors:
        raise TensorError(f"{field}: expected a non-empty list of tensors, got {_show(tensors)}")
    arrays: dict[str, np.ndarray] = {}
    data = BinaryData(binary)
    for i, tensor in enumerate(tensors):
        where = f"{field}[{i}]"
        name, array = decode_tensor(tensor, where, data)
        if name in arrays:
            raise TensorError(f"{where}.name: duplicate tensor name {name!r}")
        arrays[name] = array
    data.finish(field)
    return arrays


def decode_tensor(tensor: Any, where: str = "tensor", binary: BinaryData | None = None) -> tuple[str, np.ndarray]:
    """One OIP tensor → (name, array); `where` prefixes error messages; a tensor with
    `parameters.binary_data_size` takes its values from `binary`."""
    if not isinstance(tensor, Mapping):
        raise TensorError(f"{where}: expected an object with name, shape, datatype, data; got {_show(tensor)}")
    for key in ("name", "shape", "datatype"):
        if key not in tensor:
            raise TensorError(f"{where}.{key}: required")
    name, shape, datatype = tensor["name"], tensor["shape"], tensor["datatype"]
    if not isinstance(name, str) or not name:
        raise TensorError(f"{where}.name: expected a non-empty string, got {_show(name)}")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise TensorError(f"{where}.shape: expected a list of non-negative integers, got {_show(shape)}")
    if datatype not in DATATYPES:
        raise TensorError(f"{where}.datatype: unknown {_show(datatype)}; expected one of {', '.join(DATATYPES)}")
    size = binary_data_size(tensor, where)
    if size is not None:
        if "data" in tensor:
            raise TensorError(f"{where}: {name!r} has both 'data' and parameters.binary_data_size; send one of them")
        raw = (binary or BinaryData(None)).take(size, where, name)
        return name, array_from_bytes(raw, datatype, shape, where, name)
    if "data" not in tensor:
        raise TensorError(f"{where}.data: required (or parameters.binary_data_size with binary data after the JSON)")
    data = tensor["data"]
    if not isinstance(data, list):
        data = [data]  # a scalar is accepted as one value
    if datatype == "BYTES":
        array = _bytes_array(data, where)
    else:
        array = _numeric_array(data, datatype, where)
    expected = math.prod(shape)
    if array.size != expected:
        raise TensorError(f"{where}.shape: product {expected} does not match {array.size} values")
    return name, array.reshape(shape)


def binary_data_size(tensor: Mapping[str, Any], where: str) -> int | None:
    """The tensor's `parameters.binary_data_size` (None when its data is JSON)."""
    parameters = tensor.get("parameters")
    if parameters is None:
        return None
    if not isinstance(parameters, Mapping):
        raise TensorError(f"{where}.parameters: expected an object, got {_show(parameters)}")
    size = parameters.get("binary_data_size")
    if size is not None and not (_is_int(size) and size >= 0):
        raise TensorError(f"{where}.parameters.binary_data_size: expected a byte count >= 0, got {_show(size)}")
    return size


def _numeric_array(data: list[Any], datatype: str, where: str) -> np.ndarray:
    target = DATATYPES[datatype]
    try:
        raw = np.asarray(data)
    except (ValueError, OverflowError):
        raise TensorError(f"{where}.data: nested lists are ragged; expected a flat list or equal-length rows") from None
    if raw.dtype.kind not in "biuf" and raw.size:
        index, value = _first(data, lambda v: isinstance(v, bool | int | float))
        if value is _RAGGED:
            raise TensorError(f"{where}.data: nested lists are ragged, or integers exceed 64 bits")
        raise TensorError(f"{where}.data: expected {datatype} numbers, got {_show(value)} at flat index {index}")
    if target.kind == "b":
        if raw.dtype.kind != "b" and raw.size and not np.isin(raw, (0, 1)).all():
            index = int(np.flatnonzero(~np.isin(raw.ravel(), (0, 1)))[0])
            value = raw.ravel()[index].item()
            raise TensorError(f"{where}.data: expected BOOL values, got {value!r} at flat index {index}")
        return raw.astype(target)
    if target.kind in "iu" and raw.size:
        flat = raw.ravel()
        if raw.dtype.kind == "f":
            bad = ~np.isfinite(flat) | (flat != np.floor(flat))
            if bad.any():
                index = int(np.flatnonzero(bad)[0])
                value = flat[index].item()
                raise TensorError(f"{where}.data: expected {datatype} integers, got {value!r} at flat index {index}")
        info = np.iinfo(target)
        out_of_range = (flat < info.min) | (flat > info.max)
        if out_of_range.any():
            index = int(np.flatnonzero(out_of_range)[0])
            raise TensorError(
                f"{where}.data: value {flat[index].item()!r} at flat index {index} is out of range for "
                f"{datatype} [{info.min}, {info.max}]"
            )
    return raw.astype(target)


def _bytes_array(data: list[Any], where: str) -> np.ndarray:
    values = list(_flatten(data))
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise TensorError(f"{where}.data: expected BYTES as strings, got {_show(value)} at flat index {index}")
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


_RAGGED = object()


def _flatten(data: Any) -> Iterator[Any]:
    for item in data:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


def _first(data: list[Any], ok: Any) -> tuple[int, Any]:
    """(flat index, value) of the first element that fails `ok`; `_RAGGED` when every leaf is fine."""
    for index, value in enumerate(_flatten(data)):
        if not ok(value):
            return index, value
    return -1, _RAGGED


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def feature_matrix(inputs: Mapping[str, np.ndarray], feature_names: list[str]) -> tuple[np.ndarray, list[str]]:
    """A rows x features matrix from the inputs: one 2-D tensor, or one 1-D tensor per feature
    (ordered by the model's feature names when they all match)."""
    if len(inputs) == 1:
        ((name, tensor),) = inputs.items()
        if tensor.ndim == 1:
            tensor = tensor.reshape(-1, 1) if feature_names and len(feature_names) == 1 else tensor.reshape(1, -1)
        if tensor.ndim != 2:
            raise TensorError(f"inputs[0].shape: expected [rows, features], got {list(tensor.shape)}")
        names = feature_names if len(feature_names) == tensor.shape[1] else [f"x{i}" for i in range(tensor.shape[1])]
        return tensor, names
    order = feature_names if feature_names and set(feature_names) == set(inputs) else list(inputs)
    columns = []
    rows = None
    for i, name in enumerate(order):
        column = inputs[name].reshape(-1)
        if rows is None:
            rows = column.size
        elif column.size != rows:
            raise TensorError(f"inputs[{i}].shape: input {name!r} has {column.size} rows; others have {rows}")
        columns.append(column)
    return np.column_stack(columns), order
