"""Noticing that the client left: the work done for it is cancelled instead of finished for nobody.

uvicorn does not cancel a handler whose client disconnects; it only makes `receive()` return
`http.disconnect` (and silently drops whatever is sent afterwards). So while the gateway waits
on an upstream, one small task waits on `receive()`; if the client goes first, it cancels the
waiting task, the upstream connection is closed (the model stops generating for nobody) and
the caller gets `ClientDisconnected`, to record the call as `cancelled`.

The request body must have been read already: the listener consumes `receive()` messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.types import Receive

from aisre.errors import ClientDisconnected

T = TypeVar("T")


# Calls that finish sooner are not watched: a task per request would cost ~25 us of the
# gateway's ~400 us, and a client that leaves within 20 ms loses nobody much upstream work.
WATCH_AFTER_S = 0.02


class _Watch:
    """Listens for the client leaving (from `after_s` on) and cancels `task` while armed."""

    __slots__ = ("task", "receive", "armed", "fired", "timer", "listener")

    def __init__(self, task: asyncio.Task[object], receive: Receive, after_s: float) -> None:
        self.task = task
        self.receive = receive
        self.armed = True
        self.fired = False
        self.listener: asyncio.Task[None] | None = None
        self.timer = asyncio.get_running_loop().call_later(after_s, self._start)

    def _start(self) -> None:
        if self.armed:
            self.listener = asyncio.ensure_future(self._listen())

    async def _listen(self) -> None:
        while (await self.receive())["type"] != "http.disconnect":
            pass
        if self.armed:  # set and read on one event loop: no race with `disarm`
            self.fired = True
            self.task.cancel()

    def disarm(self) -> None:
        self.armed = False
        self.timer.cancel()
        if self.listener is not None:
            self.listener.cancel()


async def cancel_on_disconnect(
    receive: Receive, work: Awaitable[T], what: str = "the answer", after_s: float = WATCH_AFTER_S
) -> T:
    """Await `work` in the current task; if the client disconnects first, cancel it and raise
    `ClientDisconnected`. A cancellation from elsewhere (server shutdown) passes through unchanged."""
    task = asyncio.current_task()
    assert task is not None
    cancelling = task.cancelling()
    watch = _Watch(task, receive, after_s)
    try:
        result = await work
    except asyncio.CancelledError:
        if watch.fired and task.uncancel() <= cancelling:
            raise ClientDisconnected(f"the client closed its connection before {what}") from None
        raise
    finally:
        watch.disarm()
    if watch.fired:  # the work swallowed our cancellation; the client is gone all the same
        task.uncancel()
        raise ClientDisconnected(f"the client closed its connection before {what}")
    return result
