"""Scoring a golden data set through a model version as the gateway serves it, timing every call.

Two kinds, as in `models:`: a scikit-learn file run in this process (loaded the gateway's way,
`aisre.config.checks.load_estimator`; `predict` and, when it has one, `predict_proba` on each call, as the
gateway's in-process backend does), or HTTP replicas spoken to over the Open Inference Protocol v2 REST
(`POST {replica}/v2/models/{upstream_model or model}/infer`, the path and headers the gateway sends,
calls spread round-robin over the replicas). Calls are made one at a time, so latency is the unloaded
latency of one call of `batch_size` rows:

- in process: the estimator's `predict` (+ `predict_proba`) wall time, no HTTP, no queueing;
- replicas: from writing the request to reading the response's last byte, on a kept-alive connection
  (request encoding and response decoding are outside the timer, as in the gateway's upstream timer).

One untimed warm-up call (the first batch) opens the connections and lets lazy initialisation happen,
so the first request's connect or page-in is not reported as the model's tail latency.

The HTTP client is the standard library's `http.client`: this package sits below the gateway and must not
import it, and one sequential connection per replica needs no pool. Its failures map onto the one error
tree (`ConnectFailed`, `ResponseTimeout`, `ConnectionBroken`, `ResponseTooLarge`, `UpstreamError`).
"""

from __future__ import annotations

import http.client
import time
import warnings
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import orjson

from aisre.config.checks import load_estimator
from aisre.errors import ConnectFailed, ConnectionBroken, DataError, ResponseTimeout, ResponseTooLarge, UpstreamError

_NUMERIC = {"BOOL": np.bool_, "FP16": np.float64, "FP32": np.float64, "FP64": np.float64}


@dataclass(frozen=True)
class Scored:
    """What the model answered for every row, and how long each call took.

    `proba`: (rows, classes) probabilities when the model gives them; `classes` names their columns when
    known (an in-process classifier's `classes_`), else None (then sorted order is assumed, as
    scikit-learn's `predict_proba` columns are). `latencies_s`: one entry per timed call.
    """

    predictions: np.ndarray
    proba: np.ndarray | None
    classes: list[Any] | None
    latencies_s: np.ndarray
    rows_per_call: int
    target: str
    measures: str
    artifact_sha256: str | None = None


def batches(n: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, n)) for start in range(0, n, size)]


class SklearnScorer:
    """A scikit-learn estimator in a joblib file (`models.M.versions.V.sklearn`)."""

    def __init__(self, path: str, where: str) -> None:
        self.path = path
        self.estimator = load_estimator(path, where)  # ConfigError naming `where` if unusable
        self.feature_names = [str(n) for n in getattr(self.estimator, "feature_names_in_", [])]
        self.n_features: int | None = getattr(self.estimator, "n_features_in_", None)
        classes = getattr(self.estimator, "classes_", None)
        self.classes = None if classes is None else [c.item() if hasattr(c, "item") else c for c in classes]
        self.has_proba = hasattr(self.estimator, "predict_proba")

    def _call(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        with warnings.catch_warnings():
            # Estimators fitted on DataFrames warn about bare arrays; the columns are in their order.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            predictions = np.asarray(self.estimator.predict(X))
            proba = np.asarray(self.estimator.predict_proba(X)) if self.has_proba else None
        return predictions, proba

    def score(self, X: np.ndarray, batch_size: int) -> Scored:
        parts = batches(len(X), batch_size)
        try:
            self._call(X[parts[0]])  # warm-up, untimed
            predictions, probas, latencies = [], [], []
            for part in parts:
                start = time.perf_counter()
                pred, proba = self._call(X[part])
                latencies.append(time.perf_counter() - start)
                predictions.append(pred)
                probas.append(proba)
        except (ValueError, TypeError) as exc:
            raise DataError(f"features: the model in {self.path} refused them: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a broken model file is the model's failure, reported, not a crash
            raise UpstreamError(f"the model in {self.path} failed: {type(exc).__name__}: {exc}") from None
        return Scored(
            np.concatenate(predictions),
            None if probas[0] is None else np.concatenate(probas),  # type: ignore[arg-type]
            self.classes,
            np.asarray(latencies),
            batch_size,
            f"in-process scikit-learn model {self.path}",
            "wall time of predict" + (" + predict_proba" if self.has_proba else "") + f" on {batch_size} row(s)",
            file_sha256(self.path),
        )


class OipScorer:
    """HTTP replicas over the Open Inference Protocol v2 REST (`models.M.versions.V.replicas`)."""

    def __init__(
        self,
        replicas: list[str],
        upstream_name: str,
        headers: dict[str, str] | None = None,
        timeout_s: float = 30.0,
        max_response_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self.replicas = list(replicas)
        self.path = f"/v2/models/{upstream_name}/infer"
        self.headers = {"content-type": "application/json", **(headers or {})}
        self.timeout_s = timeout_s
        self.max_response_bytes = max_response_bytes
        self._conns: dict[str, http.client.HTTPConnection] = {}

    def score(self, X: np.ndarray, batch_size: int) -> Scored:
        parts = batches(len(X), batch_size)
        try:
            for i in range(min(len(self.replicas), len(parts))):  # warm-up: one untimed call per replica
                self._infer(self.replicas[i], X[parts[0]])
            predictions, probas, latencies = [], [], []
            for i, part in enumerate(parts):
                pred, proba, elapsed = self._infer(self.replicas[i % len(self.replicas)], X[part])
                predictions.append(pred)
                probas.append(proba)
                latencies.append(elapsed)
        finally:
            self.close()
        has_proba = all(p is not None for p in probas)
        return Scored(
            np.concatenate(predictions),
            np.concatenate(probas) if has_proba else None,  # type: ignore[arg-type]
            None,
            np.asarray(latencies),
            batch_size,
            f"OIP replicas {', '.join(self.replicas)}",
            f"request written to last response byte, {batch_size} row(s) per request, one in flight, keep-alive",
        )

    def _infer(self, replica: str, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, float]:
        body = orjson.dumps(
            {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": list(X.shape), "data": X.ravel().tolist()}]}
        )
        conn = self._connection(replica)
        prefix = urlsplit(replica).path.rstrip("/")
        start = time.perf_counter()
        try:
            conn.request("POST", prefix + self.path, body, self.headers)
            response = conn.getresponse()
            data = response.read(self.max_response_bytes + 1)
        except TimeoutError:
            self._drop(replica)
            raise ResponseTimeout(f"{replica}: no complete response within {self.timeout_s:g} s") from None
        except (http.client.HTTPException, OSError) as exc:
            self._drop(replica)
            raise ConnectionBroken(
                f"{replica}: the connection failed mid-request ({type(exc).__name__}: {exc})"
            ) from None
        elapsed = time.perf_counter() - start
        if len(data) > self.max_response_bytes:
            self._drop(replica)
            raise ResponseTooLarge(f"{replica}: the response body exceeds {self.max_response_bytes} bytes")
        if response.status != 200:
            text = data[:300].decode("utf-8", "replace")
            raise UpstreamError(f"{replica}{self.path}: HTTP {response.status}: {text}")
        predictions, proba = read_outputs(data, f"{replica}{self.path}")
        if len(predictions) != len(X):
            raise UpstreamError(f"{replica}: {len(predictions)} predictions for {len(X)} rows")
        return predictions, proba, elapsed

    def _connection(self, replica: str) -> http.client.HTTPConnection:
        conn = self._conns.get(replica)
        if conn is not None:
            return conn
        parts = urlsplit(replica)
        kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = kind(parts.hostname or "", parts.port, timeout=self.timeout_s)
        try:
            conn.connect()
        except TimeoutError:
            raise ConnectFailed(f"{replica}: connect timeout after {self.timeout_s:g} s") from None
        except OSError as exc:
            raise ConnectFailed(f"{replica}: cannot connect ({exc.strerror or exc})") from None
        self._conns[replica] = conn
        return conn

    def _drop(self, replica: str) -> None:
        conn = self._conns.pop(replica, None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for replica in list(self._conns):
            self._drop(replica)


def read_outputs(body: bytes, where: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Predictions (the output named `predict`, else the first, as the gateway reads them) and probabilities
    (a 2-D numeric output whose name says `prob`) of an OIP JSON response."""
    try:
        doc = orjson.loads(body)
        outputs = {o["name"]: _tensor(o) for o in doc["outputs"]}
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise UpstreamError(f"{where}: not an OIP response with JSON outputs ({type(exc).__name__}: {exc})") from None
    if not outputs:
        raise UpstreamError(f"{where}: the response has no outputs")
    first = outputs.get("predict", next(iter(outputs.values())))
    predictions = first.reshape(first.shape[0], -1)[:, 0] if first.ndim > 1 else first
    proba = next(
        (a for name, a in outputs.items() if "prob" in name.lower() and a.ndim == 2 and a.dtype.kind in "biuf"), None
    )
    return predictions, None if proba is None else proba.astype(np.float64)


def _tensor(output: dict[str, Any]) -> np.ndarray:
    datatype, shape, data = output["datatype"], output["shape"], output["data"]
    if datatype == "BYTES":
        array = np.asarray(data, dtype=object)
    else:
        array = np.asarray(
            data, dtype=_NUMERIC.get(datatype, np.int64 if datatype.startswith(("INT", "UINT")) else None)
        )
    return array.reshape([int(s) for s in shape])


def file_sha256(path: str) -> str | None:
    """The SHA-256 of a file (which artifact was judged), or None if it cannot be read."""
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
    except OSError:
        return None
    return digest.hexdigest()
