"""Prices, the cost of a call, spend per key and model, and budgets that reset daily or monthly."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, Protocol, runtime_checkable

from prometheus_client import CollectorRegistry, Counter, Gauge

from aisre.errors import AisreError

Period = Literal["daily", "monthly"]
PERIODS: tuple[str, ...] = ("daily", "monthly")
_MILLION = Decimal(1_000_000)
_ZERO = Decimal(0)


def _decimal(value: float) -> Decimal:
    # repr() is the shortest decimal that round-trips: the number as the user wrote it
    # (0.15, not 0.1499999999999999944...), so sums of prices are sums of what was configured.
    return Decimal(repr(float(value)))


def _check_usd(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}: expected a finite number of US dollars >= 0, got {value!r}")


# -- prices ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Price:
    """What one model version costs, in US dollars.

    `input_per_1m_usd` / `output_per_1m_usd`: per million input (prompt) / output
    (completion) tokens, for LLMs. `per_request_usd`: per call, for classical models (or a
    fixed fee on top of tokens).
    """

    input_per_1m_usd: float = 0.0
    output_per_1m_usd: float = 0.0
    per_request_usd: float = 0.0
    _input: Decimal = field(init=False, repr=False, compare=False)
    _output: Decimal = field(init=False, repr=False, compare=False)
    _request: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("input_per_1m_usd", "output_per_1m_usd", "per_request_usd"):
            _check_usd(f"price.{name}", getattr(self, name))
        object.__setattr__(self, "_input", _decimal(self.input_per_1m_usd))
        object.__setattr__(self, "_output", _decimal(self.output_per_1m_usd))
        object.__setattr__(self, "_request", _decimal(self.per_request_usd))

    def cost(self, input_tokens: int | None, output_tokens: int | None, requests: int = 1) -> float:
        """Cost in US dollars of `requests` calls that used these tokens (None counts as 0):

            input_tokens x input_per_1m_usd / 1e6 + output_tokens x output_per_1m_usd / 1e6
            + requests x per_request_usd

        computed in decimal arithmetic on the prices as written, then rounded once to the
        nearest float: 1,234 tokens at $0.15/1M is exactly 0.0001851, not 0.00018509999...
        """
        total = (input_tokens or 0) * self._input + (output_tokens or 0) * self._output
        return float(total / _MILLION + requests * self._request)


class PriceTable:
    """Prices by (model, version); a version with no price has no cost (None, not 0)."""

    def __init__(self, prices: Mapping[tuple[str, str], Price] | None = None) -> None:
        self._prices: dict[tuple[str, str], Price] = dict(prices or {})

    @classmethod
    def from_models(cls, models: Mapping[str, Any]) -> PriceTable:
        """From the config's `models:` (`models.<m>.versions.<v>.price`); unpriced versions are left out."""
        table = cls()
        for model, model_cfg in models.items():
            for version, version_cfg in model_cfg.versions.items():
                p = version_cfg.price
                if p is not None:
                    table.set(model, version, Price(p.input_per_1m_usd, p.output_per_1m_usd, p.per_request_usd))
        return table

    def set(self, model: str, version: str, price: Price) -> None:
        self._prices[(model, version)] = price

    def get(self, model: str, version: str) -> Price | None:
        return self._prices.get((model, version))

    def cost_of(self, model: str, version: str, input_tokens: int | None, output_tokens: int | None) -> float | None:
        """US dollars for one call of `model`/`version`, or None when no price is configured."""
        price = self._prices.get((model, version))
        return None if price is None else price.cost(input_tokens, output_tokens)

    def __contains__(self, key: object) -> bool:
        return key in self._prices

    def __len__(self) -> int:
        return len(self._prices)


# -- periods -----------------------------------------------------------------------------------


def _check_period(period: object) -> None:
    if period is not None and period not in PERIODS:
        raise ValueError(f"budget.period: expected 'daily', 'monthly' or None, got {period!r}")


def period_key(period: Period | None, now: float) -> str:
    """The budget period containing `now` (epoch seconds), in UTC: '2026-11-27' (daily),
    '2026-11' (monthly) or 'all' (no period: the budget never resets)."""
    if period is None:
        return "all"
    # Epoch seconds have no leap seconds, so the UTC day is now // 86400; caching by it keeps
    # date formatting off the per-request path.
    return _period_key_of_day(period, int(now // 86_400))


@functools.lru_cache(maxsize=64)
def _period_key_of_day(period: str, day: int) -> str:
    _check_period(period)
    date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
    return f"{date:%Y-%m-%d}" if period == "daily" else f"{date:%Y-%m}"


def reset_at(period: Period | None, now: float) -> float | None:
    """Epoch seconds of the next reset after `now` (next UTC midnight or 1st of the month,
    00:00Z); None when the budget has no period."""
    _check_period(period)
    if period is None:
        return None
    day = dt.datetime.fromtimestamp(now, dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "daily":
        nxt = day + dt.timedelta(days=1)
    else:
        nxt = day.replace(year=day.year + day.month // 12, month=day.month % 12 + 1, day=1)
    return nxt.timestamp()


def seconds_until_reset(period: Period | None, now: float) -> float | None:
    """Seconds from `now` to the next reset (> 0); None when the budget has no period."""
    at = reset_at(period, now)
    return None if at is None else at - now


# -- spend ledgers -----------------------------------------------------------------------------


@runtime_checkable
class SpendLedger(Protocol):
    """Spend in US dollars per (subject, period key); subjects like 'key:key_abc', 'model:chat'."""

    async def add(self, subject: str, period_key: str, usd: float) -> float:
        """Add `usd` and return the new total of that subject and period."""
        ...

    async def total(self, subject: str, period_key: str) -> float:
        """The total so far (0.0 if nothing was spent)."""
        ...


class MemorySpendLedger:
    """Spend for one process. Sums are exact decimal sums of the amounts added (1,000 x
    $0.001 is $1.0, not 1.0000000000000007). Keeps the latest `keep_periods` period keys per
    subject, so a long-running process does not grow by one entry per subject per day."""

    def __init__(self, keep_periods: int = 4) -> None:
        self._totals: dict[str, dict[str, Decimal]] = {}
        self._keep = keep_periods
        self._lock = threading.Lock()  # the gateway is async, but a Monitor may charge from threads

    async def add(self, subject: str, period_key: str, usd: float) -> float:
        amount = _decimal(usd)
        with self._lock:
            periods = self._totals.setdefault(subject, {})
            total = periods.get(period_key, _ZERO) + amount
            periods[period_key] = total
            if len(periods) > self._keep:
                del periods[next(iter(periods))]
        return float(total)

    async def total(self, subject: str, period_key: str) -> float:
        return float(self._totals.get(subject, {}).get(period_key, _ZERO))


class RedisSpendLedger:
    """Spend shared by every gateway process through Redis: adapts the shared-state object
    (`aisre.gateway.shared_state`, duck-typed here) to `SpendLedger`."""

    def __init__(self, state: Any) -> None:
        self._state = state

    async def add(self, subject: str, period_key: str, usd: float) -> float:
        return float(await self._state.incr_spend(subject, period_key, usd))

    async def total(self, subject: str, period_key: str) -> float:
        return float(await self._state.get_spend(subject, period_key))


# -- budgets -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Budget:
    """At most `usd` US dollars per `period` ('daily', 'monthly': UTC calendar day or month;
    None: in total, never resets). `label` is what a client is told the budget belongs to
    (a key's *name*, never its secret); by default the subject's id."""

    usd: float
    period: Period | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        _check_usd("budget.usd", self.usd)
        _check_period(self.period)

    @classmethod
    def from_config(cls, budget: Any, label: str | None = None) -> Budget:
        """From a `models.<m>.budget` section (`usd`, `period`)."""
        return cls(budget.usd, budget.period, label)


_PERIOD_WORDS = {"daily": "today", "monthly": "this month", None: "in total"}


def _money(usd: float, decimals: int) -> str:
    return f"${usd:,.{decimals}f}"


def _limit(usd: float) -> str:
    """$10.00, or as many decimals as a small limit needs ($0.005)."""
    return _money(usd, 2) if round(usd, 2) == usd else f"${_decimal(usd):,f}"


class BudgetExceededError(AisreError):
    """A budget is spent; the message is safe to show the client (names, amounts, reset time)."""

    code = "budget_exceeded"

    def __init__(self, subject: str, budget: Budget, spent_usd: float, now: float) -> None:
        self.subject = subject
        self.budget = budget
        self.spent_usd = spent_usd
        self.limit_usd = budget.usd
        self.reset_at = reset_at(budget.period, now)
        self.retry_after_s = None if self.reset_at is None else self.reset_at - now
        kind, sep, ident = subject.partition(":")
        name = budget.label or (ident if sep else subject)
        who = f"{kind} {name!r}" if sep else repr(name)
        if self.reset_at is None:
            when = "this budget does not reset"
        else:
            when = f"resets {dt.datetime.fromtimestamp(self.reset_at, dt.UTC):%Y-%m-%dT%H:%MZ}"
        super().__init__(
            f"budget of {who} exhausted: spent {_money(spent_usd, 4)} of {_limit(budget.usd)} "
            f"{_PERIOD_WORDS[budget.period]}; {when}"
        )


class SpendMetrics:
    """Prometheus: `aisre_spend_usd_total{key,model}` (key = key *id*; '' when no key) and
    `aisre_budget_remaining_usd{subject}` (never below 0)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.spend = Counter(
            "aisre_spend_usd",
            "Spend in US dollars, by API key id and model.",
            ("key", "model"),
            registry=self.registry,
        )
        self.remaining = Gauge(
            "aisre_budget_remaining_usd",
            "US dollars left in the current period of a budget (subject: key:<key id> or model:<model>).",
            ("subject",),
            registry=self.registry,
        )
        self._spend_children: dict[tuple[str, str], Any] = {}
        self._remaining_children: dict[str, Any] = {}

    def observe(self, key_id: str | None, model: str, usd: float | None) -> None:
        """Count the cost of one call."""
        if not usd:
            return
        labels = (key_id or "", model)
        child = self._spend_children.get(labels)
        if child is None:
            child = self._spend_children.setdefault(labels, self.spend.labels(*labels))
        child.inc(usd)

    def set_remaining(self, subject: str, usd: float) -> None:
        child = self._remaining_children.get(subject)
        if child is None:
            child = self._remaining_children.setdefault(subject, self.remaining.labels(subject))
        child.set(max(0.0, usd))


class BudgetGuard:
    """Checks budgets before a call and charges them after, through a `SpendLedger`.

    Enforcement is check-then-charge: a call is admitted while spent < limit, and its cost
    is known only when it ends, so a budget can be overshot by the calls in flight when it
    runs out (at most one call's cost per concurrent request). Nothing is reserved up front.
    """

    def __init__(self, ledger: SpendLedger, metrics: SpendMetrics | None = None) -> None:
        self.ledger = ledger
        self.metrics = metrics

    async def check(self, subjects_with_budgets: Sequence[tuple[str, Budget]], now: float) -> None:
        """Raise BudgetExceededError for the first exhausted budget (spent >= limit)."""
        # Read concurrently: with a shared ledger each read is a network round trip.
        totals = await asyncio.gather(
            *(self.ledger.total(subject, period_key(budget.period, now)) for subject, budget in subjects_with_budgets)
        )
        for (subject, budget), spent in zip(subjects_with_budgets, totals, strict=True):
            if self.metrics is not None:
                self.metrics.set_remaining(subject, budget.usd - spent)
            if spent >= budget.usd:
                raise BudgetExceededError(subject, budget, spent, now)

    async def charge(self, subjects: Sequence[tuple[str, Budget]], usd: float | None, now: float) -> None:
        """Add the cost of a finished call (US dollars; None or 0 is a no-op) to each budget."""
        if not usd:
            return
        _check_usd("usd", usd)
        totals = await asyncio.gather(
            *(self.ledger.add(subject, period_key(budget.period, now), usd) for subject, budget in subjects)
        )
        for (subject, budget), total in zip(subjects, totals, strict=True):
            if self.metrics is not None:
                self.metrics.set_remaining(subject, budget.usd - total)

    async def remaining(self, subject: str, budget: Budget, now: float) -> float:
        """US dollars left in the current period (0 when exhausted or overshot)."""
        spent = await self.ledger.total(subject, period_key(budget.period, now))
        return max(0.0, budget.usd - spent)


def key_subject(key_id: str) -> str:
    """The ledger subject of an API key: 'key:<key id>'."""
    return f"key:{key_id}"


def model_subject(model: str) -> str:
    """The ledger subject of a model (all its versions): 'model:<model>'."""
    return f"model:{model}"
