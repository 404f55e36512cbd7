"""A retry budget: retries may add at most `ratio` of recent request volume (plus a small
floor per second), so an upstream outage cannot turn into a retry storm (the gRPC/Finagle
retry-budget idea, as a token bucket)."""

from __future__ import annotations

from collections.abc import Callable

from aisre.config.gateway import RetryConfig

RETRYABLE_STATUS = frozenset({502, 503, 504})


class RetryBudget:
    def __init__(self, config: RetryConfig, clock: Callable[[], float]) -> None:
        self.ratio = config.budget_ratio
        self.floor_per_s = config.min_per_second
        self.clock = clock
        self.capacity = max(10.0, self.floor_per_s * 10)
        self.tokens = self.capacity
        self._last = clock()
        self.retries = 0
        self.refused = 0

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self._last) * self.floor_per_s)
        self._last = now

    def on_request(self) -> None:
        """Every first attempt earns `ratio` of a retry."""
        self._refill()
        self.tokens = min(self.capacity, self.tokens + self.ratio)

    def try_spend(self) -> bool:
        """True if a retry is allowed now (and spends it)."""
        self._refill()
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.retries += 1
            return True
        self.refused += 1
        return False
