"""The monitoring jobs in a background thread, run by exactly one process per store.

`aisre serve --workers N` starts N processes and `aisre watch` may run beside them: whichever
holds an exclusive `flock` on `<store>.monitors.lock` (next to the SQLite file) runs the jobs;
the others retry now and then, so when the holder exits another process takes over. The
kernel drops the lock when its holder dies, so a crash never leaves a stale lock behind.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

from aisre.locks import AdvisoryLock, RunnerLock, store_lock
from aisre.monitor.jobs.runner import MonitorRunner

log = logging.getLogger("aisre.monitor.jobs")
__all__ = ["BackgroundMonitors", "RunnerLock", "lock_path", "start_background"]  # RunnerLock: from aisre.locks


def lock_path(store_path: str | os.PathLike[str]) -> Path:
    """Where the one-runner lock of a store lives: beside the database file."""
    return Path(f"{store_path}.monitors.lock")


class BackgroundMonitors:
    """Runs `runner` in a daemon thread while this process holds the store's lock.

    `retry_s`: how often a process without the lock tries again; `max_sleep_s`: the longest
    pause between checks of the schedule (so `stop()` and new due jobs are noticed quickly).
    """

    def __init__(
        self, runner: MonitorRunner, lock: RunnerLock | AdvisoryLock, *, retry_s: float = 5.0, max_sleep_s: float = 1.0
    ):
        self.runner = runner
        self.lock = lock
        self.retry_s = retry_s
        self.max_sleep_s = max_sleep_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="aisre-monitors", daemon=True)

    def start(self) -> BackgroundMonitors:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ask the thread to stop after the window it is checking; wait up to `timeout_s`."""
        self._stop.set()
        self._thread.join(timeout_s)
        self.lock.release()

    def _loop(self) -> None:
        announced = False
        while not self._stop.is_set():
            if not self.lock.acquire():
                if not announced:
                    log.info("monitors: another process holds %s; this one stands by", self.lock.path)
                    announced = True
                self._stop.wait(self.retry_s)
                continue
            try:
                self.runner.run_due()
            except Exception:  # the runner records job errors itself; this is a last resort
                log.exception("monitors: run failed")
            wait = self.runner.next_due() - self.runner.clock.now()
            self._stop.wait(max(0.05, min(self.max_sleep_s, wait)))


def start_background(config: Any, store: Any, clock: Any, metrics: Any = None) -> BackgroundMonitors | None:
    """Start the jobs of `config.monitors` (None when there are none); the caller calls `.stop()`."""
    if not config.monitors:
        return None
    runner = MonitorRunner(config, store, clock, metrics)
    lock = store_lock(store, "monitors", lock_path(getattr(store, "path", None) or config.store.path))
    return BackgroundMonitors(runner, lock).start()
