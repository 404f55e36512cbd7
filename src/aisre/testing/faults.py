"""Failure modes shared by the mock servers: hang, latency, injected error statuses and garbage bodies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import Response

from aisre.testing.state import MockState

GARBAGE_BODY = b"<html><body>502 Bad Gateway (mock garbage: this body is not JSON)</body></html>"
POLL_S = 0.02  # how often a hung request checks whether its client left or hang was switched off

ErrorResponse = Callable[[int, str], Response]


async def injected_fault(request: Request, state: MockState, error: ErrorResponse) -> Response | None:
    """Apply the live failure modes in order hang → latency → fail → garbage; None means answer normally."""
    if state.settings.hang:
        await request.body()  # read it first: polling for a disconnect must not swallow the body
        while state.settings.hang:
            if await request.is_disconnected():
                return Response(status_code=499)  # nobody is listening; uvicorn drops it
            await asyncio.sleep(POLL_S)
    settings = state.settings
    if settings.latency_s > 0:
        await asyncio.sleep(settings.latency_s)
    if settings.fail_rate > 0 and state.rng.random() < settings.fail_rate:
        state.failures_injected += 1
        return error(settings.fail_status, f"mock injected failure (status {settings.fail_status})")
    if settings.garbage:
        state.failures_injected += 1
        return Response(GARBAGE_BODY, status_code=200, media_type="application/json")
    return None


async def pace(started: float, index: int, tokens_per_s: float | None) -> None:
    """Sleep until token `index` is due at `tokens_per_s` after `started` (loop time); no drift accumulates."""
    if tokens_per_s is None:
        return
    loop = asyncio.get_running_loop()
    delay = started + index / tokens_per_s - loop.time()
    if delay > 0:
        await asyncio.sleep(delay)
