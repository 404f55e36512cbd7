"""`MockState`: the live settings and request counters of one mock server, and the ASGI wrapper that counts calls."""

from __future__ import annotations

import random
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aisre.testing.settings import MockSettings

RECENT_REQUESTS = 50  # bounded so a soak run cannot grow the mock's memory


@dataclass
class RecentRequest:
    method: str
    path: str
    headers: list[tuple[bytes, bytes]]  # raw ASGI headers, decoded only when asked for
    body: bytes

    def as_dict(self) -> dict[str, Any]:
        try:
            body: Any = orjson.loads(self.body) if self.body else None
        except orjson.JSONDecodeError:
            body = self.body.decode("utf-8", "replace")
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in self.headers}
        return {"method": self.method, "path": self.path, "headers": headers, "body": body}


@dataclass
class MockState:
    """Mutable state of one server; lives on its event loop, so no lock is needed."""

    settings: MockSettings
    rng: random.Random = field(init=False)
    started_at: float = field(default_factory=time.time)
    by_endpoint: Counter[str] = field(default_factory=Counter)
    failures_injected: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    recent: deque[RecentRequest] = field(default_factory=lambda: deque(maxlen=RECENT_REQUESTS))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.settings.seed)

    def update(self, changes: dict[str, Any]) -> MockSettings:
        """Merge `changes` into the live settings (ValueError names bad keys); a new seed restarts the RNG."""
        new = self.settings.merged(changes)
        if new.seed != self.settings.seed:
            self.rng = random.Random(new.seed)
        self.settings = new
        return new

    def reset(self) -> None:
        self.by_endpoint.clear()
        self.failures_injected = 0
        self.max_in_flight = self.in_flight
        self.recent.clear()

    def stats(self) -> dict[str, Any]:
        return {
            "replica_id": self.settings.replica_id,
            "requests_total": sum(self.by_endpoint.values()),
            "by_endpoint": dict(self.by_endpoint),
            "failures_injected": self.failures_injected,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "uptime_s": round(time.time() - self.started_at, 3),
        }


class Tracked:
    """ASGI wrapper for an API route: counts it, keeps the request for `/_mock/requests`, adds `x-mock-replica`.

    Counting happens at the ASGI level so that `in_flight` covers the whole streamed body.
    """

    def __init__(self, app: ASGIApp, state: MockState, name: str) -> None:
        self.app = app
        self.state = state
        self.name = name

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = self.state
        state.by_endpoint[self.name] += 1
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        replica = state.settings.replica_id.encode()
        chunks: list[bytes] = []

        async def remembering_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    body = b"".join(chunks)
                    state.recent.append(RecentRequest(scope["method"], scope["path"], scope["headers"], body))
            return message

        async def replica_send(message: Message) -> None:
            if replica and message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-mock-replica", replica)]
            await send(message)

        try:
            await self.app(scope, remembering_receive, replica_send)
        finally:
            state.in_flight -= 1
