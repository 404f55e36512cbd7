"""Config of the gateway: the models it serves, their versions, routes and upstream policies."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from aisre.config import checks
from aisre.config.base import Section


class PriceConfig(Section):
    """What a version costs: per million input/output tokens, and per request (classical models), in USD."""

    input_per_1m_usd: float = Field(0.0, ge=0, description="USD per million prompt tokens.")
    output_per_1m_usd: float = Field(0.0, ge=0, description="USD per million completion tokens.")
    per_request_usd: float = Field(0.0, ge=0, description="USD per request (classical models).")


class LimitsConfig(Section):
    """Limits on a model as a whole (all callers together); per-key limits live on the key."""

    rpm: int | None = Field(
        None,
        ge=1,
        description="Requests per minute for the model, all callers together (429 with Retry-After beyond it).",
    )
    tpm: int | None = Field(None, ge=1, description="Tokens per minute for the model (prompt + completion).")
    max_concurrent: int | None = Field(None, ge=1, description="Requests in flight at once.")
    max_tokens_per_request: int | None = Field(
        None, ge=1, description="Largest max_tokens a request may ask for (400 beyond it)."
    )
    max_prompt_chars: int | None = Field(
        None, ge=1, description="Longest prompt text accepted, in characters (400 beyond it)."
    )


class BudgetConfig(Section):
    usd: float = Field(gt=0, description="Spend limit in US dollars.")
    period: Literal["daily", "monthly"] | None = Field(
        None, description="When the spend resets: `daily` or `monthly` (UTC); unset: never."
    )


class VersionConfig(Section):
    """One version of a model: HTTP replicas, or a scikit-learn estimator served in-process.

    `upstream_model` is the model name sent upstream (OpenAI protocol; default: the
    gateway's model name); `headers` are added to upstream requests (e.g. an API key from
    `${ENV}`). `trained_at` (an ISO time, UTC if no zone, or Unix seconds) is when the model was
    trained: the gateway records it at start-up as the version's freshness mark (for a `sklearn`
    file, default: the file's modification time).
    """

    replicas: list[str] = Field(
        default_factory=list,
        description=(
            "HTTP base URLs of the version's replicas (OpenAI: ending in /v1; OIP: the server root); give this or "
            "`sklearn`."
        ),
    )
    sklearn: str | None = Field(
        None,
        description="A joblib file of a scikit-learn estimator served in-process over OIP; give this or `replicas`.",
    )
    upstream_model: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeout_s: float | None = Field(
        None, gt=0, description="Time one try may take for this version (default: `gateway.try_timeout_s`)."
    )
    price: PriceConfig | None = Field(
        None, description="What the version costs, for the cost of each record and budgets."
    )
    trained_at: dt.datetime | None = None

    @property
    def trained_at_s(self) -> float | None:
        """`trained_at` as Unix seconds (a time without a zone is UTC)."""
        t = self.trained_at
        return None if t is None else (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()

    @field_validator("replicas")
    @classmethod
    def _urls(cls, replicas: list[str]) -> list[str]:
        for url in replicas:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"expected http(s) URLs such as http://127.0.0.1:9101/v1, got {url!r}")
        if len(set(replicas)) != len(replicas):
            raise ValueError("a replica is listed twice")
        return [url.rstrip("/") for url in replicas]

    @field_validator("headers")
    @classmethod
    def _header_values(cls, headers: dict[str, str]) -> dict[str, str]:
        bad = checks.header_problems(headers)
        if bad:
            raise ValueError("; ".join(bad))
        return headers

    @model_validator(mode="after")
    def _one_kind(self) -> VersionConfig:
        if bool(self.replicas) == bool(self.sklearn):
            raise ValueError("give exactly one of 'replicas' (a list of URLs) or 'sklearn' (a joblib file)")
        return self


class ShadowConfig(Section):
    """Mirror a sample of traffic to another version; its answers are recorded, never returned."""

    version: str = Field(description="The version that receives the mirrored requests.")
    sample: float = Field(1.0, ge=0.0, le=1.0, description="Share of requests mirrored.")


#: The failures a request may be retried on, on another replica of the same version (Envoy's names where
#: it has them): `connect-failure` no connection was made (nothing was sent), `reset` the replica took the
#: request, then broke the connection or sent something that is no HTTP/SSE answer, `502`/`503`/`504` it
#: answered that status, `timeout` no (first) answer within the try's time.
RetryOn = Literal["connect-failure", "reset", "502", "503", "504", "timeout"]
#: Only failures where the model did not run the request: no connection, or a 503 (the server says it
#: cannot take the request now). A timeout, a reset, a 502 or a 504 may come after the model did the work
#: (an LLM paid for its tokens), so they are retried only when the model's `retry_on` names them.
DEFAULT_RETRY_ON: tuple[RetryOn, ...] = ("connect-failure", "503")


class ModelConfig(Section):
    """One model: its versions, the route split, an optional shadow and fallback chain.

    `sticky`: a request header whose value keeps a caller on one version (e.g. x-user-id),
    or `caller` to stick by the caller's credential (the Authorization header).
    `retry_on`: which failures of a replica are retried on another replica of the same version
    (see `RetryOn`; default `DEFAULT_RETRY_ON`, which never repeats a request that may have reached
    the model); `[]` never retries. The fallback chain to other versions is separate and always applies.
    """

    protocol: Literal["openai", "oip"] = Field(
        description=(
            "The API the model is served with: `openai` (chat/completions, embeddings) or `oip` (Open Inference "
            "Protocol v2, KServe/Triton)."
        )
    )
    versions: dict[str, VersionConfig] = Field(
        min_length=1,
        description="The model's versions by name; each is a list of HTTP replicas or an in-process scikit-learn file.",
    )
    route: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "Traffic split in percent by version (`{v1: 90, v2: 10}`); without it the first version gets everything. "
            "Once versions are in the registry, a canary gets its weight here and the stable version the rest."
        ),
    )
    shadow: ShadowConfig | None = Field(
        None, description="Mirror a sample of requests to another version; its answers are recorded, never returned."
    )
    fallback: list[str] = Field(
        default_factory=list, description="Versions tried in order when the chosen one fails (after its retries)."
    )
    sticky: str | None = None
    log_content: bool = Field(
        False, description="Record the prompts and answers of this model (off: only sizes, tokens and outcomes)."
    )
    limits: LimitsConfig = Field(LimitsConfig(), description="Limits on the whole model, across callers.")
    budget: BudgetConfig | None = Field(
        None, description="A spend limit in USD on the whole model; over it, requests get 429 insufficient_quota."
    )
    retry_on: list[RetryOn] = Field(default_factory=lambda: list(DEFAULT_RETRY_ON))

    @field_validator("fallback", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("retry_on", mode="before")
    @classmethod
    def _statuses_as_text(cls, value: object) -> object:
        """YAML reads `[502, timeout]` with an int: statuses are compared as text."""
        if isinstance(value, str | int):
            value = [value]
        if isinstance(value, list):
            return [str(v) if isinstance(v, int) and not isinstance(v, bool) else v for v in value]
        return value

    @model_validator(mode="after")
    def _versions_exist(self) -> ModelConfig:
        checks.raise_all(checks.model_problems(self), "ModelConfig")  # every problem at its own key
        return self

    @property
    def weights(self) -> dict[str, float]:
        """Route weights; with no `route`, all traffic goes to the first version."""
        return dict(self.route) if self.route else {next(iter(self.versions)): 100.0}


class RetryConfig(Section):
    """Retries to another replica, within a budget; which failures are retried is each model's `retry_on`.

    The budget allows retries of at most `budget_ratio` of recent requests (plus
    `min_per_second`), so an outage cannot turn into a retry storm. Streams are never
    retried once the first byte has been sent to the client.
    """

    attempts: int = Field(
        3, ge=1, le=10, description="Most tries of one request across the replicas of a version (first try included)."
    )
    budget_ratio: float = Field(0.2, ge=0.0, le=1.0, description="Retries allowed as a share of recent requests.")
    min_per_second: float = Field(
        5.0, ge=0.0, description="Retries per second allowed whatever the ratio (so a quiet model can still retry)."
    )


class EjectionConfig(Section):
    """Passive outlier ejection: a replica failing `consecutive_failures` times in a row is
    ejected for `base_s` x 2^(times ejected - 1), at most `max_s`."""

    consecutive_failures: int = Field(3, ge=1, description="Failures in a row that eject a replica.")
    base_s: float = Field(
        5.0, gt=0, description="First ejection time; doubled at each new ejection of the same replica."
    )
    max_s: float = Field(120.0, gt=0, description="Longest ejection time.")
    max_ejected_share: float = Field(
        0.5,
        gt=0,
        le=1.0,
        description="Most of a version's replicas ejected at once (so an overload does not eject them all).",
    )


class HealthCheckConfig(Section):
    """Active health checks: GET `path` on each replica every `interval_s`."""

    enabled: bool = Field(
        True,
        description=(
            "Probe every replica in the background; a replica that fails is not sent traffic until it answers again."
        ),
    )
    interval_s: float = Field(2.0, gt=0, description="Time between two probes of a replica.")
    timeout_s: float = Field(1.0, gt=0, description="Time a probe may take.")
    openai_path: str = Field("/models", description="Path probed on OpenAI-protocol replicas (after the replica URL).")
    oip_path: str = Field("/v2/health/ready", description="Path probed on Open Inference Protocol replicas.")


class GatewayConfig(Section):
    """The gateway server. `max_header_bytes` caps a request's line + headers (431 beyond it),
    `header_timeout_s` is how long they may take to arrive (then 408 and the connection is
    closed), `body_timeout_s` is how long a request body may go without a byte once its
    headers are in (then 408, as nginx's client_body_timeout), `max_response_bytes` caps a
    whole upstream response body (502 beyond it)."""

    host: str = Field("127.0.0.1", description="Bind address.")
    port: int = Field(
        8080,
        ge=0,
        le=65535,
        description="Port of the OpenAI, OIP, admin and /metrics endpoints (`aisre serve --port` overrides).",
    )
    workers: int = Field(1, ge=1, description="Worker processes (share limits and spend across them with `state:`).")
    max_body_bytes: int = Field(4 * 1024 * 1024, gt=0, description="Largest request body accepted (413 beyond it).")
    max_header_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest request line + headers accepted (431 beyond it)."
    )
    header_timeout_s: float = Field(10.0, gt=0)
    body_timeout_s: float = Field(60.0, gt=0)
    max_response_bytes: int = Field(64 * 1024 * 1024, gt=0)
    try_timeout_s: float = Field(
        30.0,
        gt=0,
        description=(
            "Time one try at one replica may take (to the first byte of a stream); a model's version may set its own "
            "`timeout_s`."
        ),
    )
    deadline_s: float = Field(120.0, gt=0, description="Time a whole request may take, retries and fallbacks included.")
    connect_timeout_s: float = Field(2.0, gt=0, description="Time to open a connection to a replica.")
    retries: RetryConfig = Field(RetryConfig(), description="Retries on another replica, within a retry budget.")
    ejection: EjectionConfig = Field(EjectionConfig(), description="Passive outlier ejection of failing replicas.")
    health_checks: HealthCheckConfig = Field(HealthCheckConfig(), description="Active health checks of every replica.")
    shutdown_grace_s: float = Field(
        30.0, ge=0, description="On SIGTERM, how long requests in flight may finish before the server stops."
    )


class AuthConfig(Section):
    """API keys. Off by default for local use (the gateway says so loudly at start-up).

    `admin_key` guards the admin API (key management, route weights, breakers); put it in
    the environment: `admin_key: ${AISRE_ADMIN_KEY}`. Key hashes are keyed with the secret
    in `$<key_secret_env>` (or a file next to the store, see docs/keys.md).

    `/metrics` shows spend per key id, so it is `protected` by default once auth is enabled
    (or a `metrics_token` is set): it then wants `Authorization: Bearer <metrics_token>`, a
    read-only credential for the scraper (the admin key works too, for a person with curl).
    `metrics: public` serves it to anyone, e.g. when only a private network reaches the port.
    """

    enabled: bool = Field(False, description="Require an API key (`Authorization: Bearer ...`) on every model request.")
    admin_key: str | None = None
    key_secret_env: str = Field(
        "AISRE_KEY_SECRET", description="Environment variable holding the secret that keys the stored key hashes."
    )
    metrics: Literal["protected", "public"] | None = None
    metrics_token: str | None = Field(
        None, description="Bearer token that reads /metrics (for Prometheus); e.g. ${AISRE_METRICS_TOKEN}."
    )

    @property
    def metrics_protected(self) -> bool:
        """Whether /metrics wants a bearer token (`metrics`, else on when auth or a metrics token is on)."""
        if self.metrics is not None:
            return self.metrics == "protected"
        return self.enabled or bool(self.metrics_token)

    @model_validator(mode="after")
    def _metrics_readable(self) -> AuthConfig:
        if self.metrics == "public" and self.metrics_token:
            raise ValueError("auth.metrics is public but auth.metrics_token is set; remove one of them")
        if self.metrics_protected and not (self.metrics_token or self.admin_key):
            raise ValueError(
                "/metrics is protected (it shows spend per key) but nothing can read it: set auth.metrics_token "
                "(e.g. ${AISRE_METRICS_TOKEN}, sent by Prometheus as a Bearer token) or auth.admin_key, "
                "or set auth.metrics: public"
            )
        return self


class StateConfig(Section):
    """Shared state for several gateway processes (limits, concurrency, spend, breakers,
    weights). Without `url`, state is per process. `on_failure` decides what happens when
    Redis cannot be reached: `open` keeps serving with per-process limits, `closed` refuses.
    `timeout_s` bounds each Redis command: a reply slower than that counts as a failure
    (the request is then judged by `on_failure`), so keep it well above Redis's round trip."""

    url: str | None = Field(
        None, description="Redis URL (redis://, rediss:// or unix://); unset: state is per process."
    )
    on_failure: Literal["open", "closed"] = "open"
    timeout_s: float = Field(0.05, gt=0, le=10)
    connect_timeout_s: float = Field(0.25, gt=0, le=30, description="Time to connect to Redis.")

    @field_validator("url")
    @classmethod
    def _redis_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("expected a Redis URL such as redis://127.0.0.1:6379/0")
        return url
