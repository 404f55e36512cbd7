"""A drill scenario file (YAML), typed: the clock, the traffic, the served versions, the faults and what must happen.

    name: covariate-drift-canary
    seed: 7
    clock: {step: 5m, duration: 8h, warmup: 3h}       # accelerated time; warmup = the monitors' reference
    traffic: {requests_per_step: 24, label_delay: 10m}
    model: fraud
    versions:                                           # trained at drill start on breast_cancer
      v1: {status: stable}
      v2: {status: canary, weight: 20, serve: replicas, replicas: 2}
    llm: {model: assistant}                             # an OpenAI-protocol model behind the OpenAI mock
    aisre: {monitors: [...], slos: [...], playbooks: [...], breakers: {...}}   # aisre.yaml sections
    faults:
      - {name: drift, kind: covariate_drift, at: 4h, duration: 4h, features: [mean_radius], shift_std: 3}
    expect:
      - {signal: dataset_drift, version: v2, breached: true, within: 2h, after: drift}
      - {playbook: drift-rollback, fired: true}
      - {rollback: fraud, to: v1}

Every problem is a `ConfigError` naming its key path (`faults.0.kind: ...`), so `aisre drill` exits 2
with one line. Times are durations from the drill's start (`4h`, `90m`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from aisre.config.base import Section
from aisre.config.slo import parse_duration
from aisre.errors import ConfigError

FAULT_KINDS = (
    "covariate_drift",
    "concept_drift",
    "bias_spike",
    "latency_spike",
    "error_burst",
    "replica_killed",
    "refusal_storm",
)
#: Faults that need the version served by HTTP replicas (the mock's knobs), not in-process.
REPLICA_FAULTS = ("latency_spike", "error_burst", "replica_killed")
DATASETS = ("breast_cancer",)
#: The aisre.yaml sections a scenario may set (the drill makes store and models).
AISRE_SECTIONS = ("monitors", "slos", "playbooks", "breakers", "notifications", "slo_evaluation")


def _duration(value: Any, where: str) -> float:
    try:
        return parse_duration(value) if isinstance(value, str) else float(value)
    except (ValueError, TypeError):
        raise ValueError(f"{where}: expected a duration such as 30m or 4h, got {value!r}") from None


class ClockSpec(Section):
    """`step`: simulated time per step; `duration`: the whole drill; `warmup`: clean traffic first (the
    monitors' `reference: warmup` is this range). Times are durations (`5m`) or seconds."""

    start: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z
    step: str | float = "5m"
    duration: str | float = "8h"
    warmup: str | float = "2h"

    @property
    def step_s(self) -> float:
        return _duration(self.step, "step")

    @property
    def duration_s(self) -> float:
        return _duration(self.duration, "duration")

    @property
    def warmup_s(self) -> float:
        return _duration(self.warmup, "warmup")

    @model_validator(mode="after")
    def _sane(self) -> ClockSpec:
        if self.step_s <= 0:
            raise ValueError(f"step: must be > 0, got {self.step}")
        if self.duration_s < self.step_s or self.duration_s / self.step_s > 2000:
            raise ValueError(f"duration: expected 1..2000 steps of {self.step}, got {self.duration}")
        if not 0 <= self.warmup_s < self.duration_s:
            raise ValueError(f"warmup: must be within the duration ({self.duration}), got {self.warmup}")
        return self


class TrafficSpec(Section):
    """Rows of `dataset` (with replacement, seeded); labels are posted `label_delay` after each request
    (`null`: never). `group_feature`: the sensitive `group` input is 1 where this feature is above its median."""

    dataset: Literal["breast_cancer"] = "breast_cancer"
    requests_per_step: int = Field(20, ge=0, le=500)
    label_delay: str | float | None = "10m"
    group_feature: str = "texture_error"  # about as common among malignant and benign cases: no built-in gap
    llm_requests_per_step: int = Field(0, ge=0, le=200)
    concurrency: int = Field(16, ge=1, le=256)

    @property
    def label_delay_s(self) -> float | None:
        return None if self.label_delay is None else _duration(self.label_delay, "traffic.label_delay")


class VersionSpec(Section):
    """One version of the tabular model. `status` in the registry; `weight`: its share of traffic when not
    stable (the stable one takes the rest); `serve`: in-process scikit-learn, or HTTP `replicas` (OIP mocks
    serving the same estimator: what latency spikes, error bursts and killed replicas act on)."""

    status: Literal["stable", "canary", "shadow", "candidate"] = "stable"
    weight: float = Field(0.0, ge=0, le=100)
    serve: Literal["inprocess", "replicas"] = "inprocess"
    replicas: int = Field(1, ge=1, le=4)
    seed: int | None = None


class LLMSpec(Section):
    """An OpenAI-protocol model served by the OpenAI mock (refusal storms act on it)."""

    model: str = "assistant"
    version: str = "v1"


class FaultSpec(Section):
    """One fault from `at` for `duration` (default: to the end). Options by kind: `features` + `shift_std`
    (covariate_drift), `flip` (concept_drift: share of labels flipped), `group` + `flip` (bias_spike: labels
    of that group flipped), `latency_s`, `fail_rate`, `refusal_rate`; `version`: whose replicas."""

    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$")
    kind: str
    at: str | float
    duration: str | float | None = None
    features: list[str] = Field(default_factory=list)
    shift_std: float = 2.0
    flip: float = Field(1.0, ge=0, le=1)
    group: int = Field(1, ge=0, le=1)
    latency_s: float = Field(0.3, ge=0, le=5)
    fail_rate: float = Field(0.5, ge=0, le=1)
    refusal_rate: float = Field(0.8, ge=0, le=1)
    version: str | None = None

    @model_validator(mode="after")
    def _known(self) -> FaultSpec:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"kind: unknown fault {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")
        if self.kind == "covariate_drift" and not self.features:
            raise ValueError("features: covariate_drift needs the features to shift")
        _duration(self.at, "at")
        if self.duration is not None:
            _duration(self.duration, "duration")
        return self

    @property
    def at_s(self) -> float:
        return _duration(self.at, "at")

    @property
    def end_s(self) -> float:
        return float("inf") if self.duration is None else self.at_s + _duration(self.duration, "duration")

    def active(self, t: float) -> bool:
        """Whether the fault holds `t` seconds after the drill's start."""
        return self.at_s <= t < self.end_s


class Expectation(Section):
    """One outcome: exactly one of `signal`, `alert`, `playbook`, `breaker`, `rollback`, `incident`.
    `fired` / `breached` / `firing` / `opened` false asserts it did NOT happen; `after` + `within` bound
    the delay from a fault's start; `before` (a fault) looks only at what happened before it began
    (no false alarm before the fault)."""

    signal: str | None = None
    version: str | None = None
    breached: bool | None = None
    alert: str | None = None
    severity: Literal["page", "ticket"] = "page"
    firing: bool | None = None
    playbook: str | None = None
    fired: bool | None = None
    breaker: dict[str, str] | None = None
    opened: bool | None = None
    rollback: str | None = None
    to: str | None = None
    incident: bool | None = None
    after: str | None = None
    before: str | None = None
    within: str | float | None = None

    @model_validator(mode="after")
    def _one(self) -> Expectation:
        kinds = [k for k in ("signal", "alert", "playbook", "breaker", "rollback", "incident") if self.kind_is(k)]
        if len(kinds) != 1:
            raise ValueError(
                "an expectation names exactly one of signal, alert, playbook, breaker, rollback, incident"
                f" (got {kinds or 'none'})"
            )
        if self.breaker is not None and set(self.breaker) - {"model", "version"}:
            raise ValueError("breaker: expected {model: NAME, version: VERSION}")
        if self.within is not None:
            _duration(self.within, "within")
        return self

    def kind_is(self, kind: str) -> bool:
        return getattr(self, kind) is not None

    @property
    def kind(self) -> str:
        return next(k for k in ("signal", "alert", "playbook", "breaker", "rollback", "incident") if self.kind_is(k))

    @property
    def positive(self) -> bool:
        """False when the expectation says the thing must not happen."""
        flag = {"signal": self.breached, "alert": self.firing, "playbook": self.fired, "breaker": self.opened}
        value = flag.get(self.kind, self.incident if self.kind == "incident" else True)
        return value is not False

    @property
    def within_s(self) -> float | None:
        return None if self.within is None else _duration(self.within, "within")


class Scenario(Section):
    name: str = Field(pattern=r"^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$")
    description: str = ""
    seed: int = 0
    clock: ClockSpec = Field(default_factory=ClockSpec)
    traffic: TrafficSpec = Field(default_factory=TrafficSpec)
    model: str = "fraud"
    versions: dict[str, VersionSpec] = Field(default_factory=lambda: {"v1": VersionSpec()})
    llm: LLMSpec | None = None
    aisre: dict[str, Any] = Field(default_factory=dict)
    faults: list[FaultSpec] = Field(default_factory=list)
    expect: list[Expectation] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        stable = [v for v, s in self.versions.items() if s.status == "stable"]
        if len(stable) != 1:
            raise ValueError(f"versions: exactly one version must be stable, got {stable or 'none'}")
        if self.llm is not None and self.llm.model == self.model:
            raise ValueError(f"llm.model: {self.llm.model!r} is the tabular model's name too; give the LLM another")
        names = [f.name for f in self.faults]
        for i, f in enumerate(self.faults):
            if names.count(f.name) > 1:
                raise ValueError(f"faults.{i}.name: another fault is already named {f.name!r}")
            if f.kind in REPLICA_FAULTS:
                version = f.version or stable[0]
                spec = self.versions.get(version)
                if spec is None or spec.serve != "replicas":
                    raise ValueError(
                        f"faults.{i}.version: a {f.kind} acts on HTTP replicas; version {version!r}"
                        " must have serve: replicas"
                    )
            if f.kind == "refusal_storm" and self.llm is None:
                raise ValueError(f"faults.{i}.kind: a refusal_storm needs an llm: model")
            if f.at_s >= self.clock.duration_s:
                raise ValueError(f"faults.{i}.at: {f.at} is past the drill's duration ({self.clock.duration})")
        for i, e in enumerate(self.expect):
            for key in ("after", "before"):
                if getattr(e, key) is not None and getattr(e, key) not in names:
                    raise ValueError(f"expect.{i}.{key}: unknown fault {getattr(e, key)!r}; faults are {names}")
        extra = sorted(set(self.aisre) - set(AISRE_SECTIONS))
        if extra:
            raise ValueError(f"aisre: {extra} are not drill sections; expected {', '.join(AISRE_SECTIONS)}")
        return self

    @property
    def stable(self) -> str:
        return next(v for v, s in self.versions.items() if s.status == "stable")


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; ConfigError with the key path of the first problem."""
    source = str(path)
    try:
        doc = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise ConfigError([f"cannot read the scenario: {exc.strerror or exc}"], source) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"not valid YAML: {str(exc).splitlines()[0]}"], source) from None
    if not isinstance(doc, dict):
        raise ConfigError(["expected a mapping (name, clock, traffic, versions, faults, expect)"], source)
    return scenario_from_dict(doc, source)


def scenario_from_dict(doc: dict[str, Any], source: str = "scenario") -> Scenario:
    try:
        return Scenario.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError([_problem(e) for e in exc.errors()], source) from None


def _problem(error: Any) -> str:
    loc = [str(p) for p in error["loc"] if not str(p).startswith("function-")]
    msg = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        msg = "unknown key"
    # A nested validator's message may start with its own field ("kind: ..."): join it to the path.
    head, sep, rest = msg.partition(": ")
    if sep and re.fullmatch(r"[A-Za-z_]\w*(\.\w+)*", head) and head not in loc[-1:]:
        loc.append(head)
        msg = rest
    return f"{'.'.join(loc) or '(top)'}: {msg}"
