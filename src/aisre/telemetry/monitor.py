"""`aisre.Monitor`: instrument a model in-process in three lines.

monitor = aisre.Monitor("fraud", "v1", store="sqlite:///aisre.db")
rid = monitor.record({"amount": 12.5}, prediction=0, latency_s=0.004)
monitor.label(rid, 1)          # when the truth arrives, minutes or weeks later
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config import AisreConfig, StoreConfig
from aisre.errors import InvalidRecordError
from aisre.records import InferenceRecord, Route, Status
from aisre.store import Store
from aisre.telemetry.metrics import Metrics
from aisre.telemetry.recorder import Recorder
from aisre.telemetry.tracing import SpanEmitter

F = TypeVar("F", bound=Callable[..., Any])
_INF = math.inf


class Call:
    """What a `with monitor.timed(...)` block fills in; `record_id` is set on exit."""

    __slots__ = ("inputs", "prediction", "scores", "output_text", "tags", "record_id", "fields")

    def __init__(self, inputs: Any, tags: dict[str, str] | None, fields: dict[str, Any]) -> None:
        self.inputs = inputs
        self.prediction: Any = None
        self.scores: Any = None
        self.output_text: str | None = None
        self.tags = tags
        self.record_id: str | None = None
        self.fields = fields


class Monitor:
    """Records the inferences of one model version.

    `store` is a URL (`sqlite:///aisre.db`) or a Store; or pass a shared `recorder` (one per
    process is best when several models are monitored) or a whole `config`. Spans go to
    `tracer_provider` when given (e.g. the one your service already uses).

    Not to be confused with `aisre.monitor` (lowercase), the statistics package that reads
    what this records (drift, performance, fairness...).
    """

    def __init__(
        self,
        model: str,
        version: str = "v1",
        store: str | Store | None = None,
        *,
        recorder: Recorder | None = None,
        config: AisreConfig | None = None,
        durability: str | None = None,
        tracer_provider: Any = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        for name, value in (("model", model), ("version", version)):
            if not isinstance(value, str) or not value:
                raise InvalidRecordError(f"{name}: expected a non-empty string, got {value!r}")
        self.model = model
        self.version = version
        self._owns_recorder = recorder is None
        if recorder is None:
            if config is None:
                store_cfg: dict[str, Any] = {}
                if isinstance(store, str):
                    store_cfg["url"] = store
                if durability is not None:
                    store_cfg["durability"] = durability
                config = AisreConfig(store=StoreConfig(**store_cfg))
            if store is not None and not isinstance(store, str):
                recorder = Recorder(
                    store,
                    metrics=Metrics(),
                    clock=clock,
                    durability=durability or config.store.durability,
                    spans=None
                    if tracer_provider is None
                    else SpanEmitter(tracer_provider, config.telemetry.tracing.log_content),
                )
            else:
                recorder = Recorder.from_config(config, clock, tracer_provider)
        self.recorder = recorder
        self.clock = recorder.clock

    @property
    def store(self) -> Store:
        return self.recorder.store

    def record(
        self,
        inputs: Any = None,
        prediction: Any = None,
        *,
        scores: Any = None,
        output_text: str | None = None,
        latency_s: float | None = None,
        route: Route | str = Route.PRIMARY,
        status: Status | str = Status.OK,
        error: str | None = None,
        operation: str = "predict",
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        ttft_s: float | None = None,
        tpot_s: float | None = None,
        cost_usd: float | None = None,
        key_id: str | None = None,
        trace_id: str | None = None,
        replica: str | None = None,
        tags: dict[str, str] | None = None,
        ts: float | None = None,
    ) -> str:
        """Record one finished inference; returns its id (keep it to attach a label later)."""
        if ts is None:
            ts = self.clock.now()
        r = InferenceRecord(
            model=self.model,
            version=self.version,
            inputs=inputs,
            prediction=prediction,
            scores=scores,
            output_text=output_text,
            operation=operation,
            # a str stays as given for a moment: the checks below name a bad one, then _check converts it
            route=cast(Route, route),
            status=cast(Status, status),
            error=error,
            latency_s=latency_s,
            ttft_s=ttft_s,
            tpot_s=tpot_s,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cost_usd=cost_usd,
            key_id=key_id,
            trace_id=trace_id,
            replica=replica,
            tags={} if tags is None else tags,
            ts=ts,
        )
        # Cheap checks first; the full, named diagnosis only when something looks wrong.
        if not (
            (latency_s is None or (type(latency_s) is float and 0.0 <= latency_s < _INF))
            and type(route) is Route
            and type(status) is Status
            and (tags is None or (type(tags) is dict and all(type(v) is str for v in tags.values())))
            and ttft_s is None
            and tpot_s is None
            and cost_usd is None
            and input_tokens is None
            and output_tokens is None
        ):
            _check(r)
        self.recorder.record(r)
        return r.id

    @contextmanager
    def timed(self, inputs: Any = None, *, tags: dict[str, str] | None = None, **fields: Any):
        """Time a block and record it; set `call.prediction` (or `scores`, `output_text`).

        An exception inside the block is recorded with status 'error' and re-raised.
        """
        call = Call(inputs, tags, fields)
        start = time.perf_counter()
        try:
            yield call
        except BaseException as exc:
            call.record_id = self.record(
                call.inputs,
                latency_s=time.perf_counter() - start,
                status=Status.ERROR,
                error=f"{type(exc).__name__}: {exc}",
                tags=call.tags,
                **call.fields,
            )
            raise
        call.record_id = self.record(
            call.inputs,
            call.prediction,
            scores=call.scores,
            output_text=call.output_text,
            latency_s=time.perf_counter() - start,
            tags=call.tags,
            **call.fields,
        )

    def track(self, fn: F) -> F:
        """Decorator: record each call's arguments (by name) and return value."""
        signature = inspect.signature(fn)
        names = [p for p in signature.parameters if p not in ("self", "cls")]

        def arguments(args: tuple, kwargs: dict) -> Any:
            # One parameter (say, a feature mapping): record its value; else a name->value map.
            try:
                bound = signature.bind(*args, **kwargs)
            except TypeError:
                return {"args": list(args), "kwargs": kwargs}
            bound.apply_defaults()
            values = {k: v for k, v in bound.arguments.items() if k in names}
            return values[names[0]] if len(names) == 1 else values

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with self.timed(arguments(args, kwargs)) as call:
                    call.prediction = await fn(*args, **kwargs)
                return call.prediction

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self.timed(arguments(args, kwargs)) as call:
                call.prediction = fn(*args, **kwargs)
            return call.prediction

        return wrapper  # type: ignore[return-value]

    def label(self, record_id: str, y_true: Any, ts: float | None = None) -> None:
        """Attach the true outcome to a recorded inference (UnknownRecordError if no such id)."""
        self.recorder.label(record_id, y_true, ts)

    def label_many(self, pairs: Any, ts: float | None = None) -> None:
        """Attach many labels at once: an iterable of (record_id, y_true)."""
        self.recorder.label_many(list(pairs), ts)

    def mark_trained(self, at: Any = None, *, all_versions: bool = False) -> None:
        """Record that this model version was trained at `at` (Unix seconds or a datetime; default now),
        for freshness SLOs (`aisre.slo.marks`). `all_versions` marks every version of the model."""
        self._mark("model_trained_at", at, all_versions)

    def mark_reference_refreshed(self, at: Any = None, *, all_versions: bool = False) -> None:
        """Record that this model's monitoring reference was refreshed at `at` (default now)."""
        self._mark("reference_refreshed_at", at, all_versions)

    def _mark(self, name: str, at: Any, all_versions: bool) -> None:
        from aisre.slo.marks import mark

        now = self.clock.now()
        mark(
            self.store,
            self.model,
            name,
            now if at is None else at,
            now=now,
            version=None if all_versions else self.version,
        )

    def serve_metrics(self, host: str = "127.0.0.1", port: int = 9464) -> str:
        """Serve Prometheus /metrics from a background thread; returns its URL."""
        return self.recorder.serve_metrics(host, port).url

    def flush(self, timeout: float | None = None) -> None:
        """Wait until everything recorded so far is in the store (spans are not waited for)."""
        self.recorder.flush(timeout)

    def flush_spans(self, timeout_s: float = 5.0) -> bool:
        """Wait up to `timeout_s` for the spans so far to be exported; True if they were."""
        return self.recorder.flush_spans(timeout_s)

    def close(self) -> None:
        if self._owns_recorder:
            self.recorder.close()
        else:
            self.recorder.flush()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check(r: InferenceRecord) -> None:
    problems = r.problems()
    if problems:
        raise InvalidRecordError("cannot record inference: " + "; ".join(problems))
    r.route = Route(r.route)
    r.status = Status(r.status)
    if isinstance(r.latency_s, int):
        r.latency_s = float(r.latency_s)
