"""The drill's timeline: events (what happened when, in simulated seconds from the start) and the watcher that
turns what each part did in a step into events: only changes (a new breach, a new alert state, a new
playbook event, a breaker transition, a registry change, a new incident)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aisre.drills.scenario import Scenario

#: Signals that are bookkeeping, not findings.
QUIET_SIGNALS = {"window_rows", "monitor_job_error", "monitor_windows_skipped", "promotions_frozen"}


@dataclass
class Event:
    """One thing that happened, `t` seconds after the drill's start."""

    t: float
    kind: str  # fault, signal, alert, playbook, breaker, registry, incident
    what: str
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"t_s": self.t, "kind": self.kind, "what": self.what, **self.data}


@dataclass
class DrillRun:
    scenario: Scenario
    events: list[Event] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)  # per step: t_s and requests by version/route/status
    trained: dict[str, float] = field(default_factory=dict)  # version -> training accuracy


class Watcher:
    """Turns what each part did in a step into timeline events (only changes: a new breach, a new state)."""

    def __init__(
        self, run: DrillRun, gateway: Any, registry: Any, incidents: Any, judge: Any, seen_history: int
    ) -> None:
        self.run, self.gateway, self.registry, self.incidents, self.judge = run, gateway, registry, incidents, judge
        self.model = run.scenario.model
        self.seen_history = seen_history
        self.seen_playbook = 0
        self.seen_breaker = 0
        self.seen_incidents: set[int] = set()
        self.alerts: dict[tuple[str, str], str] = {}
        self.breached: dict[tuple[str, ...], bool] = {}

    def collect(self, t: float, signals: list[Any], reports: list[Any]) -> None:
        add = self.run.events.append
        for sig in signals:
            if sig.name in QUIET_SIGNALS:
                continue
            key = (
                sig.name,
                sig.model,
                sig.version or "*",
                *sorted(f"{k}={v}" for k, v in sig.labels.items() if k != "monitor"),
            )
            if bool(sig.breached) != self.breached.get(key, False):
                self.breached[key] = bool(sig.breached)
                state = "breached" if sig.breached else "back within bounds"
                where = ", ".join(key[3:])
                add(
                    Event(
                        t,
                        "signal",
                        f"{sig.name}{f' [{where}]' if where else ''} of {sig.model}/{sig.version} {state}"
                        f" (value {_num(sig.value)})",
                        {
                            "signal": sig.name,
                            "model": sig.model,
                            "version": sig.version,
                            "breached": bool(sig.breached),
                            "value": sig.value,
                            "window_end_s": sig.window_end - self.run.scenario.clock.start
                            if sig.window_end is not None
                            else None,
                        },
                    )
                )
        for r in reports:
            for severity, state in r.alerts.items():
                if state != self.alerts.get((r.name, severity), "inactive") and state in ("firing", "resolved"):
                    burn = max(r.burn_rates.values(), default=0.0)
                    add(
                        Event(
                            t,
                            "alert",
                            f"SLO {r.name}: {severity} alert {state} (max burn rate {burn:.1f})",
                            {"slo": r.name, "severity": severity, "state": state},
                        )
                    )
                self.alerts[(r.name, severity)] = state
        playbooks = getattr(self.judge.playbooks, "events", None) or []
        for e in playbooks[self.seen_playbook :]:
            add(
                Event(
                    t,
                    "playbook",
                    f"playbook {e.playbook}: {e.kind}: {e.detail}",
                    {"playbook": e.playbook, "event": e.kind, "ok": e.ok},
                )
            )
        self.seen_playbook = len(playbooks)
        breakers = getattr(self.gateway, "breakers", None)
        transitions = list(getattr(breakers, "transitions", None) or [])
        for tr in transitions[self.seen_breaker :]:
            before, after = str(getattr(tr, "before", "")), str(getattr(tr, "after", ""))
            add(
                Event(
                    t,
                    "breaker",
                    f"breaker {tr.model}/{tr.version}: {_state(before)} -> {_state(after)}"
                    f" ({getattr(tr, 'reason', '')})",
                    {"model": tr.model, "version": tr.version, "before": _state(before), "after": _state(after)},
                )
            )
        self.seen_breaker = len(transitions)
        history = self.registry.history(self.model)
        for h in history[self.seen_history :]:
            add(
                Event(
                    t,
                    "registry",
                    f"{h.actor}: {h.model}/{h.version} {h.from_status} -> {h.to_status}"
                    f" (stable {h.stable_before} -> {h.stable_after})",
                    {
                        "model": h.model,
                        "version": h.version,
                        "action": h.action,
                        "actor": h.actor,
                        "to_status": h.to_status,
                        "stable_before": h.stable_before,
                        "stable_after": h.stable_after,
                    },
                )
            )
        self.seen_history = len(history)
        for inc in self.incidents.list():
            if inc.id not in self.seen_incidents:
                self.seen_incidents.add(inc.id)
                add(Event(t, "incident", f"incident #{inc.id} opened: {inc.title}", {"id": inc.id, "model": inc.model}))


def _state(value: str) -> str:
    return value.rsplit(".", 1)[-1].lower()


def _num(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, int | float) else str(value)
