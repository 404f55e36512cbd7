"""The one request pipeline both protocols share: admit → choose → call with fallback → record → shadow → settle.

A protocol module (`openai_api.py`, `oip_api.py`) only decodes its wire format into an
`InferenceRequest` (the model, its config, the deadline, the caller, and the protocol's own
decoded `message`, opaque here) and encodes what the pipeline hands back (`Served`, or a
`GatewayError`) in its own shape. What differs between protocols at a version is behind the
`ProtocolAdapter` it passes in: how to call one version (`call`) and which record fields one answer
gives (`rows`: one record per row, so an OIP batch of 100 rows is 100 records).

The stages, each a method here:

- admit (`admit`): budgets, then limits (policy.py); refused before any upstream is asked.
- choose (`choose`): the version (pinned, or weighted/sticky), then the fallback chain,
  de-duplicated, minus versions whose breaker is open.
- call with fallback (`serve`): each candidate in turn; a failure (or an answer that is no
  answer) is recorded and the next one tried; a 4xx of the gateway's own (bad inputs) ends it.
- record (`record`): the one place `InferenceRecord`s are built (route, status, cost, tokens,
  timings, tags).
- shadow (`shadow`): a sampled copy to the shadow version, recorded with route=shadow, never awaited;
  the request's and the shadow's records share the tag `request_id` (`PAIR_TAG`).
- settle (`settle`, `relay_ended`): after the response, limit slots freed, tokens reconciled,
  spend charged.

**The breaker seam.** `choose` asks `diverted(model, version)` before it offers a version; today
that is the breaker flags of `RoutingState` (set by the admin API or Redis). An AI circuit breaker
plugs in there (its per-version state decides), and a diverted request is served by the next
`Candidate` with `route=Route.FALLBACK`, which `record` writes on every record (the `route`
column, `x-aisre-route: fallback`); a `Candidate.reason` is written as the record tag
`fallback_reason`. A rule function as fallback is one more backend kind that `ProtocolAdapter.call`
can reach for a candidate (the versions table of `Gateway` is where it would live).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from aisre.config.gateway import ModelConfig
from aisre.errors import ClientDisconnected
from aisre.gateway.core import Gateway
from aisre.gateway.disconnect import cancel_on_disconnect
from aisre.gateway.errors import GatewayError
from aisre.gateway.metrics import CANCELLED_STATUS_CLASS
from aisre.records import InferenceRecord, Route, Status, new_record_id
from aisre.store.keys import KeyRecord

#: The tag that pairs a shadowed request's records with its shadow's (`respond/shadow.py` reads it); an
#: OIP request's rows add `.<row>` so each row pairs with its own.
PAIR_TAG = "request_id"


@dataclass
class InferenceRequest:
    """One client request in neutral terms, and what the pipeline learns about it on the way."""

    model: str
    config: ModelConfig
    message: Any  # the protocol's decoded request; only its Protocol reads it
    started: float  # perf_counter at arrival: latencies and overhead count from here
    deadline: float  # monotonic; every try of every version must end by then
    admission: Any = None
    operation: str = "predict"
    sticky_key: str | None = None
    pinned: str | None = None  # a version named by the caller (OIP's /versions/{v}): no choice, no fallback
    trace_parent: Any = None
    receive: Any = None  # the client's ASGI receive, to notice it leaving (None for shadows)
    streaming: bool = False
    batched: bool = False  # the records of one call share one span and one latency observation (OIP rows)
    tags: dict[str, str] = field(default_factory=dict)
    # learned on the way
    cost_usd: float | None = None  # what the caller is charged (settled after the response)
    used_tokens: int | None = None
    upstream_s: float = 0.0  # time spent waiting for upstreams, all versions tried
    relay_settles: bool = False  # a relayed stream records, counts out and settles when it ends

    @property
    def key_id(self) -> str | None:
        return self.admission.key_id if self.admission is not None else None


@dataclass(slots=True)
class Candidate:
    """A version to try and the route its records will carry; `reason` says why a fallback is tried."""

    version: str
    route: Route
    reason: str | None = None
    rule: str | None = None  # a fallback rule function (package.module:function) answers for `version`

    @property
    def served_by(self) -> str:
        """Who answered: the version, or `rule:package.module:function` for a breaker's rule (so a
        version's records, SLOs and monitors hold only what the version itself answered)."""
        return self.version if self.rule is None else f"rule:{self.rule}"


@dataclass
class Answer:
    """What one version answered. `body`, `media_type` and `headers` are sent to the client as they
    are; `rows` are per-record fields (inputs, prediction, scores, tokens, output text) the protocol
    read from it; `invalid` says the answer is no answer (e.g. not JSON): recorded as an error and
    the next version tried; `stream` is an open upstream stream (status 200) the protocol relays."""

    status: int
    replica: str | None
    attempts: int = 1
    body: bytes = b""
    media_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    data: Any = None  # the protocol's parsed answer, for its `rows`
    invalid: str | None = None
    stream: Any = None


@dataclass
class Served:
    """The answer the client gets, the version and route that gave it, its records and the gateway's headers."""

    candidate: Candidate
    answer: Answer
    records: list[InferenceRecord]
    headers: dict[str, str]


class ProtocolAdapter(Protocol):
    """What a protocol does for the pipeline at one version."""

    async def call(self, request: InferenceRequest, version: str) -> Answer:
        """Call `version` (an HTTP replica or an in-process model); GatewayError when it fails."""
        ...

    def rows(self, request: InferenceRequest, version: str, answer: Answer | None) -> list[dict[str, Any]]:
        """The record fields of each row (at least one row) of this request and its answer, if any."""
        ...

    def shadow_message(self, request: InferenceRequest) -> Any:
        """The decoded request to mirror to a shadow (e.g. without `stream`)."""
        ...

    def call_rule(self, request: InferenceRequest, version: str, rule: Any) -> Answer:
        """Answer with a breaker's fallback rule function, in this protocol's shape (see `aisre.respond.rules`)."""
        ...


class Pipeline:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway

    # -- admit -----------------------------------------------------------------------------
    async def admit(self, key: KeyRecord | None, model: str, config: ModelConfig, payload: Any) -> Any:
        """Budgets, then limits, for this caller and model (GatewayError 402/429 when refused)."""
        return await self.gw.policies.admit(key, model, config, payload)

    # -- choose ----------------------------------------------------------------------------
    def diverted(self, model: str, version: str) -> bool:
        """Whether `version` must not serve now: the breaker flags of the routing state (admin API,
        Redis, playbooks), or the version's AI circuit breaker (`gateway/breakers.py`: open, or
        half-open and this request not one of its probes)."""
        ai = self.gw.breakers.diverted(model, version)  # first: its own clock may turn it half-open (flag cleared)
        return ai or self.gw.routing.breaker_open(model, version)

    def _breaker_fallback(self, model: str, version: str, reason: str) -> list[Candidate]:
        """What the AI breaker of a diverted `version` sends its traffic to: its rule, or its fallback version."""
        fallback = self.gw.breakers.fallback_of(model, version)
        if fallback is None:
            return []
        if fallback.rule is not None:
            return [Candidate(version, Route.FALLBACK, reason, rule=fallback.rule)]
        if fallback.version is not None and not self.diverted(model, fallback.version):
            return [Candidate(fallback.version, Route.FALLBACK, reason)]
        return []

    def choose(self, request: InferenceRequest) -> tuple[str, list[Candidate]]:
        """The chosen version, and the versions to try in order: the chosen one (unless diverted), then
        the fallback chain minus diverted versions, each version once. A pinned version is tried
        alone, breaker or not (the caller asked for exactly that version)."""
        model = request.model
        if request.pinned is not None:
            return request.pinned, [Candidate(request.pinned, self.gw.route_of(model, request.pinned, False))]
        first = self.gw.routing.choose(model, request.sticky_key, self.gw.breakers.watched(model))
        route = self.gw.routing.models[model]
        if not route.fallback and not route.open_breakers and not self.gw.breakers:  # the common case, kept cheap
            return first, [Candidate(first, self.gw.route_of(model, first, False))]
        chain: list[Candidate] = []
        reason = None
        if self.diverted(model, first):
            reason = f"breaker open on {first}"
            chain += self._breaker_fallback(model, first, reason)
        else:
            chain.append(Candidate(first, self.gw.route_of(model, first, False)))
            reason = f"{first} failed"
        seen = {first, *(c.version for c in chain)}
        for version in route.fallback:
            if version in seen or self.diverted(model, version):
                continue
            seen.add(version)
            chain.append(Candidate(version, Route.FALLBACK, reason))
        return first, chain

    # -- call with fallback ----------------------------------------------------------------
    async def serve(self, request: InferenceRequest, protocol: ProtocolAdapter) -> Served:
        """Try the candidates in order; the first real answer is recorded, shadowed and returned.
        GatewayError when none answered (counted once); ClientDisconnected when the client left."""
        first, candidates = self.choose(request)
        error = GatewayError(503, f"no version of '{request.model}' is available (breakers open)")
        metrics = self.gw.metrics
        metrics.in_flight.labels(request.model).inc()
        try:
            for candidate in candidates:
                version = candidate.version
                try:
                    answer = await self._attempt(request, candidate, protocol)
                except GatewayError as err:
                    error = err
                    if err.status < 500:  # the request itself is wrong: no other version would take it
                        break
                    continue
                if answer.attempts > 1:
                    metrics.retries.labels(request.model, version).inc(answer.attempts - 1)
                if answer.invalid is not None:
                    metrics.upstream_errors.labels(request.model, version, "502").inc()
                    self.record(request, candidate, protocol.rows(request, version, None), answer, answer.invalid)
                    error = GatewayError(502, answer.invalid)
                    continue
                return self._answered(request, candidate, answer, protocol)
            metrics.requests.labels(request.model, first, f"{error.status // 100}xx").inc()
            raise error
        finally:
            if not request.relay_settles:
                metrics.in_flight.labels(request.model).dec()

    async def _attempt(self, request: InferenceRequest, candidate: Candidate, protocol: ProtocolAdapter) -> Answer:
        """One version: time it; a failure is recorded, counted and raised for the chain to move on. If
        the client leaves meanwhile, the call is cancelled, recorded and counted as 499, and
        `ClientDisconnected` ends the chain."""
        model, version = request.model, candidate.version
        if candidate.route is Route.FALLBACK:
            self.gw.metrics.fallbacks.labels(model, version).inc()
        t = time.perf_counter()
        if candidate.rule is not None:
            return self._rule(request, candidate, protocol, t)
        try:
            if request.receive is None:
                answer = await protocol.call(request, version)
            else:
                answer = await cancel_on_disconnect(request.receive, protocol.call(request, version))
            ok = answer.status < 500 and answer.invalid is None
            self.gw.breakers.record(model, version, ok, time.perf_counter() - t)  # the version's AI breaker
            return answer
        except GatewayError as err:
            if err.status >= 500:  # a 4xx is the request's fault, not the version's
                self.gw.breakers.record(model, version, False, time.perf_counter() - t)
            self.gw.metrics.upstream_errors.labels(model, version, str(err.status)).inc()
            self.record(request, candidate, protocol.rows(request, version, None), None, err.message)
            raise
        except ClientDisconnected as gone:
            self.record(request, candidate, protocol.rows(request, version, None), None, str(gone), cancelled=True)
            self.gw.metrics.requests.labels(model, version, CANCELLED_STATUS_CLASS).inc()
            raise
        finally:
            request.upstream_s += time.perf_counter() - t

    def _rule(self, request: InferenceRequest, candidate: Candidate, protocol: ProtocolAdapter, t: float) -> Answer:
        """A breaker's fallback rule answers (in the event loop: rules are fast and pure); its failure
        is a 502 recorded like an upstream's."""
        assert candidate.rule is not None
        try:
            return protocol.call_rule(request, candidate.version, self.gw.breakers.rule(candidate.rule))
        except GatewayError as err:
            self.record(request, candidate, protocol.rows(request, candidate.version, None), None, err.message)
            raise
        except Exception as exc:  # noqa: BLE001 - the user's rule must not take the gateway down
            message = f"fallback rule {candidate.rule} failed: {type(exc).__name__}: {exc}"
            self.gw.metrics.upstream_errors.labels(request.model, candidate.version, "502").inc()
            self.record(request, candidate, protocol.rows(request, candidate.version, None), None, message)
            raise GatewayError(502, message) from None
        finally:
            request.upstream_s += time.perf_counter() - t

    def _answered(
        self, request: InferenceRequest, candidate: Candidate, answer: Answer, protocol: ProtocolAdapter
    ) -> Served:
        version = candidate.version
        shadow = self.gw.routing.shadow_for(request.model, version)
        if shadow is not None:  # both answers' records carry one pairing id (shadow evaluation pairs them by it)
            request.tags = {**request.tags, PAIR_TAG: new_record_id()}
        if answer.stream is not None and answer.status == 200:  # recorded and counted when the relay ends
            self.shadow(request, shadow, protocol)
            request.relay_settles = True
            return Served(candidate, answer, [], self.headers(request, candidate, None))
        records = self.record(request, candidate, protocol.rows(request, version, answer), answer)
        self.shadow(request, shadow, protocol)
        self.gw.metrics.requests.labels(request.model, version, f"{answer.status // 100}xx").inc()
        return Served(candidate, answer, records, self.headers(request, candidate, records[0] if records else None))

    def headers(
        self, request: InferenceRequest, candidate: Candidate, record: InferenceRecord | None
    ) -> dict[str, str]:
        """The gateway's response headers (version, route, overhead, record id, rate limits); observes the overhead."""
        overhead = max(0.0, time.perf_counter() - request.started - request.upstream_s)
        self.gw.metrics.overhead.labels(request.model).observe(overhead)
        headers = {
            "x-aisre-version": candidate.served_by,
            "x-aisre-route": str(candidate.route),
            "x-aisre-overhead-ms": f"{overhead * 1000:.3f}",
        }
        if record is not None:
            headers["x-aisre-record-id"] = record.id
        if request.admission is not None and request.admission.headers:
            headers.update(request.admission.headers)
        return headers

    # -- record ----------------------------------------------------------------------------
    def record(
        self,
        request: InferenceRequest,
        candidate: Candidate,
        rows: list[dict[str, Any]],
        answer: Answer | None,
        error: str | None = None,
        cancelled: bool = False,
        **timing: Any,
    ) -> list[InferenceRecord]:
        """The records of one call at one version (one per row), handed to the Recorder. An OK answer
        is priced (tokens summed over rows, the price split over them) and, unless it is a shadow's,
        becomes what the caller is charged."""
        ok = error is None and not cancelled and answer is not None and answer.status < 400
        if error is None and answer is not None and answer.status >= 400:
            error = f"upstream answered {answer.status}"
        tokens_in = _total(rows, "input_tokens")
        tokens_out = _total(rows, "output_tokens")
        cost = self.gw.policies.price(request.model, candidate.version, tokens_in, tokens_out) if ok else None
        latency = time.perf_counter() - request.started
        now = self.gw.clock.now()
        tags = dict(request.tags)
        if candidate.reason is not None:
            tags["fallback_reason"] = candidate.reason
        if candidate.rule is not None:
            tags["fallback_rule"] = candidate.rule
        status = Status.CANCELLED if cancelled else Status.OK if ok else Status.ERROR
        pair_id = tags.get(PAIR_TAG) if len(rows) > 1 else None
        records = [
            InferenceRecord(
                model=request.model,
                version=candidate.served_by,
                operation=request.operation,
                route=candidate.route,
                status=status,
                error=error,
                latency_s=latency,
                cost_usd=None if cost is None else cost / len(rows),
                key_id=request.key_id,
                replica=answer.replica if answer is not None else None,
                tags=dict(tags) if pair_id is None else {**tags, PAIR_TAG: f"{pair_id}.{i}"},
                ts=now,
                **row,
                **timing,
            )
            for i, row in enumerate(rows)
        ]
        if ok and candidate.route is not Route.SHADOW:  # shadows are the operator's cost
            request.cost_usd = cost
            if tokens_in is not None or tokens_out is not None:
                request.used_tokens = (tokens_in or 0) + (tokens_out or 0)
        self.gw.record_call(records, latency if request.batched else None, request.trace_parent)
        return records

    # -- shadow ----------------------------------------------------------------------------
    def shadow(self, request: InferenceRequest, version: str | None, protocol: ProtocolAdapter) -> None:
        """Mirror the request to the shadow `version` (sampled by `RoutingState.shadow_for`), in the background."""
        if version is None:
            return
        if not self.gw.spawn(self._shadow(request, version, protocol)):
            self.gw.metrics.shadow.labels(request.model, version, "skipped").inc()

    async def _shadow(self, request: InferenceRequest, version: str, protocol: ProtocolAdapter) -> None:
        """The answer is recorded (route=shadow), never returned, never waited for, never charged."""
        shadow = replace(
            request,
            message=protocol.shadow_message(request),
            started=time.perf_counter(),
            deadline=time.monotonic() + self.gw.config.gateway.deadline_s,
            pinned=version,
            receive=None,
            streaming=False,
            tags=request.tags,
            upstream_s=0.0,
            relay_settles=False,
        )
        candidate = Candidate(version, Route.SHADOW)
        try:
            answer = await protocol.call(shadow, version)
        except GatewayError as err:
            self.record(shadow, candidate, protocol.rows(shadow, version, None), None, err.message)
            self.gw.metrics.shadow.labels(request.model, version, "error").inc()
            return
        invalid = answer.invalid
        self.record(shadow, candidate, protocol.rows(shadow, version, None if invalid else answer), answer, invalid)
        outcome = "ok" if answer.status < 400 and invalid is None else "error"
        self.gw.metrics.shadow.labels(request.model, version, outcome).inc()

    # -- settle ----------------------------------------------------------------------------
    def settle(self, request: InferenceRequest) -> None:
        """After the response: free limit slots, reconcile tokens, charge spend (a relayed stream does
        this in `relay_ended`)."""
        if request.admission is not None and not request.relay_settles:
            self.gw.settle_later(request.admission, request.model, request.cost_usd, request.used_tokens)

    def relay_ended(self, request: InferenceRequest, version: str, status_class: str) -> None:
        """A relayed stream ended (its record written): count it out and settle the caller."""
        self.gw.metrics.in_flight.labels(request.model).dec()
        self.gw.metrics.requests.labels(request.model, version, status_class).inc()
        if request.admission is not None:
            self.gw.settle_later(request.admission, request.model, request.cost_usd, request.used_tokens)


def _total(rows: list[dict[str, Any]], key: str) -> int | None:
    values = [row[key] for row in rows if row.get(key) is not None]
    return sum(values) if values else None
