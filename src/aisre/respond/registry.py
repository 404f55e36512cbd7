"""The model registry: versions, their status, the stable pointer, and who changed what, when and why.

A version is registered as a `candidate` and moves through `shadow` and `canary` to `stable`; `retired`
ends it. The rules, enforced here for every caller (notebook, CLI, admin API, playbooks):

    candidate -> shadow | canary | stable | retired
    shadow    -> candidate | canary | stable | retired
    canary    -> candidate | shadow | stable | retired
    stable    -> (leaves only when another version is promoted to stable, or by rollback)
    retired   -> candidate

- Promoting a version to `stable` moves the stable pointer; the previous stable version becomes `retired`
  (action `supersede`) and stays a rollback target.
- `rollback(model)`: with canaries, they are retired and the stable version keeps 100% of traffic; with
  none, the stable pointer goes back to the previous stable version (a stack: rolling back twice goes two
  steps back; explicitly retiring a version removes it as a target).
- Promotion to `canary` or `stable` is refused while `frozen_by(model, version)` names SLOs whose budget
  policy freezes promotions (`slo_freeze` builds it from the config's SLOs).
- Promotion to `shadow`, `canary` or `stable` is refused when `gate(model, version, to)` gives a reason
  (`evaluation_gate` requires a passed offline evaluation; `stable` is gated too, or a version could skip
  the gate by going straight to stable).

Example:

    >>> reg = Registry("sqlite:////tmp/aisre-registry-doctest.db")   # doctest: +SKIP
    >>> reg.register("fraud", "v2", endpoint="http://10.0.0.7:8080", actor="notebook:ana")  # doctest: +SKIP
    >>> reg.promote("fraud", "v2", to="canary", actor="notebook:ana", reason="offline eval passed")  # doctest: +SKIP
"""

from __future__ import annotations

import builtins
import datetime as dt
import math
import os
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.errors import (
    AisreError,
    IllegalTransitionError,
    PromotionRefusedError,
    RegistryError,
    UnknownVersionError,
)
from aisre.respond.promotion import (  # re-exported: the hooks were defined here first
    FrozenBy,
    Gate,
    configured_registry,
    evaluation_gate,
    slo_freeze,
)
from aisre.store.registry import STATUSES, HistoryEntry, ModelVersion, RegistryTables, RegistryTx
from aisre.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from aisre.store.postgres import PostgresStore

__all__ = [
    "FrozenBy",
    "Gate",
    "Registry",
    "RollbackResult",
    "STATUSES",
    "TRANSITIONS",
    "configured_registry",
    "evaluation_gate",
    "slo_freeze",
]

#: Where each status can go by `promote` (a stable version leaves only by supersede or rollback).
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "candidate": ("shadow", "canary", "stable", "retired"),
    "shadow": ("candidate", "canary", "stable", "retired"),
    "canary": ("candidate", "shadow", "stable", "retired"),
    "stable": (),
    "retired": ("candidate",),
}
FROZEN_TARGETS = ("canary", "stable")
GATED_TARGETS = ("shadow", "canary", "stable")
_MAX_NAME_CHARS = 200


@dataclass(frozen=True, slots=True)
class RollbackResult:
    """What a rollback did: `kind` is `canary` (canaries retired, stable kept) or `stable` (the pointer went
    back from `rolled_back[0]` to `stable`)."""

    model: str
    kind: str
    stable: str | None
    rolled_back: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "kind": self.kind, "stable": self.stable, "rolled_back": list(self.rolled_back)}


class Registry:
    """Model versions in a store (a `SQLiteStore` or `PostgresStore`, a path, or a `sqlite:///` / `postgresql://` URL).

    Parameters
    ----------
    clock: the time of each change (injectable for simulations).
    frozen_by: the SLO freeze hook (see the module docstring); None: never frozen.
    gate: the offline-evaluation gate hook; None: no gate.
    """

    def __init__(
        self,
        store: SQLiteStore | PostgresStore | str | os.PathLike[str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        frozen_by: FrozenBy | None = None,
        gate: Gate | None = None,
    ) -> None:
        self.tables = RegistryTables(store)
        self.store = self.tables.store
        self.clock = clock
        self.frozen_by = frozen_by
        self.gate = gate

    # -- reads --------------------------------------------------------------------------
    def get(self, model: str, version: str) -> ModelVersion:
        """One version; UnknownVersionError (naming the registered ones) when absent."""
        found = self.tables.read().get(model, version)
        if found is None:
            raise self._unknown(self.tables.read(), model, version)
        return found

    def stable(self, model: str) -> ModelVersion | None:
        """The model's stable version, or None when it has none yet."""
        read = self.tables.read()
        name = read.stable(model)
        return None if name is None else read.get(model, name)

    def list(self, model: str | None = None) -> list[ModelVersion]:
        """Every registered version (of `model`), by model then registration time."""
        return self.tables.read().versions(model)

    def models(self) -> builtins.list[str]:
        return sorted({v.model for v in self.list()})

    def history(self, model: str, version: str | None = None) -> builtins.list[HistoryEntry]:
        """Every change to `model` (or one version of it), oldest first; UnknownVersionError for an unknown model."""
        read = self.tables.read()
        if not read.versions(model):
            raise self._unknown(read, model, None)
        return read.history(model, version)

    def revision(self) -> int:
        """Bumped by every change anywhere in the registry (what a gateway polls)."""
        return self.tables.revision()

    # -- changes ------------------------------------------------------------------------
    def register(
        self,
        model: str,
        version: str,
        *,
        actor: str,
        endpoint: str | None = None,
        artifact: str | None = None,
        trained_at: float | dt.datetime | None = None,
        reference: str | None = None,
        metadata: dict[str, Any] | None = None,
        reason: str | None = None,
    ) -> ModelVersion:
        """Register a new version as a `candidate`. Versions are immutable: registering one twice is refused.
        With `trained_at` (Unix seconds or a datetime), also records the `model_trained_at` freshness mark."""
        _check_name("model", model)
        _check_name("version", version)
        _check_actor(actor)
        if endpoint is not None and artifact is not None:
            raise RegistryError("endpoint, artifact: give one of them (where the version is served or stored)")
        if endpoint is not None and (not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://"))):
            raise RegistryError(f"endpoint: expected an http(s) URL such as http://10.0.0.7:8080, got {endpoint!r}")
        for field, value in (("artifact", artifact), ("reference", reference)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise RegistryError(f"{field}: expected a non-empty path or URL, got {value!r}")
        trained = _epoch(trained_at)
        if metadata is not None and not isinstance(metadata, dict):
            raise RegistryError(f"metadata: expected a JSON object (dict), got {type(metadata).__name__}")
        try:
            meta = orjson.loads(orjson.dumps(metadata or {}))
        except TypeError as exc:
            raise RegistryError(f"metadata: expected JSON-serialisable values ({exc})") from None
        now = self.clock.now()
        entry = ModelVersion(model, version, "candidate", endpoint, artifact, trained, reference, meta, now, now)
        with self.tables.transaction() as tx:
            existing = tx.get(model, version)
            if existing is not None:
                raise RegistryError(
                    f"{model} {version} is already registered (status {existing.status}); versions are immutable: "
                    "register the new model under a new version"
                )
            tx.insert(entry)
            stable = tx.stable(model)
            tx.append(
                at=now,
                model=model,
                version=version,
                action="register",
                from_status=None,
                to_status="candidate",
                actor=actor,
                reason=reason,
                stable_before=stable,
                stable_after=stable,
            )
        if trained is not None:
            self._mark_trained(model, version, trained, now)
        return entry

    def promote(self, model: str, version: str, to: str, *, actor: str, reason: str | None = None) -> ModelVersion:
        """Move `version` to status `to`. Raises UnknownVersionError, IllegalTransitionError (naming the current
        status and the allowed ones) or PromotionRefusedError (an SLO freeze or the gate)."""
        _check_actor(actor)
        if to not in STATUSES:
            raise RegistryError(f"to: expected one of {', '.join(STATUSES)}, got {to!r}")
        if to == "retired":
            return self.retire(model, version, actor=actor, reason=reason)
        self._check_transition(self.tables.read(), model, version, to)  # illegal moves say so before any policy
        self._check_policies(model, version, to)
        now = self.clock.now()
        with self.tables.transaction() as tx:
            current = self._check_transition(tx, model, version, to)
            before = tx.stable(model)
            after = version if to == "stable" else before
            if to == "stable" and before is not None:
                tx.set_status(model, before, "retired", now)
                tx.append(
                    at=now,
                    model=model,
                    version=before,
                    action="supersede",
                    from_status="stable",
                    to_status="retired",
                    actor=actor,
                    reason=f"superseded by {version}" + (f": {reason}" if reason else ""),
                    stable_before=before,
                    stable_after=after,
                )
            tx.set_status(model, version, to, now)
            if to == "stable":
                tx.set_stable(model, version, now)
            tx.append(
                at=now,
                model=model,
                version=version,
                action="promote",
                from_status=current.status,
                to_status=to,
                actor=actor,
                reason=reason,
                stable_before=before,
                stable_after=after,
            )
            updated = tx.get(model, version)
        assert updated is not None
        return updated

    def retire(self, model: str, version: str, *, actor: str, reason: str | None = None) -> ModelVersion:
        """Retire a version. The stable version cannot be retired (promote another or roll back first); retiring
        an already retired (superseded) version removes it as a rollback target."""
        _check_actor(actor)
        now = self.clock.now()
        with self.tables.transaction() as tx:
            current = tx.get(model, version)
            if current is None:
                raise self._unknown(tx, model, version)
            if current.status == "stable":
                raise IllegalTransitionError(
                    model, version, "stable", "retired", (), "promote another version to stable, or roll back, first"
                )
            if current.status == "retired" and version not in _stable_stack(tx.history(model)):
                raise IllegalTransitionError(
                    model, version, "retired", "retired", TRANSITIONS["retired"], "it already is"
                )
            stable = tx.stable(model)
            tx.set_status(model, version, "retired", now)
            tx.append(
                at=now,
                model=model,
                version=version,
                action="retire",
                from_status=current.status,
                to_status="retired",
                actor=actor,
                reason=reason,
                stable_before=stable,
                stable_after=stable,
            )
            updated = tx.get(model, version)
        assert updated is not None
        return updated

    def rollback(self, model: str, *, actor: str, reason: str | None = None) -> RollbackResult:
        """Put all traffic back on a known-good version: retire the canaries if there are any (the stable version
        stays), else move the stable pointer back to the previous stable version. RegistryError when there is
        nothing to roll back to, naming why."""
        _check_actor(actor)
        now = self.clock.now()
        with self.tables.transaction() as tx:
            versions = tx.versions(model)
            if not versions:
                raise self._unknown(tx, model, None)
            stable = tx.stable(model)
            canaries = [v.version for v in versions if v.status == "canary"]
            if canaries:
                for name in canaries:
                    tx.set_status(model, name, "retired", now)
                    tx.append(
                        at=now,
                        model=model,
                        version=name,
                        action="rollback",
                        from_status="canary",
                        to_status="retired",
                        actor=actor,
                        reason=reason,
                        stable_before=stable,
                        stable_after=stable,
                    )
                return RollbackResult(model, "canary", stable, tuple(canaries))
            if stable is None:
                raise RegistryError(f"{model} has no stable version and no canary: there is nothing to roll back")
            stack = _stable_stack(tx.history(model))
            if len(stack) < 2 or stack[-1] != stable:
                raise RegistryError(
                    f"{model} has no previous stable version to roll back to: {stable} is the only version that "
                    "has been stable (and not since rolled back from or retired); promote a version to stable instead"
                )
            target = stack[-2]
            previous = tx.get(model, target)
            assert previous is not None
            tx.set_status(model, stable, "retired", now)
            tx.append(
                at=now,
                model=model,
                version=stable,
                action="rollback",
                from_status="stable",
                to_status="retired",
                actor=actor,
                reason=reason,
                stable_before=stable,
                stable_after=target,
            )
            tx.set_status(model, target, "stable", now)
            tx.set_stable(model, target, now)
            tx.append(
                at=now,
                model=model,
                version=target,
                action="rollback",
                from_status=previous.status,
                to_status="stable",
                actor=actor,
                reason=reason,
                stable_before=stable,
                stable_after=target,
            )
            return RollbackResult(model, "stable", target, (stable,))

    def close(self) -> None:
        self.tables.close()

    # -- helpers ------------------------------------------------------------------------
    def _check_transition(self, tx: RegistryTx, model: str, version: str, to: str) -> ModelVersion:
        current = tx.get(model, version)
        if current is None:
            raise self._unknown(tx, model, version)
        allowed = TRANSITIONS[current.status]
        if to not in allowed:
            hint = ""
            if current.status == to:
                hint = "it already is"
            elif current.status == "stable":
                hint = "a stable version leaves only when another is promoted to stable, or by rollback"
            raise IllegalTransitionError(model, version, current.status, to, allowed, hint)
        return current

    def _check_policies(self, model: str, version: str, to: str) -> None:
        if to in FROZEN_TARGETS and self.frozen_by is not None:
            frozen = list(self.frozen_by(model, version))
            if frozen:
                raise PromotionRefusedError(
                    f"promotion of {model} {version} to {to} refused: promotions are frozen by the budget policy "
                    f"of SLO {', '.join(frozen)} (error budget spent; it lifts when the budget recovers)",
                    frozen,
                )
        if to in GATED_TARGETS and self.gate is not None:
            refusal = self.gate(model, version, to)
            if refusal:
                raise PromotionRefusedError(
                    f"promotion of {model} {version} to {to} refused by the offline-evaluation gate: {refusal}",
                    [refusal],
                )

    def _mark_trained(self, model: str, version: str, trained: float, now: float) -> None:
        from aisre.slo.marks import MODEL_TRAINED_AT, mark

        try:
            mark(self.store, model, MODEL_TRAINED_AT, trained, now=now, version=version)
        except (AisreError, sqlite3.Error) as exc:  # the version is registered; a lost mark must not undo it
            raise RegistryError(
                f"{model} {version} is registered, but its model_trained_at freshness mark was not recorded: {exc}"
            ) from exc

    @staticmethod
    def _unknown(tx: RegistryTx, model: str, version: str | None) -> UnknownVersionError:
        versions = [v.version for v in tx.versions(model)]
        if not versions:
            models = sorted({v.model for v in tx.versions()})
            known = ", ".join(models) if models else "none yet: register one with `aisre models register`"
            return UnknownVersionError(f"model {model!r} is not registered; registered models: {known}")
        return UnknownVersionError(f"{model} has no version {version!r}; registered versions: {', '.join(versions)}")


def _stable_stack(history: list[HistoryEntry]) -> list[str]:
    """The stable pointer's past, oldest first, with versions rolled back from or explicitly retired removed:
    its last element is the stable version, the one before it the rollback target."""
    stack: list[str] = []
    for h in history:
        if h.action == "retire":
            stack = [v for v in stack if v != h.version]
        elif h.stable_after != h.stable_before and h.to_status == "stable":
            if h.action == "rollback":
                while stack and stack[-1] != h.stable_after:
                    stack.pop()
                if not stack:
                    stack.append(h.version)
            else:
                stack = [v for v in stack if v != h.version] + [h.version]
    return stack


def _check_name(field: str, value: object) -> None:
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > _MAX_NAME_CHARS:
        raise RegistryError(
            f"{field}: expected 1 to {_MAX_NAME_CHARS} characters without surrounding spaces, got {value!r}"
        )
    if not value.isprintable() or "/" in value:
        raise RegistryError(f"{field}: expected printable characters without '/' (it appears in URLs), got {value!r}")


def _check_actor(actor: object) -> None:
    if not isinstance(actor, str) or not actor.strip():
        raise RegistryError(
            f"actor: expected who makes the change (e.g. cli:ana, playbook:drift-rollback), got {actor!r}"
        )


def _epoch(at: float | dt.datetime | None) -> float | None:
    if at is None:
        return None
    if isinstance(at, dt.datetime):
        return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(at, bool) or not isinstance(at, int | float) or not math.isfinite(at) or at < 0:
        raise RegistryError(f"trained_at: expected Unix seconds or a datetime, got {at!r}")
    return float(at)
