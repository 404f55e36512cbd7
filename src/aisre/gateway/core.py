"""The Gateway: everything one gateway process holds (config, routing state, upstream
versions, retry budgets, metrics, the Recorder) and its start/stop lifecycle."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

import aiohttp
from opentelemetry import context as otel_context
from opentelemetry import propagate

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config import AisreConfig
from aisre.gateway.balancer import Balancer
from aisre.gateway.breakers import GatewayBreakers, incident_hook
from aisre.gateway.http1 import Http1Pool
from aisre.gateway.local import SklearnVersion, artifact_trained_at
from aisre.gateway.metrics import GatewayMetrics
from aisre.gateway.policy import Policies
from aisre.gateway.retry import RetryBudget
from aisre.gateway.routing import RoutingState
from aisre.gateway.upstream import HttpVersion
from aisre.records import InferenceRecord, Route
from aisre.telemetry import Metrics, Recorder

log = logging.getLogger("aisre.gateway")
MAX_SHADOWS_IN_FLIGHT = 64


class Gateway:
    def __init__(self, config: AisreConfig, recorder: Recorder, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.recorder = recorder
        if recorder.metrics is None:
            recorder.metrics = Metrics()
            recorder.metrics.watch_writer(recorder.writer.stats)
        self.metrics = GatewayMetrics(recorder.metrics.registry)
        self.clock = clock
        self.policies = Policies(config, recorder.store, recorder.metrics.registry, clock)
        self.routing = RoutingState(config.models)
        self.versions: dict[tuple[str, str], HttpVersion | SklearnVersion] = {}
        self.session: aiohttp.ClientSession | None = None
        self.http1: Http1Pool | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._shadows_in_flight = 0
        self._health_task: asyncio.Task[None] | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self._breaker_task: asyncio.Task[None] | None = None
        self._routing_changes = 0  # bumped by every change applied here: a poll that raced one drops its reads
        # AI circuit breakers (`breakers:`): their rule functions load now, like in-process models.
        self.breakers = GatewayBreakers(config, recorder.metrics.registry, clock)
        # The version with the largest share of traffic is the primary; the others are canaries.
        self._primary = {m: max(c.weights, key=c.weights.get) for m, c in config.models.items()}  # type: ignore[arg-type]
        # In-process models load now, so a bad file fails `aisre serve` before it listens.
        for model, mcfg in config.models.items():
            for version, vcfg in mcfg.versions.items():
                if vcfg.sklearn:
                    self.versions[(model, version)] = SklearnVersion(model, version, vcfg.sklearn)
        self._mark_trained()

    def _mark_trained(self) -> None:
        """Freshness marks (`aisre.slo.marks`) at start-up: each version's `trained_at`, else for an
        in-process model its file's modification time. A store that keeps no signals gets none."""
        import sqlite3

        from aisre.errors import AisreError
        from aisre.slo.marks import MODEL_TRAINED_AT, mark

        store = self.recorder.store
        if not hasattr(store, "write_signals"):
            return
        now = self.clock.now()
        for model, mcfg in self.config.models.items():
            for version, vcfg in mcfg.versions.items():
                at = vcfg.trained_at_s
                if at is None and vcfg.sklearn:
                    at = artifact_trained_at(vcfg.sklearn)
                if at is None:
                    continue
                try:
                    mark(store, model, MODEL_TRAINED_AT, at, now=now, version=version)
                except (AisreError, sqlite3.Error) as exc:  # a freshness mark is never worth refusing to serve
                    log.warning("cannot record %s/%s model_trained_at: %s", model, version, exc)

    async def start(self) -> None:
        g = self.config.gateway
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, keepalive_timeout=60, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent",),
        )
        self.http1 = Http1Pool(g.connect_timeout_s, max_response_bytes=g.max_response_bytes)
        for model, mcfg in self.config.models.items():
            for version, vcfg in mcfg.versions.items():
                if vcfg.replicas:
                    balancer = Balancer(vcfg.replicas, g.ejection, time.monotonic)
                    budget = RetryBudget(g.retries, time.monotonic)
                    self.versions[(model, version)] = HttpVersion(
                        f"{model}/{version}",
                        balancer,
                        self.session,
                        self.http1,
                        budget,
                        g,
                        vcfg.headers,
                        vcfg.timeout_s,
                        mcfg.retry_on,
                    )
        if g.health_checks.enabled and any(isinstance(v, HttpVersion) for v in self.versions.values()):
            self._health_task = asyncio.create_task(self._health_loop())
        if self.policies.state is not None:
            self._sync_task = asyncio.create_task(self._sync_loop())
        if self.breakers:
            store = self.recorder.store
            if hasattr(store, "write_signals"):  # a store that keeps signals keeps incidents too
                self.breakers.on_transition.append(incident_hook(store, self.clock))
            self.breakers.on_transition.append(self._mirror_breaker)
            interval = self.config.slo_evaluation.interval_s
            self._breaker_task = asyncio.create_task(self.breakers.run(store, list(self.config.slos), interval))

    async def stop(self) -> None:
        if self._health_task is not None:
            self._health_task.cancel()
        if self._sync_task is not None:
            self._sync_task.cancel()
        if self._breaker_task is not None:
            self._breaker_task.cancel()
        if self._background:
            await asyncio.wait(self._background, timeout=self.config.gateway.shutdown_grace_s or None)
        if self.session is not None:
            await self.session.close()
        if self.http1 is not None:
            self.http1.close()
        for v in self.versions.values():
            if isinstance(v, SklearnVersion):
                v.close()
        await self.policies.close()
        self.recorder.flush()

    # -- routing helpers ---------------------------------------------------------------
    def route_of(self, model: str, version: str, fallback: bool) -> Route:
        if fallback:
            return Route.FALLBACK
        return Route.PRIMARY if version == self._primary[model] else Route.CANARY

    @staticmethod
    def sticky_key(config: Any, headers: Mapping[str, str]) -> str | None:
        """What keeps a caller on one version: a header's value, or the caller's credential
        (`sticky: caller`, the Authorization header, hashed by the router, never stored)."""
        if config.sticky is None:
            return None
        if config.sticky == "caller":
            return headers.get("authorization")
        return headers.get(config.sticky)

    def trace_parent(self, headers: Mapping[str, str]) -> Any:
        """The caller's trace context (W3C traceparent), when tracing is on; else None."""
        if self.recorder.spans is None or "traceparent" not in headers:
            return None
        return propagate.extract(headers)

    def record(self, r: InferenceRecord, parent: Any = None) -> None:
        """Hand a record to the Recorder (its span a child of the caller's trace, if any);
        a full queue never fails the client's request."""
        self.record_call([r], None, parent)

    def record_call(self, records: list[InferenceRecord], latency_s: float | None, parent: Any = None) -> None:
        """Records of one call (one span, one latency observation; a single record goes as itself)."""
        token = otel_context.attach(parent) if parent is not None else None
        try:
            if latency_s is None and len(records) == 1:
                self.recorder.record(records[0])
            else:
                self.recorder.record_call(records, latency_s)
        except Exception:  # noqa: BLE001 - counted by the writer; the response must still go out
            log.warning("records for %s not accepted", records[0].model if records else "?", exc_info=True)
        finally:
            if token is not None:
                otel_context.detach(token)

    def settle_later(self, admission: Any, model: str, cost_usd: float | None, actual_tokens: int | None) -> None:
        """Settle limits and spend after the response; no task at all when there is nothing to
        settle (no slots held, nothing to charge), which keeps policy-free traffic cheap."""
        if admission.held or cost_usd:
            self.background(self.policies.settle(admission, model, cost_usd, actual_tokens))

    def background(self, coro: Any) -> None:
        """Run bookkeeping after the response (settling a stream's limits and spend); awaited at stop."""
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _mirror_breaker(self, t: Any) -> None:
        """An AI breaker's opening sets the routing state's breaker flag (and Redis's, so every process
        diverts within a second); turning half-open or closed clears it, so probes and traffic flow."""
        from aisre.respond.breaker import BreakerState

        opened = t.after is BreakerState.OPEN
        (self.routing.open_breaker if opened else self.routing.close_breaker)(t.model, t.version)  # at once here
        task = asyncio.get_running_loop().create_task(self.set_breaker(t.model, t.version, opened))  # and in Redis
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def spawn(self, coro: Any) -> bool:
        """Run a background task (a shadow call) if under the in-flight cap; False if refused."""
        if self._shadows_in_flight >= MAX_SHADOWS_IN_FLIGHT:
            coro.close()
            return False
        self._shadows_in_flight += 1
        task = asyncio.create_task(coro)
        self._background.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._background.discard(t)
            self._shadows_in_flight -= 1

        task.add_done_callback(done)
        return True

    # -- routing state shared through Redis ---------------------------------------------
    async def set_weights(self, model: str, weights: dict[str, float]) -> None:
        """Change a model's split here and, with shared state, in every gateway process."""
        self.routing.set_weights(model, weights)
        self._routing_changes += 1
        if self.policies.state is not None:
            await self.policies.state.set_route_weights(model, weights)

    async def set_breaker(self, model: str, version: str, open_: bool) -> None:
        (self.routing.open_breaker if open_ else self.routing.close_breaker)(model, version)
        self._routing_changes += 1
        if self.policies.state is not None:
            await self.policies.state.set_breaker(model, version, open_)

    async def _sync_loop(self, interval_s: float = 1.0) -> None:
        """Adopt route weights and breaker states set by other processes: at once from the Redis channel they
        publish on (`aisre.gateway.routing_feed`), and from a poll of the hashes every `interval_s`, the
        catch-up for what the channel missed (pub/sub keeps nothing for a process disconnected at the time)."""
        state = self.policies.state
        feed = state.routing_feed(self._apply_routing_change, self._poll_routing)
        follower = asyncio.create_task(feed.run())
        try:
            while True:
                await asyncio.sleep(interval_s)
                await self._poll_routing()
        finally:
            follower.cancel()
            await asyncio.gather(follower, return_exceptions=True)  # its connection closed before the loop ends

    def _apply_routing_change(self, change: Any) -> None:
        """A change another process (or this one) published; models this gateway does not serve are ignored."""
        route = self.routing.models.get(change.model)
        if route is None:
            return
        self._routing_changes += 1
        if change.weights is not None:
            if change.weights:  # as the poll: an emptied split keeps the local one
                self.routing.set_weights(change.model, change.weights)
        elif change.open:
            route.open_breakers.add(change.version)
        else:
            route.open_breakers.discard(change.version)

    async def _poll_routing(self) -> None:
        state = self.policies.state
        for model in self.routing.models:
            changes = self._routing_changes
            try:
                weights = await state.get_route_weights(model)
                breakers = await state.breakers(model)
            except Exception:  # noqa: BLE001 - Redis down: keep the local view; RedisState logs and counts
                return
            if self._routing_changes != changes:
                continue  # a change landed while the hashes were read: it is newer than what was read
            if weights:
                self.routing.set_weights(model, weights)
            route = self.routing.models[model]
            route.open_breakers = {v for v, is_open in breakers.items() if is_open}

    def key_store(self) -> Any:
        if self.policies.keys is None:
            from aisre.gateway.errors import GatewayError

            raise GatewayError(400, "API keys are off; set auth.enabled: true")
        return self.policies.keys

    # -- active health checks ----------------------------------------------------------
    async def _health_loop(self) -> None:
        hc = self.config.gateway.health_checks
        while True:
            await asyncio.sleep(hc.interval_s)
            checks = []
            for (model, _), version in self.versions.items():
                if isinstance(version, HttpVersion):
                    path = hc.openai_path if self.config.models[model].protocol == "openai" else hc.oip_path
                    checks += [self._check(version, r, path, hc.timeout_s) for r in version.balancer.replicas]
            await asyncio.gather(*checks, return_exceptions=True)
            for (model, name), version in self.versions.items():
                if isinstance(version, HttpVersion):
                    ejected = len(version.balancer.replicas) - version.balancer.admitted_count()
                    self.metrics.ejections.labels(model, name).set(ejected)

    async def _check(self, version: HttpVersion, replica: Any, path: str, timeout_s: float) -> None:
        assert self.session is not None
        try:
            async with self.session.get(
                replica.url + path, timeout=aiohttp.ClientTimeout(total=timeout_s), headers=version.headers
            ) as response:
                await response.read()
                version.balancer.health(replica, response.status < 500)
        except (TimeoutError, aiohttp.ClientError, OSError):
            version.balancer.health(replica, False)
