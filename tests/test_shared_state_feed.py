"""The routing feed on a real redis-server: a breaker or split set through one `RedisState` (one gateway process)
reaches the feed of another at once; the feed survives Redis going away, comes back by itself, and catches up."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable

import pytest

from aisre.gateway.routing_feed import RoutingChange, RoutingFeed
from aisre.gateway.shared_state import RedisState
from tests.test_redis_state import REDIS_SERVER, RedisServer

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is installed by make test")


@pytest.fixture
def redis_server():
    s = RedisServer()
    s.start()
    yield s
    s.kill()


class Follower:
    """Another process's view: a RedisState of its own, a feed, what it applied and when it caught up."""

    def __init__(self, url: str, **options: float) -> None:
        self.state = RedisState(url, timeout_s=1.0)
        self.changes: list[RoutingChange] = []
        self.catch_ups = 0
        self.arrived = asyncio.Event()
        self.feed = self.state.routing_feed(self.changes_append, self.catch_up, **options)
        self.task = asyncio.create_task(self.feed.run())

    def changes_append(self, change: RoutingChange) -> None:
        self.changes.append(change)
        self.arrived.set()

    async def catch_up(self) -> None:
        self.catch_ups += 1

    async def next_change(self, timeout_s: float = 10.0) -> RoutingChange:
        await asyncio.wait_for(self.arrived.wait(), timeout_s)
        self.arrived.clear()
        return self.changes[-1]

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.state.close()


async def _until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


async def _timed(call: Awaitable[None], follower: Follower) -> tuple[RoutingChange, float]:
    started = time.monotonic()
    await call
    change = await follower.next_change()
    return change, time.monotonic() - started


def test_a_breaker_and_a_split_set_by_one_process_reach_another_process_feed_at_once(redis_server):
    async def go() -> float:
        follower = Follower(redis_server.url)
        await _until(lambda: follower.feed.subscriptions == 1, 10, "the feed never subscribed")
        setter = RedisState(redis_server.url, timeout_s=1.0)
        change, took_s = await _timed(setter.set_breaker("chat", "v2", True), follower)
        assert change == RoutingChange("chat", version="v2", open=True)
        assert await setter.breakers("chat") == {"v2": True}  # the hash the poll reads, set in the same MULTI
        change, _ = await _timed(setter.set_route_weights("chat", {"v1": 0.9, "v2": 0.1}), follower)
        assert change == RoutingChange("chat", weights={"v1": 0.9, "v2": 0.1})
        change, _ = await _timed(setter.set_breaker("chat", "v2", False), follower)
        assert change.open is False and follower.catch_ups == 1
        await setter.close()
        await follower.close()
        return took_s

    took_s = asyncio.run(go())
    assert took_s < 5.0  # milliseconds in practice; the bound only guards against waiting for a poll
    print(f"breaker change published by one RedisState applied by another's feed after {took_s * 1000:.1f} ms")


def test_the_feed_survives_a_redis_restart_logs_once_and_catches_up(redis_server, caplog):
    caplog.set_level(logging.WARNING, logger="aisre.state")

    async def go() -> None:
        follower = Follower(redis_server.url, max_backoff_s=0.5)
        await _until(lambda: follower.feed.subscriptions == 1, 10, "the feed never subscribed")
        redis_server.kill()
        await asyncio.sleep(2.0)  # several reconnects fail meanwhile
        assert not follower.task.done(), "the feed died with Redis"
        lost = [r for r in caplog.records if "routing updates" in r.getMessage() and "lost" in r.getMessage()]
        assert len(lost) == 1, [r.getMessage() for r in caplog.records]
        errors = follower.state.registry.get_sample_value("aisre_state_errors_total", {"operation": "subscribe"})
        assert errors is not None and errors >= 2
        redis_server.start()  # same port, nothing remembered: the catch-up poll is what restores the state
        await _until(lambda: follower.feed.subscriptions == 2, 10, "the feed did not resubscribe within 10 s")
        assert follower.catch_ups == 2
        assert any("resumed" in r.getMessage() for r in caplog.records)
        setter = RedisState(redis_server.url, timeout_s=1.0)
        await setter.set_breaker("chat", "v2", True)
        assert await follower.next_change() == RoutingChange("chat", version="v2", open=True)
        await setter.close()
        await follower.close()

    asyncio.run(go())


def test_a_silent_redis_is_noticed_by_ping_and_the_feed_resubscribes_when_it_answers(redis_server):
    async def go() -> None:
        follower = Follower(redis_server.url, ping_interval_s=0.2, dead_after_s=1.0, max_backoff_s=0.5)
        await _until(lambda: follower.feed.subscriptions == 1, 10, "the feed never subscribed")
        assert redis_server.proc is not None
        os.kill(redis_server.proc.pid, signal.SIGSTOP)  # the connection stays open, nothing answers
        try:
            await asyncio.sleep(2.5)
            assert follower.state.registry.get_sample_value("aisre_state_errors_total", {"operation": "subscribe"})
        finally:
            os.kill(redis_server.proc.pid, signal.SIGCONT)
        await _until(lambda: follower.feed.subscriptions >= 2, 10, "the feed did not resubscribe after Redis woke")
        setter = RedisState(redis_server.url, timeout_s=1.0)
        await setter.set_route_weights("chat", {"v1": 1.0})
        assert (await follower.next_change()).weights == {"v1": 1.0}
        await setter.close()
        await follower.close()

    asyncio.run(go())


def test_a_foreign_message_on_the_channel_is_skipped_and_later_changes_still_apply(redis_server, caplog):
    caplog.set_level(logging.WARNING, logger="aisre.state")

    async def go() -> None:
        follower = Follower(redis_server.url)
        await _until(lambda: follower.feed.subscriptions == 1, 10, "the feed never subscribed")
        sync = redis_server.sync()
        for junk in ("not json", '{"model": 3}', '{"model": "chat", "version": "v2", "open": "yes"}'):
            sync.publish(follower.state.routing_channel, junk)
        sync.publish(follower.state.routing_channel, RoutingChange("chat", version="v1", open=True).encode())
        assert await follower.next_change() == RoutingChange("chat", version="v1", open=True)
        assert follower.changes == [RoutingChange("chat", version="v1", open=True)]
        assert not follower.task.done()
        skipped = [r for r in caplog.records if "not a routing change" in r.getMessage()]
        assert len(skipped) == 1  # logged once, counted each time
        assert (
            follower.state.registry.get_sample_value("aisre_state_errors_total", {"operation": "routing_message"}) == 3
        )
        await follower.close()

    asyncio.run(go())


def test_routing_changes_round_trip_and_bad_ones_are_named() -> None:
    for change in (RoutingChange("m", weights={"a": 0.5, "b": 0.5}), RoutingChange("m", version="a", open=False)):
        assert RoutingChange.decode(change.encode()) == change
    with pytest.raises(ValueError, match="'weights' must map version to a number"):
        RoutingChange.decode('{"model": "m", "weights": {"a": "x"}}')


def test_a_feed_for_an_unreachable_redis_keeps_running_without_raising() -> None:
    async def go() -> None:
        from tests.conftest import free_port

        feed = RoutingFeed(
            f"redis://127.0.0.1:{free_port()}/0", "aisre:routing", lambda c: None, _nothing, safe_url="x",
            max_backoff_s=0.2,
        )  # fmt: skip
        task = asyncio.create_task(feed.run())
        await asyncio.sleep(1.0)
        assert not task.done() and feed.subscriptions == 0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    asyncio.run(go())


async def _nothing() -> None:
    return None
