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

    url: str = "sqlite:///aisre.db"
    durability: Literal["durable", "fast"] = "fast"
    queue_size: int = Field(100_000, gt=0)
    overflow: Literal["block", "drop", "raise"] = "block"
    block_timeout_s: float = Field(5.0, gt=0)
    batch_size: int = Field(4096, gt=0)
    flush_interval_s: float = Field(0.1, gt=0)
    retention_days: float | None = Field(None, gt=0)

    @field_validator("url")
    @classmethod
    def _sqlite_url(cls, url: str) -> str:
        if not url.startswith("sqlite:///") or len(url) == len("sqlite:///"):
            raise ValueError("expected 'sqlite:///PATH' (e.g. sqlite:///aisre.db)")
        if url.endswith(":memory:"):
            raise ValueError(
                "an in-memory SQLite database cannot be shared by the writer thread and readers; give a file path"
            )
        return url

    @property
    def path(self) -> str:
        return self.url[len("sqlite:///") :]


class MetricsConfig(Section):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int | None = Field(None, ge=0, le=65535)


class TracingConfig(Section):
    """OpenTelemetry spans, one per inference (or per batched call).

    With `otlp_endpoint` set, aisre exports over OTLP/HTTP itself; without it, spans go to
    the process's global tracer provider (the one your service or `opentelemetry-instrument`
    set up). `log_content` adds inputs/prompts and outputs to spans (off by default).
    """

    enabled: bool = False
    service_name: str = "aisre"
    otlp_endpoint: str | None = None
    otlp_headers: dict[str, str] = Field(default_factory=dict)
    log_content: bool = False
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0)

    @field_validator("otlp_endpoint")
    @classmethod
    def _http_endpoint(cls, endpoint: str | None) -> str | None:
        if endpoint is not None and not endpoint.startswith(("http://", "https://")):
            raise ValueError("expected an http(s) URL such as http://127.0.0.1:4318/v1/traces")
        return endpoint


class TelemetryConfig(Section):
    metrics: MetricsConfig = MetricsConfig()
    tracing: TracingConfig = TracingConfig()


class LogConfig(Section):
    """A JSON-lines copy of every record, for shipping to a log collector ('-' = stdout)."""

    jsonl: str | None = None


class RedactionConfig(Section):
    """Input fields removed (`drop`) or replaced by a keyed hash (`hash`) before any write.

    Names are input keys; a dotted name (`user.email`) reaches into nested mappings. The
    hash key comes from the environment variable named by `hash_key_env`.
    """

    drop: list[str] = Field(default_factory=list)
    hash: list[str] = Field(default_factory=list)
    hash_key_env: str = "AISRE_REDACTION_KEY"

    @model_validator(mode="after")
    def _disjoint(self) -> RedactionConfig:
        both = sorted(set(self.drop) & set(self.hash))
        if both:
            raise ValueError(f"fields listed in both drop and hash: {both}; pick one")
        return self


class AisreConfig(Section):
    """The whole `aisre.yaml`."""

    store: StoreConfig = StoreConfig()
    telemetry: TelemetryConfig = TelemetryConfig()
    log: LogConfig = LogConfig()
    redaction: RedactionConfig = RedactionConfig()
    gateway: GatewayConfig = GatewayConfig()
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    auth: AuthConfig = AuthConfig()
    state: StateConfig = StateConfig()
    slos: list[SLOConfig] = Field(default_factory=list)
    monitors: list[MonitorJobConfig] = Field(default_factory=list)
    slo_evaluation: SLOEvaluationConfig = SLOEvaluationConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    evaluation: EvaluationSection = Field(default_factory=dict)  # after `models`, which it names
    breakers: list[BreakerConfig] = Field(default_factory=list)
    playbooks: list[PlaybookConfig] = Field(default_factory=list)
    canaries: list[CanaryConfig] = Field(default_factory=list)
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
