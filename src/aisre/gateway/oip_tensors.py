"""Open Inference Protocol v2 tensors: JSON <-> numpy, with errors that name the bad field.

Request inputs are `{"name", "shape", "datatype", "data"}` with `data` flat or nested in
row-major order; outputs are encoded the same way, flat.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from aisre.gateway.errors import GatewayError

DTYPES: dict[str, Any] = {
    "BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32, "UINT64": np.uint64,
    "INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64, "FP16": np.float16,
    "FP32": np.float32, "FP64": np.float64, "BYTES": object,
}  # fmt: skip


def _bad(field: str, message: str) -> GatewayError:
    return GatewayError(400, f"{field}: {message}")


def decode_inputs(payload: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The request's input tensors by name, each reshaped to its declared shape."""
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise _bad("inputs", "expected a non-empty list of tensors ({name, shape, datatype, data})")
    out: dict[str, np.ndarray] = {}
    for i, tensor in enumerate(inputs):
        where = f"inputs[{i}]"
        if not isinstance(tensor, dict):
            raise _bad(where, f"expected an object, got {type(tensor).__name__}")
        name = tensor.get("name")
        if not isinstance(name, str) or not name:
            raise _bad(f"{where}.name", "expected a non-empty string")
        if name in out:
            raise _bad(f"{where}.name", f"duplicate input name {name!r}")
        shape = tensor.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                                  for d in shape):  # fmt: skip
            raise _bad(f"{where}.shape", f"expected a list of non-negative integers, got {shape!r}")
        datatype = tensor.get("datatype")
        if datatype not in DTYPES:
            raise _bad(f"{where}.datatype", f"expected one of {sorted(DTYPES)}, got {datatype!r}")
        if "data" not in tensor:
            raise _bad(f"{where}.data", "missing")
        try:
            flat = np.asarray(tensor["data"], dtype=DTYPES[datatype]).reshape(-1)
        except (ValueError, TypeError, OverflowError) as exc:
            raise _bad(f"{where}.data", f"values do not fit datatype {datatype}: {exc}") from None
        expected = int(np.prod(shape)) if shape else 1
        if flat.size != expected:
            raise _bad(f"{where}.shape", f"product {expected} does not match {flat.size} values in data")
        out[name] = flat.reshape(shape)
    return out


def datatype_of(array: np.ndarray) -> str:
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind == "b":
        return "BOOL"
    if kind in "iu":
        return f"{'INT' if kind == 'i' else 'UINT'}{size * 8}"
    if kind == "f":
        return f"FP{size * 8}"
    return "BYTES"


def encode_output(name: str, array: np.ndarray) -> dict[str, Any]:
    array = np.asarray(array)
    datatype = datatype_of(array)
    data = array.reshape(-1).tolist() if datatype != "BYTES" else [str(v) for v in array.reshape(-1).tolist()]
    return {"name": name, "shape": list(array.shape), "datatype": datatype, "data": data}


def feature_matrix(inputs: Mapping[str, np.ndarray], feature_names: list[str]) -> tuple[np.ndarray, list[str]]:
    """A rows x features matrix from the inputs: one 2-D tensor, or one 1-D tensor per feature
    (ordered by the model's feature names when they all match)."""
    if len(inputs) == 1:
        (name, tensor), = inputs.items()
        if tensor.ndim == 1:
            tensor = tensor.reshape(-1, 1) if feature_names and len(feature_names) == 1 else tensor.reshape(1, -1)
        if tensor.ndim != 2:
            raise _bad("inputs[0].shape", f"expected [rows, features], got {list(tensor.shape)}")
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
            raise _bad(f"inputs[{i}].shape", f"input {name!r} has {column.size} rows; others have {rows}")
        columns.append(column)
    return np.column_stack(columns), order
