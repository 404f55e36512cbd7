"""The typed configuration: what `aisre.yaml` may contain, with defaults that work embedded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import Field, field_validator, model_validator

from aisre.config import checks
from aisre.config.base import Section
from aisre.config.breakers import BreakerConfig, breaker_problems
from aisre.config.canaries import CanaryConfig, canary_problems
from aisre.config.dashboard import DashboardConfig
from aisre.config.evaluation import EvaluationSection
from aisre.config.gateway import AuthConfig, GatewayConfig, ModelConfig, StateConfig
from aisre.config.monitors import MonitorJobConfig
from aisre.config.notifications import NotificationsConfig, SLOEvaluationConfig
from aisre.config.playbooks import PlaybookConfig, playbook_problems
from aisre.config.slo import SLOConfig


class StoreConfig(Section):
    """Where records live and how they get there.

    `durability: durable` acknowledges a record only once its transaction is committed
    (synchronous=FULL); `fast` returns at once and commits within `flush_interval_s`, so a
    process crash loses at most the records still queued (<= `queue_size`, normally those
    of the last `flush_interval_s`).
    """

    url: str = Field(
        "sqlite:///aisre.db",
        description=(
            "Where records go: a SQLite file as sqlite:///PATH (relative to the config file), or a PostgreSQL "
            "database shared by many gateway hosts as postgresql://user[:password]@host[:port]/db "
            "(needs aisre[postgres]; docs/store-postgres.md)."
        ),
    )
    durability: Literal["durable", "fast"] = "fast"
    queue_size: int = Field(
        100_000, gt=0, description="Records that may wait for the writer thread; beyond it `overflow` applies."
    )
    overflow: Literal["block", "drop", "raise"] = Field(
        "block",
        description=(
            "When the queue is full: `block` the caller (up to `block_timeout_s`, then raise), `drop` the record "
            "(counted) or `raise` at once."
        ),
    )
    block_timeout_s: float = Field(
        5.0,
        gt=0,
        description=(
            "With `overflow: block`, how long a caller waits for room before the record is refused with an error."
        ),
    )
    batch_size: int = Field(4096, gt=0, description="Most records written in one transaction.")
    pool_size: int = Field(
        8,
        gt=0,
        le=1000,
        description=(
            "PostgreSQL only: the most pooled connections this process's readers hold (dashboard, judge, keys, "
            "registry; the writer has its own). Size the server's max_connections for processes x (pool_size + 2)."
        ),
    )
    flush_interval_s: float = Field(
        0.1, gt=0, description="With `durability: fast`, the longest a record waits before its batch is committed."
    )
    retention_days: float | None = Field(
        None, gt=0, description="Records (and their labels) older than this are deleted; unset keeps everything."
    )

    @field_validator("url")
    @classmethod
    def _store_url(cls, url: str) -> str:
        if url.startswith(POSTGRES_SCHEMES):
            problem = postgres_url_problem(url)
            if problem:
                raise ValueError(f"{problem}; {_STORE_URL_FORMS}")
            return url
        if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise ValueError(_STORE_URL_FORMS)
        if url.endswith(":memory:"):
            raise ValueError(
                "an in-memory SQLite database cannot be shared by the writer thread and readers; give a file path"
            )
        return url

    @property
    def is_sqlite(self) -> bool:
        """Whether records go to a SQLite file (else to PostgreSQL, which has no file beside it)."""
        return not self.url.startswith(POSTGRES_SCHEMES)

    @property
    def path(self) -> str:
        """The SQLite file (a PostgreSQL store has none: asking for it is a programming error)."""
        if not self.is_sqlite:
            raise ValueError("store.url is a PostgreSQL database: it has no file path (check store.is_sqlite first)")
        return self.url[len("sqlite:///") :]


POSTGRES_SCHEMES = ("postgresql://", "postgres://")
_STORE_URL_FORMS = (
    "expected 'sqlite:///PATH' (e.g. sqlite:///aisre.db) or 'postgresql://user[:password]@host[:port]/db' "
    "(e.g. postgresql://aisre@db.internal:5432/aisre)"
)


def postgres_url_problem(url: str) -> str | None:
    """What is wrong with a postgresql:// URL (None when libpq can use it): a host, a database name and,
    if given, a port from 1 to 65535; a host may also come as `?host=/socket/dir` (a Unix socket)."""
    from urllib.parse import parse_qs, urlsplit

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"not a usable PostgreSQL URL ({exc})"
    query = parse_qs(parts.query)
    if not parts.hostname and not query.get("host"):
        return "the PostgreSQL URL names no host"
    if port is not None and not 1 <= port <= 65535:
        return f"port {port} is outside 1-65535"
    if not parts.path.strip("/") and not query.get("dbname"):
        return "the PostgreSQL URL names no database (the /db after the host)"
    return None


class MetricsConfig(Section):
    enabled: bool = Field(
        True, description="Keep Prometheus metrics (latency histograms, errors, tokens, cost...) of every record."
    )
    host: str = Field("127.0.0.1", description="Address of the separate /metrics server started when `port` is set.")
    port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description=(
            "Serve /metrics on this port from an SDK process (the gateway serves /metrics on its own port anyway); "
            "unset: no separate server."
        ),
    )


class TracingConfig(Section):
    """OpenTelemetry spans, one per inference (or per batched call).

    With `otlp_endpoint` set, aisre exports over OTLP/HTTP itself; without it, spans go to
    the process's global tracer provider (the one your service or `opentelemetry-instrument`
    set up). `log_content` adds inputs/prompts and outputs to spans (off by default).
    """

    enabled: bool = Field(False, description="Emit one span per inference.")
    service_name: str = Field("aisre", description="The spans' service.name resource attribute.")
    otlp_endpoint: str | None = Field(
        None,
        description=(
            "OTLP/HTTP traces URL (e.g. http://127.0.0.1:4318/v1/traces); unset: the process's global tracer provider."
        ),
    )
    otlp_headers: dict[str, str] = Field(
        default_factory=dict, description="Headers sent with every OTLP export (e.g. an API key from ${ENV})."
    )
    log_content: bool = False
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0, description="Share of inferences that get a span.")

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_endpoint(cls, endpoint: str | None) -> str | None:
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise ValueError("expected an http(s) URL such as http://127.0.0.1:4318/v1/traces")
        return endpoint


class TelemetryConfig(Section):
    metrics: MetricsConfig = Field(MetricsConfig(), description="Prometheus metrics.")
    tracing: TracingConfig = Field(TracingConfig(), description="OpenTelemetry spans.")


class LogConfig(Section):
    """A JSON-lines copy of every record, for shipping to a log collector ('-' = stdout)."""

    jsonl: str | None = Field(
        None, description="Append every record to this JSON-lines file ('-' = stdout); unset: no copy."
    )


class RedactionConfig(Section):
    """Input fields removed (`drop`) or replaced by a keyed hash (`hash`) before any write.

    Names are input keys; a dotted name (`user.email`) reaches into nested mappings. The
    hash key comes from the environment variable named by `hash_key_env`.
    """

    drop: list[str] = Field(
        default_factory=list, description="Input fields removed from every record (dotted names reach nested mappings)."
    )
    hash: list[str] = Field(
        default_factory=list,
        description="Input fields replaced by an HMAC-SHA256 of their value, so equal values stay joinable.",
    )
    hash_key_env: str = Field("AISRE_REDACTION_KEY", description="Environment variable holding the HMAC key of `hash`.")

    @model_validator(mode="after")
    def _disjoint(self) -> RedactionConfig:
        both = sorted(set(self.drop) & set(self.hash))
        if both:
            raise ValueError(f"fields listed in both drop and hash: {both}; pick one")
        return self


class AisreConfig(Section):
    """The whole `aisre.yaml`."""

    store: StoreConfig = Field(
        StoreConfig(),
        description="Where records are written (SQLite or PostgreSQL) and how: durability, queue, retention.",
    )
    telemetry: TelemetryConfig = Field(
        TelemetryConfig(), description="Prometheus metrics and OpenTelemetry spans of every inference."
    )
    log: LogConfig = Field(LogConfig(), description="An optional JSON-lines copy of every record.")
    redaction: RedactionConfig = Field(
        RedactionConfig(), description="Input fields dropped or hashed before anything is written or exported."
    )
    gateway: GatewayConfig = Field(
        GatewayConfig(),
        description="The gateway server: address, workers, size limits, timeouts, retries, ejection, health checks.",
    )
    models: dict[str, ModelConfig] = Field(
        default_factory=dict, description="The models the gateway serves, by the name clients call them."
    )
    auth: AuthConfig = Field(AuthConfig(), description="API keys and the admin key; off by default.")
    state: StateConfig = Field(
        StateConfig(),
        description=(
            "Redis shared by several gateway processes (limits, spend, weights, breakers); per process without it."
        ),
    )
    slos: list[SLOConfig] = Field(
        default_factory=list,
        description="Service level objectives on requests or on model quality, judged continuously.",
    )
    monitors: list[MonitorJobConfig] = Field(
        default_factory=list,
        description="Monitoring jobs: drift, performance, fairness, importance, LLM quality, checked on every window.",
    )
    slo_evaluation: SLOEvaluationConfig = Field(
        SLOEvaluationConfig(), description="How often the continuous judge evaluates the SLOs."
    )
    notifications: NotificationsConfig = Field(
        NotificationsConfig(),
        description="Named receivers (webhooks, Alertmanagers) that SLO alerts and playbooks notify.",
    )
    evaluation: EvaluationSection = Field(
        default_factory=dict,
        description=(
            "Offline evaluation gates per model: golden data and thresholds a version must pass before promotion."
        ),
    )  # after `models`, which it names
    breakers: list[BreakerConfig] = Field(
        default_factory=list,
        description=(
            "AI circuit breakers per model version: opened by errors, latency or quality; traffic goes to a fallback."
        ),
    )
    playbooks: list[PlaybookConfig] = Field(
        default_factory=list,
        description=(
            "Automatic responses: when a quality condition holds, act (rollback, freeze, notify...) and open an "
            "incident."
        ),
    )
    canaries: list[CanaryConfig] = Field(
        default_factory=list,
        description="Progressive delivery: the registry's canary moves through traffic steps, each one analysed.",
    )
    dashboard: DashboardConfig = DashboardConfig()

    @field_validator("store", "state", mode="before")
    @classmethod
    def _url_shorthand(cls, value: object) -> object:
        return {"url": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _slo_and_monitor_references(self) -> AisreConfig:
        """SLO and monitor names are unique; with a `models:` section, each names a served model and
        version (without one, models are recorded through the SDK and any name is fine); an SLO's
        `alerting.notify` names receivers of `notifications:`."""
        found = [
            *_named_model_problems("slos", "SLO", self.slos, self.models),
            *_named_model_problems("monitors", "monitor", self.monitors, self.models),
            *_receiver_problems(self.slos, self.notifications),
            *breaker_problems(self.breakers, self.models, self.slos),
            *canary_problems(self.canaries, self.models),
            *playbook_problems(self.playbooks, self.models, self.slos, [r.name for r in self.notifications.receivers]),
        ]
        checks.raise_all(found, "AisreConfig")
        return self


def _named_model_problems(
    key: str, what: str, items: Sequence[SLOConfig | MonitorJobConfig], models: dict[str, ModelConfig]
) -> list[checks.Problem]:
    """Duplicate names, and (when models are configured) unknown models or versions, each at its key."""
    found: list[checks.Problem] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if item.name in seen:
            found.append(checks.Problem((key, i, "name"), f"another {what} is already named {item.name!r}"))
        seen.add(item.name)
        if not models:
            continue
        model = models.get(item.model)
        if model is None:
            known = ", ".join(sorted(models))
            found.append(checks.Problem((key, i, "model"), f"no model {item.model!r} in models: ({known})"))
        elif item.version is not None and item.version not in model.versions:
            known = ", ".join(sorted(model.versions))
            message = f"model {item.model!r} has no version {item.version!r} ({known})"
            found.append(checks.Problem((key, i, "version"), message))
    return found


def _receiver_problems(slos: Sequence[SLOConfig], notifications: NotificationsConfig) -> list[checks.Problem]:
    """Each name in `slos[i].alerting.notify` is a receiver of `notifications.receivers`."""
    known = [r.name for r in notifications.receivers]
    found = []
    for i, slo in enumerate(slos):
        for j, name in enumerate(slo.alerting.notify):
            if name not in known:
                listed = ", ".join(known) if known else "none are configured"
                found.append(
                    checks.Problem(
                        ("slos", i, "alerting", "notify", j),
                        f"no receiver named {name!r} in notifications.receivers ({listed})",
                    )
                )
    return found
