from __future__ import annotations

import asyncio
import datetime as dt
import random
import subprocess
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest

import aisre
from aisre.clock import ManualClock
from aisre.config import config_from_dict
from aisre.errors import AisreError
from aisre.gateway.cost import (
    Budget,
    BudgetExceededError,
    BudgetGuard,
    MemorySpendLedger,
    Price,
    PriceTable,
    RedisSpendLedger,
    SpendLedger,
    SpendMetrics,
    key_subject,
    model_subject,
    period_key,
    reset_at,
    seconds_until_reset,
)
from aisre.store.summary import summarize_by_key

from .conftest import PYTHON


def utc(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=dt.UTC).timestamp()


# -- prices -----------------------------------------------------------------------------------


def test_token_cost_is_tokens_times_price_per_million_exactly():
    price = Price(input_per_1m_usd=0.15, output_per_1m_usd=0.60)
    assert price.cost(1234, 567) == 0.0005253  # float arithmetic would give 0.0005252999999999999
    assert Price(2.5, 10.0).cost(1_000_000, 1_000_000) == 12.5
    assert Price(3.0, 15.0).cost(1, 0) == 0.000003
    assert Price(3.0, 15.0).cost(0, 0) == 0.0


def test_token_cost_equals_the_decimal_formula_rounded_once():
    rng = random.Random(7)
    for _ in range(2_000):
        p_in, p_out = round(rng.uniform(0, 80), rng.randint(0, 4)), round(rng.uniform(0, 80), rng.randint(0, 4))
        t_in, t_out = rng.randint(0, 2_000_000), rng.randint(0, 200_000)
        expected = (t_in * Decimal(repr(p_in)) + t_out * Decimal(repr(p_out))) / Decimal(10**6)
        assert Price(p_in, p_out).cost(t_in, t_out) == float(expected)


def test_per_request_price_for_classical_models():
    price = Price(per_request_usd=0.0004)
    assert price.cost(None, None) == 0.0004
    assert price.cost(None, None, requests=3) == 0.0012
    assert Price(1.0, 2.0, per_request_usd=0.01).cost(500_000, 250_000) == 1.01


@pytest.mark.parametrize("bad", [-0.01, float("nan"), float("inf"), "1.0", True])
def test_price_rejects_bad_amounts_naming_the_field(bad):
    with pytest.raises(ValueError, match="price.output_per_1m_usd: expected a finite number"):
        Price(1.0, bad)


def test_price_table_has_no_cost_for_unpriced_versions():
    table = PriceTable({("chat", "v1"): Price(0.5, 1.5)})
    table.set("fraud", "v3", Price(per_request_usd=0.001))
    assert table.cost_of("chat", "v1", 2_000, 1_000) == 0.0025
    assert table.cost_of("fraud", "v3", None, None) == 0.001
    assert table.cost_of("chat", "v2", 2_000, 1_000) is None
    assert ("chat", "v1") in table and len(table) == 2


def test_prices_and_budgets_come_from_the_config():
    config = config_from_dict(
        {
            "models": {
                "chat": {
                    "protocol": "openai",
                    "budget": {"usd": 25, "period": "monthly"},
                    "versions": {
                        "v1": {
                            "replicas": ["http://127.0.0.1:9"],
                            "price": {"input_per_1m_usd": 0.15, "output_per_1m_usd": 0.6},
                        },
                        "v2": {"replicas": ["http://127.0.0.1:9"]},
                    },
                }
            }
        }
    )
    table = PriceTable.from_models(config.models)
    assert table.cost_of("chat", "v1", 1234, 567) == 0.0005253
    assert table.cost_of("chat", "v2", 1234, 567) is None
    assert Budget.from_config(config.models["chat"].budget) == Budget(25.0, "monthly")


# -- periods ----------------------------------------------------------------------------------


def test_daily_period_turns_at_utc_midnight():
    clock = ManualClock(utc(2026, 11, 27, 23, 59, 59))
    assert period_key("daily", clock.now()) == "2026-11-27"
    assert seconds_until_reset("daily", clock.now()) == 1.0
    clock.advance(1.0)
    assert period_key("daily", clock.now()) == "2026-11-28"
    assert seconds_until_reset("daily", clock.now()) == 86_400.0


def test_monthly_period_turns_on_the_first_of_the_month():
    clock = ManualClock(utc(2026, 11, 27, 12))
    assert period_key("monthly", clock.now()) == "2026-11"
    assert reset_at("monthly", clock.now()) == utc(2026, 12, 1)
    assert seconds_until_reset("monthly", clock.now()) == 3.5 * 86_400
    clock.advance(3.5 * 86_400 - 0.25)
    assert period_key("monthly", clock.now()) == "2026-11"
    clock.advance(0.25)
    assert period_key("monthly", clock.now()) == "2026-12"


def test_december_rolls_over_into_january_of_the_next_year():
    clock = ManualClock(utc(2026, 12, 31, 23, 59, 59))
    assert (period_key("daily", clock.now()), period_key("monthly", clock.now())) == ("2026-12-31", "2026-12")
    assert reset_at("daily", clock.now()) == reset_at("monthly", clock.now()) == utc(2027, 1, 1)
    clock.advance(1.0)
    assert (period_key("daily", clock.now()), period_key("monthly", clock.now())) == ("2027-01-01", "2027-01")
    assert reset_at("monthly", clock.now()) == utc(2027, 2, 1)


def test_budget_without_period_never_resets():
    assert period_key(None, utc(2026, 5, 1)) == "all"
    assert seconds_until_reset(None, utc(2026, 5, 1)) is None


def test_bad_budgets_are_refused_with_the_field_named():
    with pytest.raises(ValueError, match="budget.period: expected 'daily', 'monthly' or None, got 'weekly'"):
        Budget(10.0, "weekly")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="budget.period: expected"):
        period_key("weekly", 0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="budget.usd"):
        Budget(-1.0)


# -- budgets ----------------------------------------------------------------------------------


def test_exhausted_key_budget_says_which_budget_how_much_and_when_it_resets():
    now = utc(2026, 11, 27, 15, 30)
    guard = BudgetGuard(MemorySpendLedger())
    budget = Budget(10.0, "monthly", label="ci-bot")
    subjects = [(key_subject("key_abc"), budget)]
    asyncio.run(guard.check(subjects, now))  # nothing spent yet
    asyncio.run(guard.charge(subjects, 10.0213, now))
    with pytest.raises(BudgetExceededError) as info:
        asyncio.run(guard.check(subjects, now))
    err = info.value
    assert str(err) == "budget of key 'ci-bot' exhausted: spent $10.0213 of $10.00 this month; resets 2026-12-01T00:00Z"
    assert isinstance(err, AisreError)
    assert err.subject == "key:key_abc" and err.limit_usd == 10.0 and err.spent_usd == pytest.approx(10.0213)
    assert err.retry_after_s == utc(2026, 12, 1) - now


def test_model_budget_message_without_label_names_the_model():
    now = utc(2026, 11, 27, 8)
    guard = BudgetGuard(MemorySpendLedger())
    subjects = [(key_subject("key_abc"), Budget(100.0, "daily")), (model_subject("chat"), Budget(0.005, "daily"))]
    asyncio.run(guard.charge(subjects, 0.005, now))
    with pytest.raises(
        BudgetExceededError,
        match=r"^budget of model 'chat' exhausted: spent \$0.0050 of \$0.005 "
        r"today; resets 2026-11-28T00:00Z$",
    ):
        asyncio.run(guard.check(subjects, now))
    total = [(model_subject("chat"), Budget(1.0))]
    asyncio.run(guard.charge(total, 1.5, now))
    with pytest.raises(BudgetExceededError, match=r"\$1.5000 of \$1.00 in total; this budget does not reset"):
        asyncio.run(guard.check(total, now))


def test_budget_is_available_again_after_the_period_resets():
    clock = ManualClock(utc(2026, 12, 31, 22))
    guard = BudgetGuard(MemorySpendLedger())
    subjects = [(key_subject("key_abc"), Budget(1.0, "monthly"))]
    asyncio.run(guard.charge(subjects, 1.0, clock.now()))
    with pytest.raises(BudgetExceededError, match="resets 2027-01-01T00:00Z"):
        asyncio.run(guard.check(subjects, clock.now()))
    clock.advance(2 * 3600)
    asyncio.run(guard.check(subjects, clock.now()))
    assert asyncio.run(guard.remaining("key:key_abc", subjects[0][1], clock.now())) == 1.0


def test_a_budget_admits_calls_while_spend_is_below_the_limit():
    now = utc(2026, 3, 3)
    guard = BudgetGuard(MemorySpendLedger())
    subjects = [("key:k", Budget(0.01, "daily"))]
    for _ in range(9):
        asyncio.run(guard.check(subjects, now))
        asyncio.run(guard.charge(subjects, 0.001, now))
    asyncio.run(guard.check(subjects, now))  # $0.009 < $0.01
    asyncio.run(guard.charge(subjects, 0.001, now))
    with pytest.raises(BudgetExceededError):  # exactly $0.01: nothing left
        asyncio.run(guard.check(subjects, now))


# -- ledgers ----------------------------------------------------------------------------------


def test_one_thousand_concurrent_charges_sum_exactly():
    ledger = MemorySpendLedger()
    guard = BudgetGuard(ledger)
    now = utc(2026, 11, 27)
    subjects = [(key_subject("key_abc"), Budget(5.0, "daily")), (model_subject("chat"), Budget(50.0, "monthly"))]

    async def burst() -> None:
        await asyncio.gather(*(guard.charge(subjects, 0.001, now) for _ in range(1_000)))

    asyncio.run(burst())
    assert asyncio.run(ledger.total("key:key_abc", "2026-11-27")) == 1.0
    assert asyncio.run(ledger.total("model:chat", "2026-11")) == 1.0
    assert asyncio.run(ledger.total("model:chat", "2026-10")) == 0.0


def test_memory_ledger_sums_exactly_from_many_threads():
    ledger = MemorySpendLedger()

    def worker() -> None:
        async def many() -> None:
            await asyncio.gather(*(ledger.add("key:k", "all", 0.0007) for _ in range(500)))

        asyncio.run(many())

    with ThreadPoolExecutor(4) as pool:
        for f in [pool.submit(worker) for _ in range(4)]:
            f.result()
    assert asyncio.run(ledger.total("key:k", "all")) == 1.4
    assert isinstance(ledger, SpendLedger)


def test_memory_ledger_keeps_only_recent_periods():
    ledger = MemorySpendLedger(keep_periods=2)
    for day in ("2026-11-25", "2026-11-26", "2026-11-27"):
        asyncio.run(ledger.add("key:k", day, 1.0))
    assert asyncio.run(ledger.total("key:k", "2026-11-25")) == 0.0
    assert asyncio.run(ledger.total("key:k", "2026-11-27")) == 1.0


def test_redis_ledger_adapts_the_shared_state_calls():
    class State:  # the shape of aisre.gateway.shared_state's object; Redis itself is tested there
        def __init__(self) -> None:
            self.calls: list[tuple] = []

        async def incr_spend(self, subject: str, period: str, usd: float) -> float:
            self.calls.append(("incr", subject, period, usd))
            return 2.5

        async def get_spend(self, subject: str, period: str) -> str:
            self.calls.append(("get", subject, period))
            return "2.5"

    state = State()
    ledger = RedisSpendLedger(state)
    assert asyncio.run(ledger.add("key:k", "2026-11", 0.5)) == 2.5
    assert asyncio.run(ledger.total("key:k", "2026-11")) == 2.5
    assert state.calls == [("incr", "key:k", "2026-11", 0.5), ("get", "key:k", "2026-11")]
    assert isinstance(ledger, SpendLedger)


# -- metrics ----------------------------------------------------------------------------------


def test_spend_metrics_count_by_key_and_model_and_track_remaining_budget():
    registry = CollectorRegistry()
    metrics = SpendMetrics(registry)
    metrics.observe("key_x", "chat", 0.5)
    metrics.observe("key_x", "chat", 0.25)
    metrics.observe(None, "fraud", 0.125)
    metrics.observe("key_x", "chat", None)
    assert registry.get_sample_value("aisre_spend_usd_total", {"key": "key_x", "model": "chat"}) == 0.75
    assert registry.get_sample_value("aisre_spend_usd_total", {"key": "", "model": "fraud"}) == 0.125

    guard = BudgetGuard(MemorySpendLedger(), metrics)
    now = utc(2026, 11, 27)
    subjects = [(key_subject("key_x"), Budget(1.0, "daily"))]
    asyncio.run(guard.charge(subjects, 0.75, now))
    assert registry.get_sample_value("aisre_budget_remaining_usd", {"subject": "key:key_x"}) == 0.25
    asyncio.run(guard.charge(subjects, 0.5, now))
    assert registry.get_sample_value("aisre_budget_remaining_usd", {"subject": "key:key_x"}) == 0.0
    asyncio.run(guard.check(subjects, now + 86_400))  # a new day: the gauge shows the full budget again
    assert registry.get_sample_value("aisre_budget_remaining_usd", {"subject": "key:key_x"}) == 1.0
    assert b'aisre_spend_usd_total{key="key_x",model="chat"} 0.75' in generate_latest(registry)


# -- aisre log stats --by-key -----------------------------------------------------------------


@pytest.fixture
def keyed_store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'spend.db'}"
    price = Price(input_per_1m_usd=0.15, output_per_1m_usd=0.60)
    with aisre.Monitor("chat", "v1", store=url) as m:
        for tokens_in, tokens_out in ((1000, 200), (3000, 400), (6000, 400)):
            m.record(
                "hi",
                output_text="hello",
                key_id="key_x",
                input_tokens=tokens_in,
                output_tokens=tokens_out,
                cost_usd=price.cost(tokens_in, tokens_out),
                latency_s=0.1,
            )
        m.record(
            "hi",
            key_id="key_y",
            status="error",
            error="upstream 502",
            input_tokens=50,
            output_tokens=0,
            cost_usd=price.cost(50, 0),
        )
    with aisre.Monitor("fraud", "v2", store=url) as m:
        m.record({"amount": 3.0}, 1, key_id="key_x", cost_usd=0.01)
        m.record({"amount": 4.0}, 0)
    return url


def test_summarize_by_key_adds_tokens_and_cost_per_key(keyed_store: str):
    rows = {r.key_id: r for r in summarize_by_key(aisre.open_store(keyed_store))}
    x = rows["key_x"]
    assert (x.count, x.errors, x.input_tokens, x.output_tokens, x.models) == (4, 0, 10_000, 1_000, ("chat", "fraud"))
    assert x.cost_usd == pytest.approx(0.00027 + 0.00069 + 0.00114 + 0.01)
    y = rows["key_y"]
    assert (y.count, y.errors, y.error_rate, y.input_tokens, y.output_tokens) == (1, 1, 1.0, 50, 0)
    assert (rows[None].count, rows[None].cost_usd) == (1, 0.0)
    assert [r.key_id for r in summarize_by_key(aisre.open_store(keyed_store))] == ["key_x", "key_y", None]


def cells(stdout: str, key: str) -> list[str]:
    line = next(line for line in stdout.splitlines() if key in line)
    return [c.strip() for c in line.strip("│ ").split("│")]


def test_log_stats_by_key_prints_spend_per_key(keyed_store: str):
    out = subprocess.run(
        [PYTHON, "-m", "aisre", "log", "stats", "--by-key", "--store", keyed_store],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert cells(out.stdout, "key_x") == ["key_x", "chat,fraud", "4", "0", "0.00%", "10,000", "1,000", "0.0121"]
    assert cells(out.stdout, "key_y") == ["key_y", "chat", "1", "1", "100.00%", "50", "0", "0.0000"]
    assert cells(out.stdout, "(no key)") == ["(no key)", "fraud", "1", "0", "0.00%", "0", "0", "0.0000"]
    only_chat = subprocess.run(
        [PYTHON, "-m", "aisre", "log", "stats", "--by-key", "--model", "chat", "--store", keyed_store],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert cells(only_chat.stdout, "key_x") == ["key_x", "chat", "3", "0", "0.00%", "10,000", "1,000", "0.0021"]
    assert "(no key)" not in only_chat.stdout
    plain = subprocess.run(
        [PYTHON, "-m", "aisre", "log", "stats", "--store", keyed_store], capture_output=True, text=True, timeout=60
    )
    assert plain.returncode == 0 and "p95 ms" in plain.stdout and "key_x" not in plain.stdout
