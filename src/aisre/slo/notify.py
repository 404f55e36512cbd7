"""Delivering SLO alerts to the receivers of `notifications:`, off the evaluation loop, with retries.

Each receiver has its own queue and daemon thread, so a receiver that is down or slow (its
`timeout_s`) delays only its own deliveries, never the evaluation nor the other receivers. A
failed delivery is retried with exponential back-off (1 s doubling up to 60 s) until it
succeeds or is older than the receiver's `give_up_after`; deliveries to one receiver keep their
order (a `resolved` is never delivered before the `firing` it ends). The payloads are
`aisre.slo.webhook`'s: Alertmanager's webhook format for `webhook:` receivers, its API v2 for
`alertmanager:` ones.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from aisre.config.notifications import NotificationsConfig, ReceiverConfig
from aisre.slo.alerts import Alert
from aisre.slo.webhook import AlertmanagerClient, WebhookNotifier, fingerprint

log = logging.getLogger("aisre.slo.notify")
FIRST_RETRY_S = 1.0
MAX_RETRY_S = 60.0
MAX_QUEUE = 1000  # per receiver; beyond it the oldest delivery is dropped (and counted)


@dataclass
class _Delivery:
    alerts: list[Alert]
    created: float  # time.monotonic()
    attempts: int = 0
    next_attempt: float = 0.0


@dataclass
class DeliveryStats:
    """What one receiver's queue did, for /metrics: deliveries sent, attempts failed, deliveries dropped."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0
    pending: int = 0
    last_error: str | None = None


class ReceiverQueue:
    """One receiver's deliveries, sent in order by a daemon thread (started on the first `submit`)."""

    def __init__(self, config: ReceiverConfig) -> None:
        self.config = config
        self._poster: WebhookNotifier | AlertmanagerClient = (
            WebhookNotifier(config.url, config.timeout_s, receiver=config.name, headers=config.headers)
            if config.kind == "webhook"
            else AlertmanagerClient(config.url, config.timeout_s, headers=config.headers)
        )
        self._queue: deque[_Delivery] = deque()
        self._cond = threading.Condition()
        self._stop = False
        self._busy = False
        self._thread: threading.Thread | None = None
        self.stats = DeliveryStats()

    def submit(self, alerts: Sequence[Alert]) -> None:
        """Queue one delivery of `alerts` (returns at once)."""
        with self._cond:
            if len(self._queue) >= MAX_QUEUE:
                self._queue.popleft()
                self.stats.dropped += 1
                log.warning("notifications: %s: queue full, dropped the oldest delivery", self.config.name)
            self._queue.append(_Delivery(list(alerts), time.monotonic()))
            self.stats.pending = len(self._queue)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=f"aisre-notify-{self.config.name}", daemon=True)
                self._thread.start()
            self._cond.notify()

    def drain(self, timeout_s: float) -> bool:
        """Wait until every queued delivery is sent or dropped; False if some are still pending after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.1))
        return True

    def stop(self, timeout_s: float = 5.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stop and (not self._queue or self._queue[0].next_attempt > time.monotonic()):
                    wait = self._queue[0].next_attempt - time.monotonic() if self._queue else None
                    self._cond.wait(wait)
                if self._stop:
                    return
                delivery = self._queue[0]
                self._busy = True
            ok = self._attempt(delivery)
            with self._cond:
                self._busy = False
                if ok or self._expired(delivery):
                    if self._queue and self._queue[0] is delivery:
                        self._queue.popleft()
                    if not ok:
                        self.stats.dropped += 1
                        log.error(
                            "notifications: %s: gave up after %d attempts over %s (%s)",
                            self.config.name,
                            delivery.attempts,
                            self.config.give_up_after,
                            self.stats.last_error,
                        )
                self.stats.pending = len(self._queue)
                self._cond.notify_all()

    def _attempt(self, delivery: _Delivery) -> bool:
        delivery.attempts += 1
        try:
            poster = self._poster
            ok = poster.notify(delivery.alerts) if isinstance(poster, WebhookNotifier) else poster.push(delivery.alerts)
        except Exception as exc:  # noqa: BLE001 - a bug in one delivery must not kill the receiver's thread
            ok = False
            self._poster.last_error = f"{type(exc).__name__}: {exc}"
        if ok:
            self.stats.sent += 1
            return True
        self.stats.failed += 1
        self.stats.last_error = self._poster.last_error
        backoff = min(MAX_RETRY_S, FIRST_RETRY_S * 2 ** (delivery.attempts - 1))
        delivery.next_attempt = time.monotonic() + backoff
        log.warning(
            "notifications: %s: delivery failed (%s); retrying in %.0f s",
            self.config.name,
            self.stats.last_error,
            backoff,
        )
        return False

    def _expired(self, delivery: _Delivery) -> bool:
        return time.monotonic() - delivery.created >= self.config.give_up_after_s


@dataclass
class Notifier:
    """Sends each SLO's alerts to the receivers it names: on firing, on resolved (unless the receiver
    has `send_resolved: false`), and again every `repeat_interval` while an alert keeps firing."""

    config: NotificationsConfig
    queues: dict[str, ReceiverQueue] = field(default_factory=dict)
    _last_sent: dict[tuple[str, str], float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.queues = {r.name: ReceiverQueue(r) for r in self.config.receivers}

    def dispatch(self, receivers: Sequence[str], alerts: Sequence[Alert], changed: Sequence[Alert], now: float) -> None:
        """`alerts`: every alert of one SLO as it stands; `changed`: those whose state changed this tick."""
        changed_ids = {(a.slo, a.severity) for a in changed}
        for name in receivers:
            queue = self.queues.get(name)
            if queue is None:  # refused by the config check; a hand-built config may still get here
                continue
            due = []
            for a in alerts:
                key = (name, fingerprint(a.labels))
                fresh = (a.slo, a.severity) in changed_ids
                repeat = now - self._last_sent.get(key, -math.inf) >= queue.config.repeat_interval_s
                if a.state == "firing" and (fresh or repeat):
                    due.append(a)
                    self._last_sent[key] = now
                elif a.state == "resolved" and fresh:
                    self._last_sent.pop(key, None)
                    if queue.config.send_resolved:
                        due.append(a)
            if due:
                queue.submit(due)

    def stats(self) -> dict[str, DeliveryStats]:
        return {name: q.stats for name, q in self.queues.items()}

    def drain(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        return all(q.drain(max(0.0, deadline - time.monotonic())) for q in self.queues.values())

    def stop(self, timeout_s: float = 5.0) -> None:
        for q in self.queues.values():
            q.stop(timeout_s)
