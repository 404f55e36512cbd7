"""Playbooks: when a quality condition starts to hold, act (roll back, open a breaker, shift weights, halt a
canary, freeze promotions, notify) and keep the story on an incident's timeline.

One `PlaybookRunner.tick(reports)` judges every playbook's `when` (`aisre.respond.conditions`, with
its `for`) and, on the tick the condition starts to hold (outside its `cooldown`), opens an
incident (`aisre.respond.incidents`; one per playbook and model version while unresolved, so a
flapping condition adds `retrigger` events instead of new incidents) and runs the actions in
order. Each outcome is an `action` event on the incident. A failed action (the gateway's admin
API down, Redis down, a webhook unreachable, a rollback with no previous stable) is recorded with
its error and retried on the next ticks, up to the playbook's `retries`; it never stops the other
actions, the other playbooks or the caller. When the condition stops holding, an `outcome` event
says so (a human resolves the incident). `dry_run` records "would ..." for each action instead.

Actions reach the world through:

- the `Registry` (rollback, halt_canary: canary -> candidate); a running gateway follows registry
  changes (`aisre.gateway.registry_sync`), so routing moves with them;
- an `Actuator` for breakers and weights: `AdminActuator` calls a gateway's admin API (what
  `aisre watch` beside `aisre serve` uses); in-process gateways may pass their own;
- `freeze_promotions`: a `promotions_frozen` signal of the model (value 1, labels: by), read by
  `playbook_freeze` (a `Registry(frozen_by=...)` hook) until an `unfreeze_promotions` writes 0;
- `notify`: an Alertmanager-compatible alert queued to the named receivers of `notifications:`
  (delivery retried by `aisre.slo.notify`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config.playbooks import PlaybookAction, PlaybookConfig
from aisre.records import Signal
from aisre.respond.conditions import Held, Verdict, judge

log = logging.getLogger("aisre.respond")
FREEZE_SIGNAL = "promotions_frozen"


class Actuator(Protocol):
    """What a playbook may change in a gateway's routing state."""

    def set_weights(self, model: str, weights: dict[str, float]) -> None: ...

    def set_breaker(self, model: str, version: str, open_: bool) -> None: ...


class AdminActuator:
    """A gateway's admin API (`PUT /admin/models/{model}/route`, `.../breaker`) with the admin key."""

    def __init__(self, url: str, admin_key: str, timeout_s: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.headers = {"authorization": f"Bearer {admin_key}"}
        self.timeout_s = timeout_s

    def _put(self, path: str, body: dict[str, Any]) -> None:
        import httpx

        response = httpx.put(f"{self.url}{path}", json=body, headers=self.headers, timeout=self.timeout_s)
        if response.status_code >= 400:
            raise RuntimeError(f"admin API {path}: HTTP {response.status_code}: {response.text[:300]}")

    def set_weights(self, model: str, weights: dict[str, float]) -> None:
        self._put(f"/admin/models/{model}/route", {"weights": weights})

    def set_breaker(self, model: str, version: str, open_: bool) -> None:
        self._put(f"/admin/models/{model}/versions/{version}/breaker", {"open": open_})


class GatewayActuator:
    """The routing state of the gateway in this process, from another thread (the judge's): each
    change runs on the gateway's event loop (and reaches other processes through Redis when set)."""

    def __init__(self, gateway: Any, loop: Any, timeout_s: float = 10.0) -> None:
        self.gateway = gateway
        self.loop = loop
        self.timeout_s = timeout_s

    def _run(self, coroutine: Any) -> None:
        import asyncio

        asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(self.timeout_s)

    def set_weights(self, model: str, weights: dict[str, float]) -> None:
        if model not in self.gateway.routing.models:
            raise ValueError(f"the gateway serves no model {model!r}")
        self._run(self.gateway.set_weights(model, weights))

    def set_breaker(self, model: str, version: str, open_: bool) -> None:
        if model not in self.gateway.routing.models:
            raise ValueError(f"the gateway serves no model {model!r}")
        self._run(self.gateway.set_breaker(model, version, open_))


@dataclass
class _Pending:
    action: PlaybookAction
    attempts: int = 0


@dataclass
class _State:
    held: Held = field(default_factory=Held)
    active: bool = False
    last_fired: float | None = None
    incident_id: int | None = None
    pending: list[_Pending] = field(default_factory=list)
    verdict: Verdict | None = None


@dataclass(frozen=True)
class PlaybookEvent:
    """What a tick did, for logs and drills: fired, action (ok or failed), cooldown, cleared."""

    playbook: str
    at: float
    kind: str
    detail: str
    ok: bool = True


class PlaybookRunner:
    """Runs `playbooks` against `store` (see the module docstring). All collaborators are optional:
    an action whose collaborator is missing fails with a message saying what is missing."""

    def __init__(
        self,
        playbooks: Sequence[PlaybookConfig],
        store: Any,
        *,
        registry: Any = None,
        incidents: Any = None,
        actuator: Actuator | None = None,
        notify: Callable[[Sequence[str], Any], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.playbooks = list(playbooks)
        self.store = store
        self.registry = registry
        self.incidents = incidents
        self.actuator = actuator
        self.notify = notify
        self.clock = clock
        self.states = {p.name: _State() for p in self.playbooks}
        self.events: list[PlaybookEvent] = []

    def tick(self, reports: dict[str, Any] | None = None) -> list[PlaybookEvent]:
        """One evaluation of every playbook at `clock.now()`; `reports`: the latest SLO reports by name."""
        now = self.clock.now()
        out: list[PlaybookEvent] = []
        for p in self.playbooks:
            try:
                out += self._tick_one(p, reports or {}, now)
            except Exception as exc:  # noqa: BLE001 - one playbook's failure never stops the others
                log.exception("playbook %s failed", p.name)
                out.append(PlaybookEvent(p.name, now, "error", f"{type(exc).__name__}: {exc}", ok=False))
        self.events += out
        return out

    # -- one playbook ------------------------------------------------------------------------------
    def _tick_one(self, p: PlaybookConfig, reports: dict[str, Any], now: float) -> list[PlaybookEvent]:
        state = self.states[p.name]
        raw = judge(p.when, p.model, p.version or "", self.store, reports, now)
        verdict = state.held.apply(raw, p.when.for_s, now)
        state.verdict = verdict
        out: list[PlaybookEvent] = []
        if verdict.bad and not state.active:
            state.active = True
            if state.last_fired is not None and now - state.last_fired < p.cooldown_s:
                out.append(
                    PlaybookEvent(
                        p.name, now, "cooldown", f"{verdict.reason}; last fired {now - state.last_fired:.0f} s ago"
                    )
                )
            else:
                state.last_fired = now
                out.append(PlaybookEvent(p.name, now, "fired", verdict.reason))
                state.incident_id = self._open_incident(p, verdict)
                state.pending = [_Pending(a) for a in p.do]
        elif not verdict.bad and state.active:
            state.active = False
            out.append(PlaybookEvent(p.name, now, "cleared", verdict.reason))
            self._incident_event(state, "outcome", f"condition cleared: {verdict.reason}", {"verdict": verdict.reason})
        out += self._run_pending(p, state, now)
        return out

    def _run_pending(self, p: PlaybookConfig, state: _State, now: float) -> list[PlaybookEvent]:
        out, still = [], []
        for item in state.pending:
            item.attempts += 1
            what = item.action.describe()
            try:
                detail = f"would {what} (dry run)" if p.dry_run else self._do(p, item.action, state)
            except Exception as exc:  # noqa: BLE001 - recorded and retried, never raised
                error = f"{type(exc).__name__}: {exc}"
                retry = item.attempts <= p.retries
                note = f"; retrying ({item.attempts}/{p.retries + 1})" if retry else "; giving up"
                out.append(PlaybookEvent(p.name, now, "action", f"{what} failed: {error}{note}", ok=False))
                self._incident_event(
                    state,
                    "action",
                    f"{what} failed: {error}{note}",
                    {"action": what, "ok": False, "error": error, "attempt": item.attempts},
                )
                if retry:
                    still.append(item)
                continue
            out.append(PlaybookEvent(p.name, now, "action", detail))
            self._incident_event(
                state, "action", detail, {"action": what, "ok": True, "attempt": item.attempts, "dry_run": p.dry_run}
            )
        state.pending = still
        return out

    def _do(self, p: PlaybookConfig, action: PlaybookAction, state: _State) -> str:
        actor = f"playbook:{p.name}"
        reason = state.verdict.reason if state.verdict is not None else p.name
        kind, arg = action.kind, action.arg
        if kind == "rollback":
            result = self._need(self.registry, "a registry").rollback(p.model, actor=actor, reason=reason)
            gone = ", ".join(result.rolled_back) or "nothing"
            if result.kind == "canary":
                return f"rolled back {p.model}: canary {gone} retired, stable {result.stable} serves"
            return f"rolled back {p.model}: stable {gone} -> {result.stable}"
        if kind == "halt_canary":
            registry = self._need(self.registry, "a registry")
            halted = [v.version for v in registry.list(p.model) if v.status == "canary"]
            for version in halted:
                registry.promote(p.model, version, "candidate", actor=actor, reason=f"canary halted: {reason}")
            return f"halted canaries of {p.model}: {halted or 'none'}"
        if kind in ("open_breaker", "close_breaker"):
            self._need(self.actuator, "an actuator (a gateway's admin API)").set_breaker(
                p.model, arg, kind == "open_breaker"
            )
            return f"{'opened' if kind == 'open_breaker' else 'closed'} the breaker of {p.model} {arg}"
        if kind == "set_weights":
            weights = {str(v): float(w) for v, w in arg.items()}
            self._need(self.actuator, "an actuator (a gateway's admin API)").set_weights(p.model, weights)
            return f"set the weights of {p.model} to {weights}"
        if kind in ("freeze_promotions", "unfreeze_promotions"):
            frozen = kind == "freeze_promotions"  # an unfreeze lifts every playbook's freeze of the model
            signal = Signal(p.model, "*", FREEZE_SIGNAL, float(frozen), None, frozen, {"by": p.name if frozen else "*"})
            self.store.write_signals([signal], self.clock.now())
            return f"{'froze' if frozen else 'unfroze'} promotions of {p.model}"
        if kind == "notify":
            alert = playbook_alert(p, reason, self.clock.now())
            self._need(self.notify, "notifications: receivers")(arg, alert)
            return f"notified {', '.join(arg)}"
        raise ValueError(f"unknown action {kind!r}")  # refused by the config; a hand-built one may get here

    @staticmethod
    def _need(thing: Any, what: str) -> Any:
        if thing is None:
            raise RuntimeError(f"this runner has no {what}")
        return thing

    # -- incidents ---------------------------------------------------------------------------------
    def _open_incident(self, p: PlaybookConfig, verdict: Verdict) -> int | None:
        if self.incidents is None:
            return None
        try:
            opened = self.incidents.open(
                f"{p.name}: {verdict.reason}",
                actor=f"playbook:{p.name}",
                model=p.model,
                version=p.version,
                severity=p.severity,
                trigger=f"playbook:{p.name}:{p.model}:{p.version or '*'}",
                evidence={"verdict": verdict.reason, **_jsonable(verdict.evidence)},
            )
            return int(opened.incident.id)
        except Exception:  # noqa: BLE001 - the store may be busy; the actions still run
            log.exception("playbook %s: cannot open its incident", p.name)
            return None

    def _incident_event(self, state: _State, kind: str, summary: str, data: dict[str, Any]) -> None:
        if self.incidents is None or state.incident_id is None:
            return
        try:
            self.incidents.add_event(state.incident_id, kind, summary, actor="aisre", data=_jsonable(data))
        except Exception:  # noqa: BLE001
            log.exception("cannot add to incident %s", state.incident_id)


def playbook_alert(p: PlaybookConfig, reason: str, now: float) -> Any:
    """The Alertmanager-compatible alert a `notify` action sends."""
    from aisre.slo.alerts import Alert

    labels = {"alertname": "AisrePlaybook", "playbook": p.name, "model": p.model, "severity": p.severity}
    if p.version is not None:
        labels["version"] = p.version
    return Alert(
        slo=p.name,
        severity="page",
        state="firing",
        active_since_s=now,
        fired_at_s=now,
        labels=labels,
        annotations={"summary": f"playbook {p.name} fired for {p.model}", "description": reason},
    )


def notifier_sender(notifier: Any) -> Callable[[Sequence[str], Any], None]:
    """A `notify` callable that queues the alert to the named receivers of an `aisre.slo.notify.Notifier`."""

    def send(receivers: Sequence[str], alert: Any) -> None:
        missing = [r for r in receivers if r not in notifier.queues]
        if missing:
            raise RuntimeError(f"no receiver named {missing}")
        for r in receivers:
            notifier.queues[r].submit([alert])

    return send


def playbook_freeze(
    store: Any, lookback_s: float = 365 * 86_400.0, clock: Clock = SYSTEM_CLOCK
) -> Callable[[str, str], list[str]]:
    """A `Registry(frozen_by=...)` hook: the playbooks whose `freeze_promotions` still holds for a model."""

    def frozen_by(model: str, version: str) -> list[str]:
        rows = store.signals(model=model, name=FREEZE_SIGNAL, since=clock.now() - lookback_s)
        latest: dict[str, bool] = {}
        for _, s in rows:  # oldest first: the newest per playbook wins; an unfreeze by "*" lifts them all
            by = s.labels.get("by", "?")
            if by == "*" and not s.value:
                latest.clear()
            else:
                latest[by] = bool(s.value)
        return [by if ":" in by else f"playbook {by}" for by, frozen in latest.items() if frozen]

    return frozen_by


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    import orjson

    return dict(orjson.loads(orjson.dumps(data, default=str)))
