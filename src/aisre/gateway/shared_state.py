"""Shared state in Redis for many gateway processes: GCRA limits in Lua, spend, route weights, breakers, revocations.

Every limiter call is one server-side script (all dimensions of a subject at once, clocked
by Redis TIME, so processes need no clock sync). When Redis is unreachable, `RedisState`
fails fast for a back-off (`probe_interval_s`) and lets one call probe after it; it counts
`aisre_state_errors_total{operation}`, logs one line when an outage starts and one when it
ends. `RedisLimiter` then applies its policy: "open" decides with a local limiter, "closed"
refuses with a reason; it never raises because Redis is down.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, TypeVar, cast
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from aisre.errors import StateUnavailableError
from aisre.gateway.limits import Decision, InMemoryLimiter, Limiter, Limits, decide, never_admitted
from aisre.gateway.routing_feed import RoutingChange, RoutingFeed

log = logging.getLogger("aisre.state")
T = TypeVar("T")
DEFAULT_SPEND_TTL_S = 40 * 86_400  # longer than a monthly period

# Shared by both scripts: a TAT is stored as integer µs (field 'rt'/'tt') + remainder in ticks of 1/rate µs
# ('rr'/'tr'); see aisre.gateway.limits. Numbers written back go through %.0f: Lua's tostring keeps 14 digits only.
_PRELUDE = """
local MIN = 60000000
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function backlog(tat, rem, rate)
  if rate == 0 or not tat then return 0 end
  rem = math.min(tonumber(rem) or 0, rate - 1)
  local b = (tonumber(tat) - now) * rate + rem
  if b < 0 then return 0 end
  return b
end
local function store(b, rate, ftat, frem)
  local q = math.floor(b / rate)
  local r = b - q * rate
  if r < 0 then q = q - 1; r = r + rate elseif r >= rate then q = q + 1; r = r - rate end
  redis.call('HSET', KEYS[1], ftat, string.format('%.0f', now + q), frem, string.format('%.0f', r))
  return q
end
local function expire_after(us)
  local ms = math.floor(us / 1000) + 1000
  if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
end
"""

# KEYS: GCRA hash, lease zset. ARGV: rpm, tpm, max_concurrent (0 = none), tokens, lease id, lease µs.
# Returns {allowed, request backlog, token backlog, in flight}: after consumption if allowed, as found if not.
ACQUIRE_LUA = (
    _PRELUDE
    + """
local rpm, tpm, cap, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local st = redis.call('HMGET', KEYS[1], 'rt', 'rr', 'tt', 'tr')
local rb, tb = backlog(st[1], st[2], rpm), backlog(st[3], st[4], tpm)
local flight = 0
if cap > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', string.format('%.0f', now))
  flight = redis.call('ZCARD', KEYS[2])
end
if (rpm > 0 and rb + MIN > rpm * MIN) or (tpm > 0 and tb + cost * MIN > tpm * MIN) or (cap > 0 and flight >= cap) then
  return {0, rb, tb, flight}
end
local q = 0
if rpm > 0 then rb = rb + MIN; q = math.max(q, store(rb, rpm, 'rt', 'rr')) end
if tpm > 0 then tb = tb + cost * MIN; q = math.max(q, store(tb, tpm, 'tt', 'tr')) end
if rpm > 0 or tpm > 0 then expire_after(q) end
if cap > 0 then
  redis.call('ZADD', KEYS[2], string.format('%.0f', now + tonumber(ARGV[6])), ARGV[5])
  redis.call('PEXPIRE', KEYS[2], math.floor(tonumber(ARGV[6]) / 1000) + 1000)
  flight = flight + 1
end
return {1, rb, tb, flight}
"""
)

# KEYS: GCRA hash, lease zset. ARGV: tpm (0 = none), actual - estimated tokens, lease id ('' = none).
RELEASE_LUA = (
    _PRELUDE
    + """
if ARGV[3] ~= '' then redis.call('ZREM', KEYS[2], ARGV[3]) end
local tpm, delta = tonumber(ARGV[1]), tonumber(ARGV[2])
if tpm == 0 or delta == 0 then return 0 end
local st = redis.call('HMGET', KEYS[1], 'tt', 'tr')
if not st[1] and delta < 0 then return 0 end
local tb = math.max(0, backlog(st[1], st[2], tpm) + delta * MIN)
expire_after(store(tb, tpm, 'tt', 'tr'))
return tb
"""
)


def safe_url(url: str) -> str:
    """The URL without credentials, for logs."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    return f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path}"


class RedisState:
    """One Redis connection pool with health tracking, plus the small shared-state helpers.

    `timeout_s` bounds each command (read/write), `connect_timeout_s` each new connection.
    After `failures_to_trip` consecutive failures Redis counts as down: calls fail fast
    (StateUnavailableError) and one call probes every `probe_interval_s` until one succeeds.
    A lone failure (one slow reply) fails that call only. Helpers raise StateUnavailableError;
    callers choose their policy. `clock` is monotonic seconds (back-off only; Redis TIME
    clocks the limits). A `client` passed in must decode replies to str, like the default one.
    """

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "aisre",
        timeout_s: float = 0.05,
        connect_timeout_s: float = 0.25,
        probe_interval_s: float = 1.0,
        failures_to_trip: int = 3,
        registry: CollectorRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        client: Redis | None = None,
    ) -> None:
        self.url = safe_url(url)
        self._raw_url = url  # with its password: for the routing feed's own connection, never logged
        self.prefix = prefix
        self.routing_channel = f"{prefix}:routing"
        self._connect_timeout_s = connect_timeout_s
        self.probe_interval_s = probe_interval_s
        self.failures_to_trip = failures_to_trip
        self.client = client or Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=connect_timeout_s,
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
            driver_info=None,  # no CLIENT SETINFO round trips on each new connection
        )
        self.registry = registry if registry is not None else CollectorRegistry()
        self.errors = Counter(
            "aisre_state_errors",
            "Failed operations on the shared state (Redis), by operation.",
            ("operation",),
            registry=self.registry,
        )
        self.up_gauge = Gauge(
            "aisre_state_up", "1 while the shared state (Redis) answers, 0 during an outage.", registry=self.registry
        )
        self.up_gauge.set(1)
        self._clock = clock
        self._down_since: float | None = None
        self._probe_at = 0.0
        self._probing = False
        self._failures = 0  # during the current outage
        self._consecutive = 0

    @property
    def up(self) -> bool:
        return self._down_since is None

    async def run(self, operation: str, call: Callable[[Redis], Awaitable[T]]) -> T:
        """`call(client)` with outage handling: fail fast in back-off, one probe at a time after it."""
        probe = False
        if self._down_since is not None:
            if self._probing or self._clock() < self._probe_at:
                raise StateUnavailableError(f"shared state at {self.url} is unreachable (in back-off)")
            probe = self._probing = True
        try:
            result = await call(self.client)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(operation, exc)
            raise StateUnavailableError(f"shared state at {self.url} failed on {operation}: {exc!r}") from exc
        finally:
            if probe:
                self._probing = False
        self._consecutive = 0
        if self._down_since is not None:
            log.warning(
                "shared state at %s answers again after %.1f s (%d failed operations); shared limits resume",
                self.url,
                self._clock() - self._down_since,
                self._failures,
            )
            self._down_since = None
            self._failures = 0
            self.up_gauge.set(1)
        return result

    def _failed(self, operation: str, exc: BaseException) -> None:
        self.errors.labels(operation).inc()
        self._failures += 1
        self._consecutive += 1
        now = self._clock()
        self._probe_at = now + self.probe_interval_s
        if self._down_since is None and self._consecutive >= self.failures_to_trip:
            self._down_since = now
            self.up_gauge.set(0)
            log.warning(
                "shared state at %s is unreachable (%s on %s: %s); probing every %.1f s",
                self.url,
                type(exc).__name__,
                operation,
                exc,
                self.probe_interval_s,
            )

    def key(self, kind: str, name: str) -> str:
        """`prefix:kind:{name}`: the braces keep one subject's keys in one Redis Cluster slot."""
        return f"{self.prefix}:{kind}:{{{name}}}"

    async def ping(self) -> bool:
        try:
            return bool(await self.run("ping", lambda r: r.ping()))
        except StateUnavailableError:
            return False

    async def close(self) -> None:
        await self.client.aclose()

    # --- spend: one float per subject and period (e.g. "2026-01" or "2026-01-31"), expiring after the period ---

    async def incr_spend(self, subject: str, period_key: str, usd: float, ttl_s: float = DEFAULT_SPEND_TTL_S) -> float:
        """Add `usd` to the subject's spend in the period; returns the new total in USD."""
        key = f"{self.key('spend', subject)}:{period_key}"

        async def call(r: Redis) -> float:
            async with r.pipeline(transaction=True) as pipe:
                pipe.incrbyfloat(key, usd)
                pipe.expire(key, max(1, round(ttl_s)), nx=True)
                total, _ = await pipe.execute()
            return float(total)

        return await self.run("incr_spend", call)

    async def get_spend(self, subject: str, period_key: str) -> float:
        """The subject's spend in the period, in USD (0.0 when none)."""
        value = await self.run("get_spend", lambda r: r.get(f"{self.key('spend', subject)}:{period_key}"))
        return float(value) if value is not None else 0.0

    # --- routing state: weights and breakers per model (kept until changed; no TTL), each change also published
    # on `routing_channel` in the same MULTI, so every process following it (`routing_feed`) applies it at once ---

    async def set_route_weights(self, model: str, weights: Mapping[str, float]) -> None:
        """Replace the model's route weights (version → weight) in one transaction, and publish the change."""
        key = self.key("weights", model)
        message = RoutingChange(model, weights={v: float(w) for v, w in weights.items()}).encode()

        async def call(r: Redis) -> None:
            async with r.pipeline(transaction=True) as pipe:
                pipe.delete(key)
                if weights:
                    pipe.hset(key, mapping={v: repr(float(w)) for v, w in weights.items()})
                pipe.publish(self.routing_channel, message)
                await pipe.execute()

        await self.run("set_route_weights", call)

    async def get_route_weights(self, model: str) -> dict[str, float]:
        raw = await self._hash("get_route_weights", self.key("weights", model))
        return {v: float(w) for v, w in raw.items()}

    async def set_breaker(self, model: str, version: str, open: bool) -> None:
        """Set a version's breaker flag, and publish the change."""
        key = self.key("breakers", model)
        message = RoutingChange(model, version=version, open=open).encode()

        async def call(r: Redis) -> None:
            async with r.pipeline(transaction=True) as pipe:
                pipe.hset(key, version, "1" if open else "0")
                pipe.publish(self.routing_channel, message)
                await pipe.execute()

        await self.run("set_breaker", call)

    async def breakers(self, model: str) -> dict[str, bool]:
        """version → True when its breaker is open, for every version ever set."""
        raw = await self._hash("breakers", self.key("breakers", model))
        return {v: flag == "1" for v, flag in raw.items()}

    def routing_feed(
        self, apply: Callable[[RoutingChange], None], on_subscribed: Callable[[], Awaitable[None]], **options: Any
    ) -> RoutingFeed:
        """A follower of the routing changes every process publishes (run it as a task; `aisre.gateway.routing_feed`).
        Its failures count in `aisre_state_errors_total{operation="subscribe"}`."""
        return RoutingFeed(
            self._raw_url,
            self.routing_channel,
            apply,
            on_subscribed,
            safe_url=self.url,
            connect_timeout_s=self._connect_timeout_s,
            on_error=lambda operation: self.errors.labels(operation).inc(),
            **options,
        )

    async def _hash(self, operation: str, key: str) -> dict[str, str]:
        """A Redis hash, field → value. The client decodes replies (decode_responses=True), which
        redis' stubs cannot see: they type every reply as bytes | str."""
        raw = await self.run(operation, lambda r: r.hgetall(key))
        return cast(dict[str, str], raw)


class RedisLimiter:
    """The Limiter shared through Redis: one Lua script per acquire and per release.

    Concurrency slots are leases in a sorted set that expire after `lease_s`, so a process
    that dies mid-request frees its slots by itself. The process remembers which leases it
    holds per subject (and which requests the fallback admitted), so `release` keeps the
    Limiter signature and returns each slot to the store that granted it.
    """

    def __init__(
        self,
        url: str | RedisState,
        *,
        on_failure: Literal["open", "closed"] = "open",
        fallback: Limiter | None = None,
        lease_s: float = 600.0,
        registry: CollectorRegistry | None = None,
        timeout_s: float = 0.05,
        connect_timeout_s: float = 0.25,
        probe_interval_s: float = 1.0,
    ) -> None:
        if on_failure not in ("open", "closed"):
            raise ValueError(f"on_failure must be 'open' or 'closed', got {on_failure!r}")
        self.state = (
            url
            if isinstance(url, RedisState)
            else RedisState(
                url,
                timeout_s=timeout_s,
                connect_timeout_s=connect_timeout_s,
                probe_interval_s=probe_interval_s,
                registry=registry,
            )
        )
        self.on_failure = on_failure
        self.fallback = fallback if fallback is not None else InMemoryLimiter()
        self._lease_us = str(round(lease_s * 1e6))
        self._acquire = self.state.client.register_script(ACQUIRE_LUA)
        self._release = self.state.client.register_script(RELEASE_LUA)
        self._node = f"{os.getpid()}-{os.urandom(4).hex()}-"
        self._ids = itertools.count()
        # subject → leases held by this process (None: admitted by the fallback); none kept without a slot
        self._held: dict[str, list[str | None]] = {}

    def _keys(self, subject: str) -> list[str]:
        return [self.state.key("rl", subject), self.state.key("cc", subject)]

    async def acquire(self, subject: str, limits: Limits, tokens: int) -> Decision:
        if (refusal := never_admitted(limits, tokens, "redis")) is not None:
            return refusal
        if limits.unlimited:
            return Decision(True, backend="redis")
        lease = f"{self._node}{next(self._ids)}" if limits.max_concurrent else ""
        args = (limits.rpm or 0, limits.tpm or 0, limits.max_concurrent or 0, tokens, lease, self._lease_us)
        try:
            allowed, rb, tb, flight = await self.state.run(
                "acquire", lambda r: self._acquire(keys=self._keys(subject), args=args, client=r)
            )
        except StateUnavailableError as exc:
            return await self._degraded(subject, limits, tokens, exc)
        decision = decide(limits, tokens, bool(allowed), int(rb), int(tb), int(flight), "redis")
        if decision.allowed and lease:
            self._held.setdefault(subject, []).append(lease)
        return decision

    async def _degraded(self, subject: str, limits: Limits, tokens: int, exc: StateUnavailableError) -> Decision:
        if self.on_failure == "closed":
            reason = f"{exc}; the failure policy is closed, so requests are refused until it answers"
            return Decision(False, "unavailable", self.state.probe_interval_s, reason=reason, backend="redis")
        decision = await self.fallback.acquire(subject, limits, tokens)
        if decision.allowed:
            self._held.setdefault(subject, []).append(None)
        return dataclasses.replace(decision, backend="fallback")

    async def release(self, subject: str, limits: Limits, estimated_tokens: int, actual_tokens: int) -> None:
        held = self._held.get(subject)
        lease = held.pop() if held else ""
        if held is not None and not held:
            del self._held[subject]
        if lease is None:
            await self.fallback.release(subject, limits, estimated_tokens, actual_tokens)
            return
        delta = actual_tokens - estimated_tokens if limits.tpm else 0
        if not lease and not delta:
            return
        args = (limits.tpm or 0, delta, lease)
        try:
            await self.state.run("release", lambda r: self._release(keys=self._keys(subject), args=args, client=r))
        except StateUnavailableError:
            pass  # counted and logged by the state; the lease expires by itself after lease_s

    async def close(self) -> None:
        await self.state.close()
