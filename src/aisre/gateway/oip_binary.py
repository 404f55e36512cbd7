"""The Open Inference Protocol's binary tensor data extension (KServe, Triton): raw tensor bytes after the JSON.

A body sent with `Inference-Header-Content-Length: N` holds its JSON header in the first N bytes and, after
it, the data of every tensor whose parameters carry `binary_data_size`, in the order the tensors are listed:
little-endian, row-major, no padding; BOOL one byte (0 or 1); BYTES each element as a 4-byte little-endian
length and then its bytes. `tritonclient.http` sends inputs this way unless told otherwise.

Byte-level only: the JSON side of a tensor lives in `oip_tensors`.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np

from aisre.errors import TensorError

HEADER = "inference-header-content-length"
BINARY_MEDIA_TYPE = "application/octet-stream"

# Wire dtypes: explicit little-endian, whatever the machine's order.
_WIRE: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype("u1"),
    "UINT8": np.dtype("u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_LENGTH = struct.Struct("<I")


def split_body(body: bytes, header_length: str | None) -> tuple[bytes, memoryview | None]:
    """(JSON header, binary part) of a body; the binary part is None when the header is absent."""
    if header_length is None:
        return body, None
    try:
        length = int(header_length)
    except ValueError:
        length = -1
    if not 0 < length <= len(body):
        raise TensorError(
            f"Inference-Header-Content-Length header: expected the size in bytes of the JSON at the start of "
            f"the body (1 to {len(body)}), got {header_length!r}"
        )
    return body[:length], memoryview(body)[length:]


class BinaryData:
    """The binary part of a body, taken tensor by tensor in the order the tensors are listed."""

    def __init__(self, data: bytes | memoryview | None) -> None:
        self._data = None if data is None else memoryview(data)
        self.offset = 0

    def take(self, size: int, where: str, name: str) -> memoryview:
        if self._data is None:
            raise TensorError(
                f"{where}.parameters.binary_data_size: input {name!r} is sent as binary data, but the request has "
                "no Inference-Header-Content-Length header saying where the JSON ends and the binary data starts"
            )
        left = len(self._data) - self.offset
        if size > left:
            raise TensorError(
                f"{where}.parameters.binary_data_size: {name!r} declares {size} bytes, but only {left} bytes of "
                "binary data are left in the body"
            )
        raw = self._data[self.offset : self.offset + size]
        self.offset += size
        return raw

    def finish(self, field: str) -> None:
        """Every byte must belong to a tensor: extra bytes mean some binary_data_size is too small."""
        if self._data is not None and self.offset != len(self._data):
            raise TensorError(
                f"{field}: the body carries {len(self._data)} bytes of binary data, but the binary_data_size "
                f"parameters of the {field} add up to {self.offset}"
            )


def array_from_bytes(raw: memoryview, datatype: str, shape: list[int], where: str, name: str) -> np.ndarray:
    """One tensor's binary data as an array of `shape`; BYTES elements are `str` when UTF-8, else `bytes`."""
    count = math.prod(shape)
    if datatype == "BYTES":
        values = _split_bytes(raw, where, name)
        if len(values) != count:
            raise TensorError(
                f"{where}.parameters.binary_data_size: {name!r} holds {len(values)} BYTES elements, "
                f"shape {shape} needs {count}"
            )
        array = np.empty(count, dtype=object)
        array[:] = [_text(v) for v in values]
        return array.reshape(shape)
    wire = _WIRE[datatype]
    needed = count * wire.itemsize
    if len(raw) != needed:
        raise TensorError(
            f"{where}.parameters.binary_data_size: {name!r} declares {len(raw)} bytes, but shape {shape} "
            f"of {datatype} needs {needed} bytes ({count} x {wire.itemsize})"
        )
    flat = np.frombuffer(raw, dtype=wire)
    if datatype == "BOOL":
        if flat.size and flat.max() > 1:
            index = int(np.flatnonzero(flat > 1)[0])
            raise TensorError(f"{where}: BOOL byte {int(flat[index])} at flat index {index}; expected 0 or 1")
        return flat.astype(np.bool_).reshape(shape)
    # A native-order copy: the array must not pin (or alias) the request body.
    return flat.astype(wire.newbyteorder("="), copy=True).reshape(shape)


def array_to_bytes(array: np.ndarray, datatype: str) -> bytes:
    """An array as the binary data of a `datatype` tensor (the inverse of `array_from_bytes`)."""
    if datatype == "BYTES":
        parts: list[bytes] = []
        for value in array.ravel().tolist():
            data = value if isinstance(value, bytes) else str(value).encode("utf-8")
            parts += (_LENGTH.pack(len(data)), data)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=_WIRE[datatype]).tobytes()


def _split_bytes(raw: memoryview, where: str, name: str) -> list[bytes]:
    values: list[bytes] = []
    offset, end = 0, len(raw)
    while offset < end:
        if end - offset < _LENGTH.size:
            raise TensorError(f"{where}: BYTES data of {name!r} ends inside an element's 4-byte length")
        (size,) = _LENGTH.unpack_from(raw, offset)
        offset += _LENGTH.size
        if size > end - offset:
            raise TensorError(
                f"{where}: BYTES element {len(values)} of {name!r} declares {size} bytes, only {end - offset} are left"
            )
        values.append(bytes(raw[offset : offset + size]))
        offset += size
    return values


def _text(value: bytes) -> str | bytes:
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value
