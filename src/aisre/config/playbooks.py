"""The `playbooks:` section: when a quality condition holds, do something about it (and open an incident).

    playbooks:
      - name: drift-rollback
        model: fraud
        version: v2                               # whose signals `when` reads (needed for a signal)
        when: {signal: dataset_drift, breached: true, for: 10m}
        do:
          - rollback                              # the registry's previous stable version, routing 100% to it
          - {open_breaker: v2}                    # the version's breaker opens (its fallback serves)
          - {set_weights: {v1: 100, v2: 0}}
          - halt_canary                           # every canary of the model back to weight 0
          - freeze_promotions                     # no promotion of the model until unfrozen
          - {notify: [oncall]}                    # receivers of `notifications:`
        cooldown: 30m
        dry_run: false

`when` is a quality condition as in `breakers:` (a monitoring signal of `version`, or an SLO's
burn rate or alert), with `for`. The playbook fires when the condition starts to hold (after
`for`), at most once per `cooldown`; each action's outcome goes on the incident's timeline, and a
failed action is retried on the next ticks (up to `retries` times). `dry_run` records what it
would do without doing it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator, model_validator

from aisre.config.base import Section
from aisre.config.breakers import BreakerCondition
from aisre.config.slo import Duration, parse_duration

#: Actions without an argument, and those with one (name -> what the argument is).
SIMPLE_ACTIONS = ("rollback", "halt_canary", "freeze_promotions", "unfreeze_promotions")
ARG_ACTIONS = {
    "open_breaker": "a version of the model",
    "close_breaker": "a version of the model",
    "set_weights": "{version: weight, ...}",
    "notify": "a list of receiver names",
}


class PlaybookAction(Section):
    """One step: `kind` and its argument (see ARG_ACTIONS)."""

    kind: str
    arg: Any = None

    def describe(self) -> str:
        return self.kind if self.arg is None else f"{self.kind} {self.arg}"


def _action(value: Any) -> Any:
    """`rollback` | `{open_breaker: v2}` -> {kind, arg}; anything else is refused naming the actions."""
    if isinstance(value, PlaybookAction):
        return value
    known = f"expected one of {', '.join(SIMPLE_ACTIONS)} or one of {{{', '.join(ARG_ACTIONS)}: ...}}"
    if isinstance(value, str):
        if value not in SIMPLE_ACTIONS:
            hint = f" ({value} needs an argument: {ARG_ACTIONS[value]})" if value in ARG_ACTIONS else ""
            raise ValueError(f"unknown action {value!r}{hint}; {known}")
        return {"kind": value}
    if isinstance(value, dict) and len(value) == 1:
        ((kind, arg),) = value.items()
        if kind not in ARG_ACTIONS:
            raise ValueError(f"unknown action {kind!r}; {known}")
        if kind in ("open_breaker", "close_breaker") and not isinstance(arg, str):
            raise ValueError(f"{kind}: expected {ARG_ACTIONS[kind]}, got {arg!r}")
        if kind == "set_weights" and not (
            isinstance(arg, dict) and arg and all(isinstance(w, int | float) and w >= 0 for w in arg.values())
        ):
            raise ValueError(f"set_weights: expected {{version: weight >= 0, ...}}, got {arg!r}")
        if kind == "notify" and not (isinstance(arg, list) and arg and all(isinstance(r, str) for r in arg)):
            raise ValueError(f"notify: expected a list of receiver names, got {arg!r}")
        return {"kind": kind, "arg": arg}
    raise ValueError(f"an action is a name or a one-key mapping; {known}; got {value!r}")


class PlaybookConfig(Section):
    """One playbook (see the module docstring)."""

    name: str = Field(
        pattern=r"^[a-z0-9]([a-z0-9_-]{0,62}[a-z0-9])?$",
        description="A unique name (lower case, digits, - and _), on its incidents and signals.",
    )
    model: str = Field(description="The model the playbook acts on.")
    version: str | None = Field(
        None,
        description="The version whose signals `when` reads (needed for a signal condition).",
    )
    when: BreakerCondition = Field(
        description=(
            "The condition: a signal of `version` or an SLO's burn rate or alert, with `for` (as in breakers' "
            "`open_when`)."
        )
    )
    do: list[PlaybookAction] = Field(
        min_length=1, description="The actions, in order; each outcome goes on the incident's timeline."
    )
    cooldown: Duration = Field("30m", description="Fire at most once per this long.")
    retries: int = Field(5, ge=0, description="A failed action is retried on the next ticks up to this many times.")
    dry_run: bool = Field(False, description="Record what the playbook would do, without doing it.")
    severity: str = Field("high", description="The incident's severity: critical, high, medium or low.")

    @field_validator("do", mode="before")
    @classmethod
    def _actions(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError("expected a list of actions")
        return [_action(v) for v in value]

    @model_validator(mode="after")
    def _quality_when(self) -> PlaybookConfig:
        if self.when.kind not in ("signal", "slo"):
            raise ValueError("when: a playbook watches a signal or an SLO (error_rate / latency belong to breakers:)")
        if self.when.kind == "signal" and self.version is None:
            raise ValueError(f"version: a signal condition reads one version's signals; name it ({self.when.signal})")
        if self.severity not in ("critical", "high", "medium", "low"):
            raise ValueError(f"severity: expected critical, high, medium or low, got {self.severity!r}")
        return self

    @property
    def cooldown_s(self) -> float:
        return parse_duration(self.cooldown)


def playbook_problems(
    playbooks: list[PlaybookConfig], models: dict[str, Any], slos: list[Any], receivers: list[str]
) -> list[Any]:
    """Structural problems at their key paths: duplicate names; with `models:`, unknown models and
    versions (the playbook's and its actions'); unknown SLOs; receivers `notifications:` lacks."""
    from aisre.config.checks import Problem

    found: list[Problem] = []
    names: set[str] = set()
    slo_names = {s.name for s in slos}
    for i, p in enumerate(playbooks):
        loc: tuple[str | int, ...] = ("playbooks", i)
        if p.name in names:
            found.append(Problem((*loc, "name"), f"another playbook is already named {p.name!r}"))
        names.add(p.name)
        if p.when.slo is not None and p.when.slo not in slo_names:
            found.append(Problem((*loc, "when", "slo"), f"unknown SLO {p.when.slo!r}; configured: {sorted(slo_names)}"))
        versions: list[str] | None = None
        if models:
            model = models.get(p.model)
            if model is None:
                found.append(Problem((*loc, "model"), f"unknown model {p.model!r}; configured: {sorted(models)}"))
            else:
                versions = sorted(model.versions)
                if p.version is not None and p.version not in versions:
                    found.append(
                        Problem((*loc, "version"), f"model {p.model!r} has no version {p.version!r}; it has {versions}")
                    )
        for j, action in enumerate(p.do):
            where = (*loc, "do", j, action.kind)
            named = (
                [action.arg]
                if action.kind in ("open_breaker", "close_breaker")
                else (list(action.arg) if action.kind == "set_weights" else [])
            )
            for v in named:
                if versions is not None and v not in versions:
                    found.append(Problem(where, f"model {p.model!r} has no version {v!r}; it has {versions}"))
            if action.kind == "notify":
                for r in action.arg:
                    if r not in receivers:
                        found.append(
                            Problem(where, f"unknown receiver {r!r}; notifications.receivers has {sorted(receivers)}")
                        )
    return found
