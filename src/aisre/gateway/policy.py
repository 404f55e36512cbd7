"""The policy stages of the pipeline: authenticate → authorize → limit (and budget) → … → account.

`Policies.authenticate` runs first, before the body is read or any model looked up, so an
anonymous caller learns nothing but 401; `Policies.authorize` then refuses a model the key
may not use (403, decided by the name alone, so it does not reveal whether the model
exists). `Policies.admit` runs before any upstream call and either returns an `Admission`
or raises a GatewayError the client can act on (400 request too large, 429 rate limit or
budget, with `Retry-After` and OpenAI's x-ratelimit-* headers). `Policies.settle` runs
when the call ends: it frees the concurrency slots, reconciles the token estimate with the
real usage, prices the call and charges budgets. State lives in memory for one process, or
in Redis (`state.url`) for many.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config import AisreConfig
from aisre.config.gateway import ModelConfig
from aisre.errors import ConfigError
from aisre.gateway.cost import (
    Budget,
    BudgetExceededError,
    BudgetGuard,
    MemorySpendLedger,
    PriceTable,
    RedisSpendLedger,
    SpendMetrics,
    key_subject,
    model_subject,
)
from aisre.gateway.errors import GatewayError
from aisre.gateway.limits import (
    InMemoryLimiter,
    Limiter,
    Limits,
    check_max_prompt_chars,
    check_max_tokens_per_request,
    estimate_tokens,
    headers,
)
from aisre.store import SQLiteStore
from aisre.store.keys import ApiKeyError, KeyRecord, KeySecretError, KeyStore
from aisre.store.postgres import PostgresStore

log = logging.getLogger("aisre.gateway")


@dataclass
class Admission:
    """What `admit` granted: who is calling, the token estimate, the limiter slots held."""

    key: KeyRecord | None
    estimate: int
    held: list[tuple[str, Limits]] = field(default_factory=list)
    budgets: list[tuple[str, Budget]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def key_id(self) -> str | None:
        return self.key.id if self.key is not None else None


class Policies:
    def __init__(self, config: AisreConfig, store: Any, registry: CollectorRegistry, clock: Clock = SYSTEM_CLOCK):
        self.config = config
        self.clock = clock
        self.auth = config.auth
        self.keys: KeyStore | None = None
        if self.auth.enabled:  # every problem here is the config's: say so now, never as a 500 per request
            if not isinstance(store, SQLiteStore | PostgresStore):
                raise ConfigError(
                    [
                        "auth.enabled: API keys live in the store (store.url), but the gateway was given "
                        f"a recorder writing to {type(store).__name__}; give it a Recorder on a SQLite or "
                        "PostgreSQL store, or set auth.enabled: false"
                    ]
                )
            self.keys = KeyStore(store, clock=clock, secret_env=self.auth.key_secret_env)
            try:
                self.keys.check_server_secret()
            except KeySecretError as exc:
                raise ConfigError([f"auth.key_secret_env: {exc}"]) from None
        else:
            log.warning(
                "auth is OFF: any caller may use every model (set auth.enabled: true and create keys "
                "with `aisre keys create`)"
            )
        self.state: Any = None
        limiter: Limiter = InMemoryLimiter()
        ledger: Any = MemorySpendLedger()
        if config.state.url:
            from aisre.gateway.shared_state import RedisLimiter, RedisState

            self.state = RedisState(
                config.state.url,
                timeout_s=config.state.timeout_s,
                connect_timeout_s=config.state.connect_timeout_s,
                registry=registry,
            )
            limiter = RedisLimiter(self.state, on_failure=config.state.on_failure, fallback=InMemoryLimiter())
            ledger = _FailOpenLedger(RedisSpendLedger(self.state), MemorySpendLedger())
        self.limiter = limiter
        self.prices = PriceTable.from_models(config.models)
        self.guard = BudgetGuard(ledger, SpendMetrics(registry))
        self._model_limits = {m: _limits(c) for m, c in config.models.items()}
        self._model_budgets = {
            m: Budget.from_config(c.budget, label=m) for m, c in config.models.items() if c.budget is not None
        }

    # -- authenticate, authorize ----------------------------------------------------------
    def authenticate(self, headers_in: Mapping[str, str]) -> KeyRecord | None:
        """The caller's key (None with auth off); 401 for a missing, unknown, revoked or expired key.
        Needs nothing but the headers, so it runs before the body is read or a model looked up."""
        if self.keys is None:
            return None
        given = headers_in.get("authorization", "")
        if not given.lower().startswith("bearer ") or not given[7:].strip():
            raise GatewayError(
                401,
                "missing API key: send 'Authorization: Bearer <key>' (create keys with `aisre keys create`)",
                code="missing_api_key",
            )
        try:
            return self.keys.verify(given[7:].strip())
        except ApiKeyError as exc:
            raise GatewayError(401, str(exc), code="invalid_api_key") from None

    @staticmethod
    def authorize(key: KeyRecord | None, model: str) -> None:
        """403 when the key may not use `model`; by name alone, before the model is looked up."""
        if key is not None and not key.allows(model):
            raise GatewayError(
                403,
                f"key '{key.name}' may not use model '{model}' (it may use: {', '.join(key.models or ())})",
                code="model_not_allowed",
            )

    @staticmethod
    def visible(key: KeyRecord | None, models: Iterable[str]) -> list[str]:
        """The models a caller may see (in listings and "not found" hints): those its key allows."""
        return [m for m in models if key is None or key.allows(m)]

    # -- limit ------------------------------------------------------------------------------
    async def admit(
        self, key: KeyRecord | None, model: str, config: ModelConfig, payload: Mapping[str, Any] | None
    ) -> Admission:
        """Budgets and limits for an authenticated, authorized call (see `authenticate`, `authorize`)."""
        limits = config.limits
        estimate = 0
        if payload is not None:  # raise GatewayError(400) naming the field
            check_max_tokens_per_request(payload, limits.max_tokens_per_request)
            check_max_prompt_chars(payload, limits.max_prompt_chars)
            estimate = estimate_tokens(payload)
        admission = Admission(key, estimate)
        if key is not None and key.budget_usd is not None:
            admission.budgets.append((key_subject(key.id), Budget(key.budget_usd, key.budget_period, label=key.name)))
        if model in self._model_budgets:
            admission.budgets.append((model_subject(model), self._model_budgets[model]))
        if admission.budgets:
            try:
                await self.guard.check(admission.budgets, self.clock.now())
            except BudgetExceededError as exc:
                retry = exc.retry_after_s
                extra = {"retry-after": str(math.ceil(retry))} if retry is not None and math.isfinite(retry) else {}
                raise GatewayError(429, str(exc), code="insufficient_quota", headers=extra) from None
        subjects: list[tuple[str, Limits]] = []
        if key is not None:
            key_limits = Limits(key.rpm, key.tpm, key.max_concurrent)
            if not key_limits.unlimited:
                subjects.append((key_subject(key.id), key_limits))
        if not self._model_limits[model].unlimited:
            subjects.append((model_subject(model), self._model_limits[model]))
        for subject, subject_limits in subjects:
            decision = await self.limiter.acquire(subject, subject_limits, estimate)
            if not decision.allowed:
                await self._release(admission, 0)  # refused: give back the tokens taken from earlier subjects
                out = headers(decision)
                if math.isfinite(decision.retry_after_s):
                    out["retry-after"] = str(max(1, math.ceil(decision.retry_after_s)))
                who = f"key '{key.name}'" if key is not None and subject.startswith("key:") else f"model '{model}'"
                message = f"rate limit of {who} reached ({decision.refused})"
                if decision.reason:
                    message += f": {decision.reason}"
                raise GatewayError(429, message, code="rate_limit_exceeded", headers=out)
            admission.held.append((subject, subject_limits))
            if subject.startswith("key:") or not admission.headers:
                admission.headers = headers(decision)
        return admission

    # -- account -----------------------------------------------------------------------------
    def price(self, model: str, version: str, input_tokens: int | None, output_tokens: int | None) -> float | None:
        return self.prices.cost_of(model, version, input_tokens, output_tokens)

    async def settle(self, admission: Admission, model: str, cost_usd: float | None, actual_tokens: int | None) -> None:
        """Free slots, reconcile tokens (estimate vs usage), charge budgets and count spend."""
        await self._release(admission, admission.estimate if actual_tokens is None else actual_tokens)
        if self.guard.metrics is not None:
            self.guard.metrics.observe(admission.key_id, model, cost_usd)
        if cost_usd:
            try:
                await self.guard.charge(admission.budgets, cost_usd, self.clock.now())
            except Exception:  # noqa: BLE001 - accounting must never fail a served request
                log.warning("could not charge %.6f USD to %s", cost_usd, admission.budgets, exc_info=True)

    async def _release(self, admission: Admission, actual: int) -> None:
        held, admission.held = admission.held, []
        results = await asyncio.gather(
            *(self.limiter.release(subject, limits, admission.estimate, actual) for subject, limits in held),
            return_exceptions=True,
        )
        for (subject, _), result in zip(held, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("could not release %s: %s", subject, result)

    async def close(self) -> None:
        if self.state is not None:
            await self.state.close()


def _limits(config: ModelConfig) -> Limits:
    return Limits(config.limits.rpm, config.limits.tpm, config.limits.max_concurrent)


class _FailOpenLedger:
    """Spend in Redis; while Redis is down, counted locally (and logged), never failing a request."""

    def __init__(self, shared: Any, local: MemorySpendLedger) -> None:
        self.shared, self.local = shared, local

    async def add(self, subject: str, period_key: str, usd: float) -> float:
        try:
            return await self.shared.add(subject, period_key, usd)
        except Exception:  # noqa: BLE001 - StateUnavailableError and friends
            return await self.local.add(subject, period_key, usd)

    async def total(self, subject: str, period_key: str) -> float:
        try:
            return await self.shared.total(subject, period_key)
        except Exception:  # noqa: BLE001
            return await self.local.total(subject, period_key)
