"""A JSON-lines sink: one JSON object per inference, for people who ship logs to a collector."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import BinaryIO

from aisre.errors import StoreError
from aisre.records import InferenceRecord
from aisre.store.codec import record_to_json_line


class JsonlSink:
    """Appends records to a file (or stdout with '-'); each line is a complete JSON object.

    Example line: {"timestamp":"2026-11-27T15:41:49.123Z","model":"fraud","version":"v1",
    "id":"...","input":{"amount":12.5},"prediction":0,...}
    """

    def __init__(self, path: str | os.PathLike[str] | BinaryIO) -> None:
        self._owned = False
        if path == "-":
            self._out: BinaryIO = sys.stdout.buffer
        elif hasattr(path, "write"):
            self._out = path  # type: ignore[assignment]
        else:
            try:
                self._out = open(path, "ab")  # noqa: SIM115 - held open for the sink's life
            except OSError as exc:
                raise StoreError(f"cannot open JSON-lines log {path}: {exc}") from None
            self._owned = True
        self.path = path

    def write_batch(self, records: Sequence[InferenceRecord], durable: bool = False) -> None:
        self._out.write(b"".join(record_to_json_line(r) for r in records))
        self._out.flush()
        if durable and self._owned:
            os.fsync(self._out.fileno())

    def close(self) -> None:
        if self._owned:
            self._out.close()

    def __repr__(self) -> str:
        return f"JsonlSink({self.path!r})"
