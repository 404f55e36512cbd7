"""`RunnerLock`: which one of several processes on a host runs a background loop (monitors, the SLO judge).

An exclusive, non-blocking `flock` on a file beside the store: `acquire()` is True in exactly one
process at a time (and in one `RunnerLock` of a process: the lock belongs to the open file), the
others retry now and then. The kernel drops the lock when its holder exits or crashes, so there is
never a stale lock to clean (docs/decisions.md, "One monitor runner per store").
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO


class RunnerLock:
    """A non-blocking exclusive `flock`; `acquire()` is True in exactly one process at a time."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[bytes] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> bool:
        if self._file is not None:
            return True
        f = open(self.path, "ab")  # noqa: SIM115 -- kept open while the lock is held
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            return False
        self._file = f
        return True

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
