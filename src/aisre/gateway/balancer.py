"""Balancing across a version's replicas: power of two choices on outstanding requests,
weighted by an EWMA of latency; passive outlier ejection with backoff; health state.

Picking: two replicas are drawn at random from the admitted ones and the one with the
lower `(outstanding + 1) * ewma_latency` wins (as Envoy's and Finagle's least-loaded
P2C). The EWMA decays towards 0 with the time since the replica's last sample (time
constant `IDLE_DECAY_S`, as Finagle's peak EWMA does): without it, one slow answer would
keep a replica's score high forever, P2C would never pick it again, and no new sample
could ever bring it back. A replica that has not been used for a while is probed again.

A replica failing `consecutive_failures` times in a row (connect errors, 5xx) is
ejected for `base_s * 2**(n-1)` seconds (n = times ejected, capped at `max_s`), and is
re-admitted when that time passes or when an active health check sees it healthy again.
At most `max_ejected_share` of a version's replicas are ejected at once, so a shared
upstream outage does not empty the pool.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aisre.config.gateway import EjectionConfig

EWMA_DECAY = 0.3  # weight of the newest latency sample
INITIAL_LATENCY_S = 0.01
IDLE_DECAY_S = 1.0  # the EWMA of a replica without new samples falls by e every second


@dataclass
class Replica:
    url: str
    outstanding: int = 0
    ewma_latency_s: float = INITIAL_LATENCY_S
    consecutive_failures: int = 0
    ejected_until: float = 0.0
    times_ejected: int = 0
    healthy: bool = True  # from active health checks
    sampled_at: float | None = None  # clock time of the last latency sample

    def admitted(self, now: float) -> bool:
        return self.healthy and now >= self.ejected_until

    def latency(self, now: float) -> float:
        """The EWMA, decayed by the time since it was last fed."""
        if self.sampled_at is None or now <= self.sampled_at:
            return self.ewma_latency_s
        return self.ewma_latency_s * math.exp((self.sampled_at - now) / IDLE_DECAY_S)

    def score(self, now: float) -> float:
        return (self.outstanding + 1) * self.latency(now)


class Balancer:
    """The replicas of one model version, and the policy for choosing among them."""

    def __init__(
        self,
        urls: Sequence[str],
        ejection: EjectionConfig,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        self.replicas = [Replica(u) for u in urls]
        self.ejection = ejection
        self.clock = clock
        self.rng = rng or random.Random()
        self.ejections = 0  # total, for metrics

    def pick(self, exclude: set[str] = frozenset()) -> Replica | None:  # type: ignore[assignment]
        """A replica to try next (not in `exclude`), or None when none is admitted."""
        now = self.clock()
        pool = [r for r in self.replicas if r.url not in exclude and r.admitted(now)]
        if not pool:
            # Everything is ejected or unhealthy: try the least recently ejected rather than
            # fail outright (a panic mode, as Envoy's), unless all were tried already.
            rest = [r for r in self.replicas if r.url not in exclude]
            return min(rest, key=lambda r: r.ejected_until) if rest else None
        if len(pool) == 1:
            return pool[0]
        a, b = self.rng.sample(pool, 2)
        return a if a.score(now) <= b.score(now) else b

    def started(self, replica: Replica) -> None:
        replica.outstanding += 1

    def finished(self, replica: Replica, latency_s: float, ok: bool) -> None:
        """Account for one attempt: latency EWMA on success; failure counting and ejection."""
        replica.outstanding = max(0, replica.outstanding - 1)
        if ok:
            now = self.clock()
            current = replica.latency(now)
            replica.ewma_latency_s = current + EWMA_DECAY * (latency_s - current)
            replica.sampled_at = now
            replica.consecutive_failures = 0
            replica.times_ejected = 0 if replica.ejected_until <= now else replica.times_ejected
            return
        replica.consecutive_failures += 1
        if replica.consecutive_failures >= self.ejection.consecutive_failures:
            self._eject(replica)

    def abandoned(self, replica: Replica) -> None:
        """An attempt the gateway gave up (its client left): no latency sample, no failure."""
        replica.outstanding = max(0, replica.outstanding - 1)

    def _eject(self, replica: Replica) -> None:
        now = self.clock()
        if replica.ejected_until > now:
            return
        ejected = sum(1 for r in self.replicas if r.ejected_until > now)
        if (ejected + 1) / len(self.replicas) > self.ejection.max_ejected_share and len(self.replicas) > 1:
            return
        replica.times_ejected += 1
        backoff = self.ejection.base_s * 2 ** (replica.times_ejected - 1)
        replica.ejected_until = now + min(backoff, self.ejection.max_s)
        replica.consecutive_failures = 0
        self.ejections += 1

    def health(self, replica: Replica, healthy: bool) -> None:
        """Active health check result: a healthy answer re-admits an ejected replica."""
        replica.healthy = healthy
        if healthy and replica.ejected_until > self.clock():
            replica.ejected_until = 0.0
            replica.consecutive_failures = 0

    def admitted_count(self) -> int:
        now = self.clock()
        return sum(1 for r in self.replicas if r.admitted(now))
