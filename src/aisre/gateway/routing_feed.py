"""Route weights and breaker states pushed between gateway processes: PUBLISH on change, SUBSCRIBE to apply.

Issue #12: "a breaker opened on one [gateway] seen by the other within 1 s". A poll every second meets that
only on average (a change lands anywhere in the interval, and a slow Redis reply adds to it), so the process
that changes a breaker or a split also PUBLISHes it, in the same MULTI as the hash it writes
(`RedisState.set_breaker`, `set_route_weights`), and every process follows the channel with a `RoutingFeed`,
applying each change as it arrives (milliseconds). Pub/sub is fire-and-forget: a process that is
disconnected when a change is published never gets it, so the gateway keeps its one-second poll of the
hashes as the catch-up, and the feed polls once more each time it (re)subscribes. The feed reconnects with
back-off, logs one line when it loses Redis and one when it is back, and never raises into the gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger("aisre.state")


@dataclass(frozen=True)
class RoutingChange:
    """One change to a model's routing: new `weights` (version → weight), or a version's breaker `open` or not."""

    model: str
    weights: Mapping[str, float] | None = None
    version: str | None = None
    open: bool | None = None

    def encode(self) -> str:
        if self.weights is not None:
            return json.dumps({"model": self.model, "weights": dict(self.weights)}, separators=(",", ":"))
        return json.dumps({"model": self.model, "version": self.version, "open": self.open}, separators=(",", ":"))

    @classmethod
    def decode(cls, data: str | bytes) -> RoutingChange:
        """The change a message carries; ValueError naming what is wrong for anything else on the channel."""
        try:
            msg = json.loads(data)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("model"), str):
            raise ValueError("expected an object with a string 'model'")
        if "weights" in msg:
            weights = msg["weights"]
            if not isinstance(weights, dict) or not all(
                isinstance(w, int | float) and not isinstance(w, bool) for w in weights.values()
            ):
                raise ValueError("'weights' must map version to a number")
            return cls(msg["model"], weights={str(v): float(w) for v, w in weights.items()})
        if not isinstance(msg.get("version"), str) or not isinstance(msg.get("open"), bool):
            raise ValueError("expected 'weights', or a string 'version' and a boolean 'open'")
        return cls(msg["model"], version=msg["version"], open=msg["open"])


class RoutingFeed:
    """Follows the routing channel on its own connection; `run()` returns only when cancelled.

    `apply(change)` is called for each change, on the event loop, as it arrives; `on_subscribed()` after each
    (re)subscription (the caller's catch-up poll: what was published while the feed was away is lost to it).
    A connection that goes silent (a host gone without a reset) is noticed by a PING every `ping_interval_s`
    left unanswered for `dead_after_s`; reconnects wait 0.1 s, doubling to `max_backoff_s`. `on_error(what)` counts
    each failure (the state's `aisre_state_errors_total{operation="subscribe"}`)."""

    def __init__(
        self,
        url: str,
        channel: str,
        apply: Callable[[RoutingChange], None],
        on_subscribed: Callable[[], Awaitable[None]],
        *,
        safe_url: str,
        connect_timeout_s: float = 0.25,
        ping_interval_s: float = 5.0,
        dead_after_s: float = 15.0,
        max_backoff_s: float = 5.0,
        on_error: Callable[[str], None] = lambda operation: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self.safe_url = safe_url
        self.channel = channel
        self._apply = apply
        self._on_subscribed = on_subscribed
        self._connect_timeout_s = connect_timeout_s
        self.ping_interval_s = ping_interval_s
        self.dead_after_s = dead_after_s
        self.max_backoff_s = max_backoff_s
        self._on_error = on_error
        self._clock = clock
        self.subscriptions = 0  # how many times it (re)subscribed: 1 plus one per reconnect
        self.applied = 0  # changes applied
        self._lost_since: float | None = None
        self._bad_logged = False

    async def run(self) -> None:
        backoff = 0.1
        while True:
            before = self.subscriptions
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any failure: reconnect; the poll keeps routing current meanwhile
                self._on_error("subscribe")
                if self.subscriptions != before:
                    backoff = 0.1  # it had been following: the back-off starts over
                if self._lost_since is None:
                    self._lost_since = self._clock()
                    log.warning(
                        "routing updates from %s lost (%s: %s); resubscribing with back-off up to %.0f s, the"
                        " 1 s poll catches up once Redis answers",
                        self.safe_url,
                        type(exc).__name__,
                        exc,
                        self.max_backoff_s,
                    )
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.max_backoff_s)

    async def _follow(self) -> None:
        client = Redis.from_url(
            self._url,
            socket_connect_timeout=self._connect_timeout_s,
            socket_timeout=max(self._connect_timeout_s, 1.0),  # subscribe/ping replies; reads pass their own
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
            driver_info=None,
        )
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            self.subscriptions += 1
            if self._lost_since is not None:
                log.warning(
                    "routing updates from %s resumed after %.1f s", self.safe_url, self._clock() - self._lost_since
                )
                self._lost_since = None
            await self._catch_up()
            heard = pinged = self._clock()
            while True:
                message = await pubsub.get_message(timeout=min(1.0, self.ping_interval_s))
                now = self._clock()
                if message is not None:
                    heard = now
                    if message.get("type") == "message":
                        self._handle(message.get("data"))
                if now - heard > self.dead_after_s:
                    raise TimeoutError(f"no reply to PING in {self.dead_after_s:.0f} s")
                if now - pinged >= self.ping_interval_s:
                    pinged = now
                    await pubsub.ping()
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _catch_up(self) -> None:
        try:
            await self._on_subscribed()
        except Exception as exc:  # noqa: BLE001 - the poll logs its own failures; the feed keeps following
            log.debug("catch-up poll after subscribing failed: %s", exc)

    def _handle(self, data: Any) -> None:
        try:
            change = RoutingChange.decode(data)
        except ValueError as exc:
            self._on_error("routing_message")
            if not self._bad_logged:  # once: someone else's messages on our channel must not flood the log
                self._bad_logged = True
                log.warning(
                    "ignoring a message on %s that is not a routing change (%s): %.200r", self.channel, exc, data
                )
            return
        try:
            self._apply(change)
        except Exception:  # noqa: BLE001 - one bad change must not stop the feed
            log.exception("applying routing change %r failed", change)
            return
        self.applied += 1
