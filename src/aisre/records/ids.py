"""Time-ordered record ids: sortable by creation time, unique across threads and processes.

Layout (32 hex chars): 12 for the Unix time in milliseconds, 10 for a random per-process
node, 10 for a per-process counter. Sorting ids sorts records by millisecond, and the id
is cheap to make (no system call for randomness on the hot path).
"""

from __future__ import annotations

import itertools
import os
import time

_node = int.from_bytes(os.urandom(5), "big")
_counter = itertools.count(int.from_bytes(os.urandom(4), "big"))


def _reseed_after_fork() -> None:
    global _node, _counter
    _node = int.from_bytes(os.urandom(5), "big")
    _counter = itertools.count(int.from_bytes(os.urandom(4), "big"))


os.register_at_fork(after_in_child=_reseed_after_fork)


def new_record_id(ts: float | None = None) -> str:
    """A new id; `ts` (seconds since the epoch) sets its time part, default now."""
    ms = int((time.time() if ts is None else ts) * 1000)
    return f"{ms:012x}{_node:010x}{next(_counter) & 0xFFFFFFFFFF:010x}"


def record_id_time(record_id: str) -> float:
    """The creation time (seconds since the epoch) encoded in a record id."""
    return int(record_id[:12], 16) / 1000.0
