"""Rate limits per subject (requests, tokens, concurrency) with GCRA, exact at the boundary; request estimates.

GCRA in integers. For a dimension with `rate` units per minute the emission interval is
T = 60 s / rate and the burst tolerance is tau = 60 s (a whole minute's allowance may be
spent at once). Each subject keeps a theoretical arrival time TAT. A cost of n at time t:

    new_tat = max(TAT, t) + n·T        admitted  iff  new_tat - t <= tau   (then TAT := new_tat)
    retry_after = new_tat - tau - t    when refused
    remaining   = floor((tau - (new_tat - t)) / T),   reset = new_tat - t   (time until back to full)

To stay exact for any rate (T = 60/7 s is not a float), times are integer microseconds and
a TAT is kept as `tat_us` plus a remainder `rem` in ticks of 1/rate µs. The *backlog*
b = (tat_us - t_us)·rate + rem (clamped at 0) is then an integer number of ticks; one unit of
cost is 60e6 ticks and tau is rate·60e6 ticks, so the test above is `b + n·60e6 <= rate·60e6`.
The Redis limiter (aisre.gateway.shared_state) runs the same arithmetic in Lua, where every
number stays below 2**53 as long as rates are at most MAX_RATE per minute.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from aisre.gateway.errors import GatewayError
from aisre.store.keys import MAX_RATE  # one bound for keys and models (exact in Lua doubles)

MINUTE_US = 60_000_000  # one unit of cost, in ticks; also tau in µs
CONCURRENCY_RETRY_S = 1.0  # a slot frees when some request ends: no formula, so a polite default
DEFAULT_COMPLETION_TOKENS = 256  # allowance when a request sets no max_tokens
CHARS_PER_TOKEN = 4


@dataclass(frozen=True, slots=True)
class Limits:
    """What one subject may use: requests and tokens per minute, requests in flight (None = no limit)."""

    rpm: int | None = None
    tpm: int | None = None
    max_concurrent: int | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "max_concurrent"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"limits.{name} must be a positive integer or None, got {value!r}")
            if name != "max_concurrent" and value is not None and value > MAX_RATE:
                raise ValueError(f"limits.{name} must be at most {MAX_RATE:,} per minute, got {value:,}")

    @property
    def unlimited(self) -> bool:
        return self.rpm is None and self.tpm is None and self.max_concurrent is None


@dataclass(frozen=True, slots=True)
class DimensionState:
    """One dimension after a decision: its limit, what is left now, seconds until fully replenished."""

    limit: int
    remaining: int
    reset_s: float


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer of one `acquire`: all dimensions admitted and consumed, or none.

    `refused` names the first dimension that said no ("requests", "tokens", "concurrency"),
    or "unavailable" when a fail-closed shared store could not be asked. `retry_after_s` is
    the wait until every refusing dimension would admit the same request (inf: never, the
    cost exceeds the whole per-minute limit). `backend` says who decided: "memory", "redis"
    or "fallback" (the local limiter while Redis is unreachable).
    """

    allowed: bool
    refused: str | None = None
    retry_after_s: float = 0.0
    requests: DimensionState | None = None
    tokens: DimensionState | None = None
    concurrency: DimensionState | None = None
    reason: str = ""
    backend: str = "memory"


class Limiter(Protocol):
    async def acquire(self, subject: str, limits: Limits, tokens: int) -> Decision:
        """Check and consume 1 request, `tokens` tokens and 1 concurrency slot of `subject`, all or none."""
        ...

    async def release(self, subject: str, limits: Limits, estimated_tokens: int, actual_tokens: int) -> None:
        """After an admitted request: free its slot, charge or refund actual - estimated tokens."""
        ...


# --- GCRA arithmetic (mirrored by the Lua scripts in aisre.gateway.shared_state) ---------------------------------


def backlog_ticks(tat_us: int, rem: int, now_us: int, rate: int) -> int:
    """How far TAT is ahead of now, in ticks of 1/rate µs (0 when TAT is in the past)."""
    return max(0, (tat_us - now_us) * rate + min(rem, rate - 1))


def split_tat(now_us: int, backlog: int, rate: int) -> tuple[int, int]:
    """TAT = now + backlog/rate µs, as integer µs and a remainder in ticks."""
    q, r = divmod(backlog, rate)
    return now_us + q, r


def _dimension(limit: int, backlog: int) -> DimensionState:
    remaining = max(0, (limit * MINUTE_US - backlog) // MINUTE_US)
    return DimensionState(limit, remaining, backlog / limit / 1e6)


def _wait_s(limit: int, backlog: int, cost: int) -> float:
    return max(0, backlog + cost * MINUTE_US - limit * MINUTE_US) / limit / 1e6


def decide(
    limits: Limits, tokens: int, allowed: bool, req_backlog: int, tok_backlog: int, in_flight: int, backend: str
) -> Decision:
    """A Decision from backlogs in ticks: after consumption when allowed, as found when refused."""
    req = _dimension(limits.rpm, req_backlog) if limits.rpm else None
    tok = _dimension(limits.tpm, tok_backlog) if limits.tpm else None
    conc = None
    if limits.max_concurrent:
        conc = DimensionState(limits.max_concurrent, max(0, limits.max_concurrent - in_flight), 0.0)
    if allowed:
        return Decision(True, None, 0.0, req, tok, conc, "", backend)
    refused, waits, reasons = None, [], []
    if limits.rpm and (wait := _wait_s(limits.rpm, req_backlog, 1)) > 0:
        refused = "requests"
        waits.append(wait)
        reasons.append(f"rpm={limits.rpm} reached")
    if limits.tpm and tok is not None and (wait := _wait_s(limits.tpm, tok_backlog, tokens)) > 0:
        refused = refused or "tokens"
        waits.append(wait)
        reasons.append(f"tpm={limits.tpm} reached ({tokens} tokens requested, {tok.remaining} left)")
    if limits.max_concurrent and in_flight >= limits.max_concurrent:
        refused = refused or "concurrency"
        waits.append(CONCURRENCY_RETRY_S)
        reasons.append(f"max_concurrent={limits.max_concurrent} requests already in flight")
    reason = "rate limit: " + "; ".join(reasons) if reasons else "rate limit reached"
    return Decision(
        False, refused or "requests", max(waits, default=CONCURRENCY_RETRY_S), req, tok, conc, reason, backend
    )


def never_admitted(limits: Limits, tokens: int, backend: str) -> Decision | None:
    """A refusal when one request costs more tokens than the whole per-minute limit, else None."""
    if limits.tpm is None or tokens <= limits.tpm:
        return None
    return Decision(
        False,
        "tokens",
        math.inf,
        None,
        DimensionState(limits.tpm, 0, 0.0),
        None,
        f"request needs an estimated {tokens} tokens, more than the whole limit tpm={limits.tpm}; "
        "it can never be admitted",
        backend,
    )


# --- in memory ------------------------------------------------------------------------------------------------


class _Subject:
    __slots__ = ("req_tat", "req_rem", "tok_tat", "tok_rem", "in_flight")

    def __init__(self) -> None:
        self.req_tat = self.req_rem = self.tok_tat = self.tok_rem = self.in_flight = 0


class InMemoryLimiter:
    """GCRA limits for one process (one event loop; not thread-safe). Idle state is swept away.

    `clock` is a monotonic clock in seconds. A sweep drops subjects whose TATs are all in
    the past and that hold no slot; it runs every `sweep_interval_s` or when the table has
    doubled since the last sweep, so memory follows the subjects active in the last minute.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, sweep_interval_s: float = 60.0) -> None:
        self._clock = clock
        self._subjects: dict[str, _Subject] = {}
        self._sweep_interval_us = int(sweep_interval_s * 1e6)
        self._next_sweep_us = self._now_us() + self._sweep_interval_us
        self._sweep_size = 1024

    def __len__(self) -> int:
        """Subjects currently holding state."""
        return len(self._subjects)

    def _now_us(self) -> int:
        return round(self._clock() * 1_000_000)

    async def acquire(self, subject: str, limits: Limits, tokens: int) -> Decision:
        if (refusal := never_admitted(limits, tokens, "memory")) is not None:
            return refusal
        now = self._now_us()
        if now >= self._next_sweep_us or len(self._subjects) > self._sweep_size:
            self.sweep(now)
        s = self._subjects.get(subject) or _Subject()
        rpm, tpm, cap = limits.rpm, limits.tpm, limits.max_concurrent
        rb = backlog_ticks(s.req_tat, s.req_rem, now, rpm) if rpm else 0
        tb = backlog_ticks(s.tok_tat, s.tok_rem, now, tpm) if tpm else 0
        allowed = (
            (not rpm or rb + MINUTE_US <= rpm * MINUTE_US)
            and (not tpm or tb + tokens * MINUTE_US <= tpm * MINUTE_US)
            and (not cap or s.in_flight < cap)
        )
        if not allowed:
            return decide(limits, tokens, False, rb, tb, s.in_flight, "memory")
        if rpm:
            rb += MINUTE_US
            s.req_tat, s.req_rem = split_tat(now, rb, rpm)
        if tpm:
            tb += tokens * MINUTE_US
            s.tok_tat, s.tok_rem = split_tat(now, tb, tpm)
        if cap:
            s.in_flight += 1
        if not limits.unlimited:
            self._subjects[subject] = s
        return decide(limits, tokens, True, rb, tb, s.in_flight, "memory")

    async def release(self, subject: str, limits: Limits, estimated_tokens: int, actual_tokens: int) -> None:
        s = self._subjects.get(subject)
        if limits.max_concurrent and s is not None:
            s.in_flight = max(0, s.in_flight - 1)
        delta = actual_tokens - estimated_tokens
        if not limits.tpm or not delta or (s is None and delta < 0):
            return
        if s is None:
            s = self._subjects[subject] = _Subject()
        now = self._now_us()
        # a charge may push the backlog past tau: the subject then waits until it drains (a debt)
        tb = max(0, backlog_ticks(s.tok_tat, s.tok_rem, now, limits.tpm) + delta * MINUTE_US)
        s.tok_tat, s.tok_rem = split_tat(now, tb, limits.tpm)

    def sweep(self, now_us: int | None = None) -> int:
        """Drop idle subjects (TATs in the past, no slot held); returns how many were dropped."""
        now = self._now_us() if now_us is None else now_us
        before = len(self._subjects)
        # a new dict rather than deletions: a dict's table never shrinks, so 100k dropped subjects would stay allocated
        self._subjects = {
            k: s for k, s in self._subjects.items() if s.in_flight or s.req_tat >= now or s.tok_tat >= now
        }
        self._next_sweep_us = now + self._sweep_interval_us
        self._sweep_size = max(1024, 2 * len(self._subjects))
        return before - len(self._subjects)


# --- headers --------------------------------------------------------------------------------------------------


def format_duration(seconds: float) -> str:
    """Like OpenAI's reset headers (Go durations): "0s", "120ms", "1s", "8.64s", "6m0s", "1h0m0s"."""
    ms = math.ceil(round(seconds * 1000, 6))
    if ms <= 0:
        return "0s"
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{secs}"
    return f"{minutes}m{secs}" if minutes else secs


def headers(decision: Decision) -> dict[str, str]:
    """OpenAI-style x-ratelimit-* headers, plus retry-after / retry-after-ms on a refusal."""
    out: dict[str, str] = {}
    for name, dim in (("requests", decision.requests), ("tokens", decision.tokens)):
        if dim is not None:
            out[f"x-ratelimit-limit-{name}"] = str(dim.limit)
            out[f"x-ratelimit-remaining-{name}"] = str(dim.remaining)
            out[f"x-ratelimit-reset-{name}"] = format_duration(dim.reset_s)
    if not decision.allowed and math.isfinite(decision.retry_after_s):
        out["retry-after"] = str(max(1, math.ceil(decision.retry_after_s)))
        out["retry-after-ms"] = str(max(1, math.ceil(decision.retry_after_s * 1000)))
    return out


# --- per-request estimates and validation ---------------------------------------------------------------------


def _text_and_tokens(value: Any) -> tuple[int, int]:
    """(characters of text, already-tokenized ids) in a prompt / input / message content value."""
    if isinstance(value, str):
        return len(value), 0
    if isinstance(value, list):
        if value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return 0, len(value)  # a token array
        chars = tokens = 0
        for item in value:
            if isinstance(item, Mapping):  # a content part: only text parts count
                item = item.get("text") if item.get("type", "text") == "text" else None
            c, t = _text_and_tokens(item)
            chars, tokens = chars + c, tokens + t
        return chars, tokens
    return 0, 0


def _prompt(payload: Mapping[str, Any]) -> tuple[str, int, int]:
    """(field name, characters, token ids) of the prompt of a chat, completions or embeddings body."""
    if "messages" in payload:
        chars = tokens = 0
        for m in payload["messages"] if isinstance(payload["messages"], list) else ():
            if isinstance(m, Mapping):
                c, t = _text_and_tokens(m.get("content"))
                chars, tokens = chars + c, tokens + t
        return "messages", chars, tokens
    field = "prompt" if "prompt" in payload else "input"
    chars, tokens = _text_and_tokens(payload.get(field))
    return field, chars, tokens


def _completion_allowance(payload: Mapping[str, Any], default: int) -> int:
    if "input" in payload and "messages" not in payload and "prompt" not in payload:
        return 0  # embeddings produce no tokens
    wanted = payload.get("max_completion_tokens") or payload.get("max_tokens")
    per_choice = wanted if isinstance(wanted, int) and wanted > 0 else default
    n = payload.get("n")
    return per_choice * (n if isinstance(n, int) and n > 0 else 1)


def estimate_tokens(payload: Mapping[str, Any], default_completion_tokens: int = DEFAULT_COMPLETION_TOKENS) -> int:
    """Tokens one OpenAI chat/completions/embeddings request may use, charged before the call.

    prompt = ceil(characters / 4) of prompt text (+ 1 per id of a pre-tokenized prompt), and
    completion = (max_completion_tokens or max_tokens or `default_completion_tokens`) × n;
    embeddings have no completion. Images, tools and message overhead are not counted: the
    estimate is reconciled with the upstream's real usage by `release`.
    """
    _, chars, ids = _prompt(payload)
    return math.ceil(chars / CHARS_PER_TOKEN) + ids + _completion_allowance(payload, default_completion_tokens)


def check_max_prompt_chars(payload: Mapping[str, Any], max_prompt_chars: int | None) -> None:
    """400 naming the prompt field when the prompt text is longer than `max_prompt_chars`."""
    if max_prompt_chars is None:
        return
    field, chars, _ = _prompt(payload)
    if chars > max_prompt_chars:
        raise GatewayError(
            400,
            f"field '{field}' holds {chars:,} characters of prompt text; the limit is "
            f"max_prompt_chars={max_prompt_chars:,}",
            param=field,
            code="prompt_too_long",
        )


def check_max_tokens_per_request(
    payload: Mapping[str, Any],
    max_tokens_per_request: int | None,
    default_completion_tokens: int = DEFAULT_COMPLETION_TOKENS,
) -> None:
    """400 naming the field to lower when the estimated tokens exceed `max_tokens_per_request`."""
    if max_tokens_per_request is None:
        return
    field, chars, ids = _prompt(payload)
    prompt = math.ceil(chars / CHARS_PER_TOKEN) + ids
    completion = _completion_allowance(payload, default_completion_tokens)
    if prompt + completion <= max_tokens_per_request:
        return
    named = next((f for f in ("max_completion_tokens", "max_tokens") if payload.get(f)), None)
    param = (
        named if named and completion > max_tokens_per_request - prompt and prompt <= max_tokens_per_request else field
    )
    source = f"'{named}'" if named else f"a default allowance of {default_completion_tokens} per choice"
    raise GatewayError(
        400,
        f"request needs an estimated {prompt + completion:,} tokens ({prompt:,} from field "
        f"'{field}' + {completion:,} for the completion, from {source}); the limit is "
        f"max_tokens_per_request={max_tokens_per_request:,}; lower field '{param}'",
        param=param,
        code="too_many_tokens",
    )
