"""In-memory GCRA limits driven by a manual clock: exact boundaries, all-or-nothing, reconciliation, no leak."""

from __future__ import annotations

import asyncio
import math
import tracemalloc

import pytest

from aisre.clock import ManualClock
from aisre.gateway.errors import GatewayError
from aisre.gateway.limits import (
    MAX_RATE,
    Decision,
    InMemoryLimiter,
    Limits,
    check_max_prompt_chars,
    check_max_tokens_per_request,
    estimate_tokens,
    format_duration,
    headers,
)


def _limiter() -> tuple[InMemoryLimiter, ManualClock]:
    clock = ManualClock()
    return InMemoryLimiter(clock.monotonic), clock


def _run(coro):
    return asyncio.run(coro)


def test_rpm_admits_exactly_the_limit_then_one_per_emission_interval():
    async def go():
        limiter, clock = _limiter()
        limits = Limits(rpm=60)
        first = [await limiter.acquire("key:a", limits, 0) for _ in range(60)]
        assert all(d.allowed for d in first)
        assert first[-1].requests.remaining == 0
        refused = await limiter.acquire("key:a", limits, 0)
        assert not refused.allowed and refused.refused == "requests"
        assert refused.retry_after_s == pytest.approx(1.0)
        clock.advance(0.999)
        assert not (await limiter.acquire("key:a", limits, 0)).allowed
        clock.advance(0.001)
        assert (await limiter.acquire("key:a", limits, 0)).allowed
        assert not (await limiter.acquire("key:a", limits, 0)).allowed
        assert (await limiter.acquire("key:b", limits, 0)).allowed  # subjects are independent

    _run(go())


@pytest.mark.parametrize("rpm", [1, 7, 59, 300, 1001, 99_991])
def test_boundary_is_exact_for_rates_that_do_not_divide_a_minute(rpm):
    async def go():
        limiter, clock = _limiter()
        limits = Limits(rpm=rpm)
        admitted = 0
        while (await limiter.acquire("s", limits, 0)).allowed:
            admitted += 1
        assert admitted == rpm
        clock.advance(60.0)  # a whole minute refills exactly one burst
        again = 0
        while (await limiter.acquire("s", limits, 0)).allowed:
            again += 1
        assert again == rpm

    _run(go())


def test_sustained_rate_over_ten_minutes_is_exact():
    async def go():
        limiter, clock = _limiter()
        limits = Limits(rpm=7)
        admitted = 0
        for _ in range(6000):  # one attempt every 0.1 s for 10 minutes
            admitted += (await limiter.acquire("s", limits, 0)).allowed
            clock.advance(0.1)
        assert admitted == 7 + 7 * 10 - 1  # initial burst + refill over 599.9 s (the 70th arrives at 600 s)

    _run(go())


def test_tpm_charges_token_costs_and_reports_the_wait():
    async def go():
        limiter, clock = _limiter()
        limits = Limits(tpm=1000)
        assert (await limiter.acquire("s", limits, 600)).allowed
        d = await limiter.acquire("s", limits, 400)
        assert d.allowed and d.tokens.remaining == 0 and d.tokens.reset_s == pytest.approx(60.0)
        refused = await limiter.acquire("s", limits, 100)
        assert refused.refused == "tokens" and refused.retry_after_s == pytest.approx(6.0)  # 100 tokens at 1000/min
        assert "tpm=1000" in refused.reason
        clock.advance(6.0)
        assert (await limiter.acquire("s", limits, 100)).allowed

    _run(go())


def test_a_request_larger_than_the_whole_limit_is_refused_for_good():
    async def go():
        limiter, _ = _limiter()
        d = await limiter.acquire("s", Limits(tpm=1000), 1001)
        assert not d.allowed and d.refused == "tokens" and math.isinf(d.retry_after_s)
        assert "never" in d.reason and "retry-after" not in headers(d)

    _run(go())


def test_all_or_nothing_no_dimension_is_consumed_when_one_refuses():
    async def go():
        limiter, _ = _limiter()
        limits = Limits(rpm=10, tpm=1000, max_concurrent=5)
        assert (await limiter.acquire("s", limits, 900)).allowed
        refused = await limiter.acquire("s", limits, 200)  # tokens refuse; requests and concurrency would admit
        assert refused.refused == "tokens"
        assert refused.requests.remaining == 9 and refused.concurrency.remaining == 4
        # nothing was consumed: 100 tokens and 9 requests are still there
        d = await limiter.acquire("s", limits, 100)
        assert d.allowed and d.requests.remaining == 8 and d.tokens.remaining == 0 and d.concurrency.remaining == 3

    _run(go())


def test_concurrency_slots_are_taken_and_given_back():
    async def go():
        limiter, _ = _limiter()
        limits = Limits(max_concurrent=2)
        assert (await limiter.acquire("m", limits, 10)).allowed
        assert (await limiter.acquire("m", limits, 10)).allowed
        full = await limiter.acquire("m", limits, 10)
        assert full.refused == "concurrency" and full.retry_after_s == 1.0 and "max_concurrent=2" in full.reason
        await limiter.release("m", limits, 10, 10)
        assert (await limiter.acquire("m", limits, 10)).allowed
        for _ in range(3):
            await limiter.release("m", limits, 10, 10)  # one release too many never goes below zero
        assert len(limiter) == 1
        assert (await limiter.acquire("m", limits, 10)).concurrency.remaining == 1

    _run(go())


def test_release_refunds_overestimates_and_charges_underestimates():
    async def go():
        limiter, clock = _limiter()
        limits = Limits(tpm=1000)
        assert (await limiter.acquire("s", limits, 800)).allowed
        await limiter.release("s", limits, 800, 300)  # refund 500
        d = await limiter.acquire("s", limits, 700)
        assert d.allowed and d.tokens.remaining == 0
        await limiter.release("s", limits, 700, 900)  # charge 200 more: a debt past the burst
        refused = await limiter.acquire("s", limits, 1)
        assert refused.refused == "tokens" and refused.retry_after_s == pytest.approx(12.06)  # (200 + 1) tokens
        clock.advance(12.06)
        assert (await limiter.acquire("s", limits, 1)).allowed
        # a refund never makes more than a full burst available
        await limiter.release("s", limits, 5000, 0)
        assert (await limiter.acquire("s", limits, 1000)).allowed
        assert not (await limiter.acquire("s", limits, 1)).allowed

    _run(go())


def test_idle_subjects_are_swept_so_memory_stays_flat():
    async def go():
        limiter, clock = _limiter()
        limits = Limits(rpm=60, tpm=10_000, max_concurrent=4)
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        for i in range(100_000):
            assert (await limiter.acquire(f"key:{i}", limits, 10)).allowed
            await limiter.release(f"key:{i}", limits, 10, 10)
        peak_subjects = len(limiter)
        grown = tracemalloc.get_traced_memory()[0] - base
        clock.advance(61.0)  # every TAT is now in the past
        assert (await limiter.acquire("key:new", limits, 10)).allowed
        after = tracemalloc.get_traced_memory()[0] - base
        tracemalloc.stop()
        assert peak_subjects == 100_000 and grown > 10_000_000
        assert len(limiter) == 1
        assert after < 200_000, f"{after} bytes still held after the sweep"

    _run(go())


def test_busy_subjects_survive_a_sweep():
    async def go():
        limiter, clock = _limiter()
        assert (await limiter.acquire("held", Limits(max_concurrent=1), 0)).allowed
        assert (await limiter.acquire("recent", Limits(rpm=1), 0)).allowed
        clock.advance(30.0)
        assert limiter.sweep() == 0
        clock.advance(31.0)
        assert limiter.sweep() == 1 and len(limiter) == 1  # "recent" expired, "held" still holds its slot

    _run(go())


def test_headers_follow_openai_names_and_formats():
    async def go():
        limiter, _ = _limiter()
        limits = Limits(rpm=3, tpm=600)
        d = await limiter.acquire("s", limits, 100)
        h = headers(d)
        assert h == {
            "x-ratelimit-limit-requests": "3",
            "x-ratelimit-remaining-requests": "2",
            "x-ratelimit-reset-requests": "20s",
            "x-ratelimit-limit-tokens": "600",
            "x-ratelimit-remaining-tokens": "500",
            "x-ratelimit-reset-tokens": "10s",
        }
        await limiter.acquire("s", limits, 100)
        await limiter.acquire("s", limits, 100)
        refused = headers(await limiter.acquire("s", limits, 100))
        assert refused["retry-after"] == "20" and refused["retry-after-ms"] == "20000"
        assert refused["x-ratelimit-remaining-requests"] == "0" and refused["x-ratelimit-reset-requests"] == "1m0s"

    _run(go())


@pytest.mark.parametrize(
    "seconds,text",
    [
        (0, "0s"),
        (0.0001, "1ms"),
        (0.12, "120ms"),
        (1, "1s"),
        (8.64, "8.64s"),
        (59.9999, "1m0s"),
        (360, "6m0s"),
        (90.5, "1m30.5s"),
        (3600, "1h0m0s"),
    ],
)
def test_reset_durations_are_formatted_like_openai(seconds, text):
    assert format_duration(seconds) == text


def test_limits_are_validated_with_the_field_named():
    with pytest.raises(ValueError, match="limits.rpm must be a positive integer"):
        Limits(rpm=0)
    with pytest.raises(ValueError, match="limits.tpm must be at most"):
        Limits(tpm=MAX_RATE + 1)
    assert Limits().unlimited and not Limits(max_concurrent=1).unlimited


def test_unlimited_subjects_hold_no_state():
    async def go():
        limiter, _ = _limiter()
        d = await limiter.acquire("s", Limits(), 10**9)
        assert d == Decision(True, backend="memory") and len(limiter) == 0

    _run(go())


def test_token_estimates_for_chat_completions_and_embeddings():
    chat = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "x" * 40},
            {
                "role": "user",
                "content": [{"type": "text", "text": "y" * 41}, {"type": "image_url", "image_url": {"url": "u"}}],
            },
        ],
    }
    assert estimate_tokens(chat) == 10 + 11 + 256
    assert estimate_tokens(chat | {"max_tokens": 50, "n": 2}) == 21 + 100
    assert estimate_tokens(chat | {"max_completion_tokens": 7, "max_tokens": 50}) == 21 + 7
    assert estimate_tokens({"model": "m", "prompt": "z" * 8, "max_tokens": 5}) == 2 + 5
    assert estimate_tokens({"model": "m", "prompt": [[1, 2, 3], "abcd"], "max_tokens": 1}) == 3 + 1 + 1
    assert estimate_tokens({"model": "m", "input": ["abcd", "abcdefgh"]}) == 3
    assert estimate_tokens({"model": "m", "input": [5, 6, 7]}) == 3


def test_request_size_checks_name_the_field():
    chat = {"model": "m", "messages": [{"role": "user", "content": "x" * 400}], "max_tokens": 1000}
    check_max_prompt_chars(chat, 400)
    check_max_tokens_per_request(chat, 1100)
    with pytest.raises(GatewayError, match="field 'messages' holds 400 characters.*max_prompt_chars=399") as e:
        check_max_prompt_chars(chat, 399)
    assert e.value.status == 400 and e.value.param == "messages"
    with pytest.raises(
        GatewayError,
        match=r"estimated 1,100 tokens.*max_tokens_per_request=1,000; lower field "
        r"'max_tokens'",
    ) as e:
        check_max_tokens_per_request(chat, 1000)
    assert e.value.param == "max_tokens"
    with pytest.raises(GatewayError, match="lower field 'prompt'") as e:
        check_max_tokens_per_request({"model": "m", "prompt": "x" * 4000}, 500)
    assert "default allowance of 256" in e.value.message
