"""`MockSettings`: how a mock model server behaves (model name, pace, failure modes), and safe merging of changes."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True)
class MockSettings:
    """Behaviour of a mock server; every failure mode is off by default.

    Durations are in seconds. `fail_rate` is the probability (0..1) that an API request is
    answered with `fail_status`; the draw uses a `random.Random(seed)`, so a run is reproducible.
    """

    model: str = "mock-model"
    version: str = "1"  # OIP model version served (the OpenAI mock ignores it)
    latency_s: float = 0.0  # before the response headers (streaming: before the first chunk)
    tokens_per_s: float | None = None  # streaming pace; None = as fast as possible
    completion_tokens: int = 16  # natural reply length in tokens, capped by max_tokens
    fail_rate: float = 0.0
    fail_status: int = 500
    refusal_rate: float = 0.0  # share of generations answered with a refusal ("I'm sorry, but I can't help with that.")
    hang: bool = False  # API requests never answer (until the client leaves or hang is switched off)
    garbage: bool = False  # API requests get 200 with a body that is not JSON
    truncate_stream_after: int | None = None  # close the connection after N SSE chunks, without [DONE]
    garbage_stream_after: int | None = None  # after N SSE chunks send a line that is not SSE, then go on
    healthy: bool = True  # False: health endpoints answer 503
    strict_model: bool = False  # True: a request naming another model gets 404 model_not_found
    embedding_dim: int = 64
    replica_id: str = ""  # sent as header x-mock-replica and put in the reply text
    seed: int = 0

    def merged(self, changes: dict[str, Any]) -> MockSettings:
        """A copy with `changes` applied; raises ValueError naming each unknown or ill-typed key."""
        problems: list[str] = []
        known = {f.name: f for f in fields(self)}
        hints = typing.get_type_hints(MockSettings)
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in known:
                problems.append(f"{key}: unknown setting (known: {', '.join(sorted(known))})")
                continue
            try:
                clean[key] = _coerce(value, hints[key])
            except TypeError as exc:
                problems.append(f"{key}: {exc}")
        if problems:
            raise ValueError("; ".join(problems))
        new = dataclasses.replace(self, **clean)
        new_problems = new.problems()
        if new_problems:
            raise ValueError("; ".join(new_problems))
        return new

    def problems(self) -> list[str]:
        """Range errors, each naming its field; empty when the settings are valid."""
        out = []
        if self.latency_s < 0:
            out.append(f"latency_s: must be >= 0 (got {self.latency_s})")
        if self.tokens_per_s is not None and self.tokens_per_s <= 0:
            out.append(f"tokens_per_s: must be > 0 or null (got {self.tokens_per_s})")
        if self.completion_tokens < 1:
            out.append(f"completion_tokens: must be >= 1 (got {self.completion_tokens})")
        if not 0.0 <= self.fail_rate <= 1.0:
            out.append(f"fail_rate: must be within 0..1 (got {self.fail_rate})")
        if not 0.0 <= self.refusal_rate <= 1.0:
            out.append(f"refusal_rate: must be within 0..1 (got {self.refusal_rate})")
        if not 400 <= self.fail_status <= 599:
            out.append(f"fail_status: must be an HTTP error status 400..599 (got {self.fail_status})")
        if self.truncate_stream_after is not None and self.truncate_stream_after < 0:
            out.append(f"truncate_stream_after: must be >= 0 or null (got {self.truncate_stream_after})")
        if self.garbage_stream_after is not None and self.garbage_stream_after < 0:
            out.append(f"garbage_stream_after: must be >= 0 or null (got {self.garbage_stream_after})")
        if self.embedding_dim < 1:
            out.append(f"embedding_dim: must be >= 1 (got {self.embedding_dim})")
        return out

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _coerce(value: Any, hint: Any) -> Any:
    """Check `value` against a simple annotation (int, float, str, bool, X | None)."""
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None:
        if type(None) in allowed:
            return None
        raise TypeError("must not be null")
    for kind in allowed:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
    names = " or ".join("null" if k is type(None) else k.__name__ for k in allowed)
    raise TypeError(f"expected {names}, got {type(value).__name__} {value!r}")
