"""Incidents: what went wrong with a model, what aisre and people did about it, in one append-only timeline.

Lifecycle: open -> acknowledged -> resolved (open -> resolved directly too). A resolved incident stays
readable and may still get notes. Opening is idempotent per `trigger` key while an incident for it is
unresolved: a flapping trigger (a drift signal breaching every minute) adds `retrigger` events to the one
incident instead of opening fifty.

Example:

    >>> inc = Incidents("sqlite:////tmp/aisre-incidents-doctest.db")  # doctest: +SKIP
    >>> opened = inc.open("fraud v2: drift on amount", model="fraud", version="v2", trigger="drift:fraud:v2",
    ...                   actor="playbook:drift-rollback", evidence={"psi": 0.31, "threshold": 0.2})  # doctest: +SKIP
    >>> inc.add_event(opened.incident.id, "action", "rolled back to v1",
    ...               actor="playbook:drift-rollback")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, NamedTuple

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.errors import IncidentError, UnknownIncidentError
from aisre.store.incidents import EVENT_KINDS, INCIDENT_STATUSES, SEVERITIES, Incident, IncidentTables, IncidentTx
from aisre.store.sqlite import SQLiteStore

if TYPE_CHECKING:
    from aisre.store.postgres import PostgresStore

__all__ = ["EVENT_KINDS", "INCIDENT_STATUSES", "Incident", "Incidents", "Opened", "SEVERITIES"]

_MAX_TEXT = 2000


class Opened(NamedTuple):
    """`open`'s answer: the incident, and whether this call created it (False: it was already open)."""

    incident: Incident
    created: bool


class Incidents:
    """Incidents in a store (a `SQLiteStore` or `PostgresStore`, a path, or a `sqlite:///` / `postgresql://`
    URL); times from `clock`."""

    def __init__(
        self, store: SQLiteStore | PostgresStore | str | os.PathLike[str], *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.tables = IncidentTables(store)
        self.clock = clock

    def open(
        self,
        title: str,
        *,
        actor: str,
        model: str | None = None,
        version: str | None = None,
        severity: str = "high",
        trigger: str | None = None,
        evidence: dict[str, Any] | None = None,
    ) -> Opened:
        """Open an incident, or, when `trigger` already has an unresolved one, add a `retrigger` event to it.
        `evidence` (signal values, thresholds, windows) goes on the trigger event."""
        _text("title", title)
        _text("actor", actor)
        if severity not in SEVERITIES:
            raise IncidentError(f"severity: expected one of {', '.join(SEVERITIES)}, got {severity!r}")
        if trigger is not None:
            _text("trigger", trigger)
        for field, value in (("model", model), ("version", version)):
            if value is not None:
                _text(field, value)
        now = self.clock.now()
        with self.tables.transaction() as tx:
            existing = tx.open_for(trigger) if trigger is not None else None
            if existing is not None:
                tx.append(existing.id, at=now, kind="retrigger", actor=actor, summary=title, data=evidence)
                return Opened(self._get(tx, existing.id), False)
            try:
                new_id = tx.insert(
                    model=model,
                    version=version,
                    title=title,
                    severity=severity,
                    trigger_key=trigger,
                    at=now,
                    actor=actor,
                )
            except self.tables.integrity_errors as exc:  # unreachable under the write lock; the index is the backstop
                raise IncidentError(f"an unresolved incident for trigger {trigger!r} already exists") from exc
            tx.append(new_id, at=now, kind="trigger", actor=actor, summary=title, data=evidence)
            return Opened(self._get(tx, new_id), True)

    def add_event(
        self, incident_id: int, kind: str, summary: str, *, actor: str, data: dict[str, Any] | None = None
    ) -> Incident:
        """Append to the timeline: `evidence`, `action` (data: what was done and its outcome), `outcome`, `note`."""
        if kind not in EVENT_KINDS or kind in ("ack", "resolve", "trigger"):
            allowed = [k for k in EVENT_KINDS if k not in ("ack", "resolve", "trigger")]
            raise IncidentError(f"kind: expected one of {', '.join(allowed)} (ack/resolve have methods), got {kind!r}")
        _text("summary", summary)
        _text("actor", actor)
        with self.tables.transaction() as tx:
            self._get(tx, incident_id)
            tx.append(incident_id, at=self.clock.now(), kind=kind, actor=actor, summary=summary, data=data)
            return self._get(tx, incident_id)

    def ack(self, incident_id: int, *, actor: str, note: str | None = None) -> Incident:
        """Someone is on it. Refused when already acknowledged or resolved (the error says by whom and when)."""
        return self._move(incident_id, "acknowledged", actor, note)

    def resolve(self, incident_id: int, *, actor: str, note: str | None = None) -> Incident:
        """Close the incident (from open or acknowledged); `note` says how it ended."""
        return self._move(incident_id, "resolved", actor, note)

    def get(self, incident_id: int) -> Incident:
        """One incident with its timeline; UnknownIncidentError when absent."""
        return self._get(self.tables.read(), incident_id)

    def find_open(self, trigger: str) -> Incident | None:
        """The unresolved incident `trigger` opened, if any."""
        return self.tables.read().open_for(trigger)

    def list(
        self,
        *,
        status: str | None = None,
        model: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[Incident]:
        """Incidents, newest first, without timelines; filter by status, model, opened since (Unix seconds)."""
        if status is not None and status not in INCIDENT_STATUSES:
            raise IncidentError(f"status: expected one of {', '.join(INCIDENT_STATUSES)}, got {status!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise IncidentError(f"limit: expected a whole number >= 1, got {limit!r}")
        return self.tables.read().list(status=status, model=model, since=since, limit=limit)

    def close(self) -> None:
        self.tables.close()

    def _move(self, incident_id: int, to: str, actor: str, note: str | None) -> Incident:
        _text("actor", actor)
        if note is not None:
            _text("note", note)
        with self.tables.transaction() as tx:
            current = self._get(tx, incident_id)
            if current.status == "resolved":
                raise IncidentError(
                    f"incident {incident_id} is resolved (by {current.resolved_by}); it cannot be "
                    f"{'acknowledged' if to == 'acknowledged' else 'resolved again'}: open a new one if it recurs"
                )
            if current.status == to:
                raise IncidentError(f"incident {incident_id} is already acknowledged (by {current.acked_by})")
            now = self.clock.now()
            tx.set_status(incident_id, to, now, actor)
            kind = "ack" if to == "acknowledged" else "resolve"
            tx.append(incident_id, at=now, kind=kind, actor=actor, summary=note or to, data=None)
            return self._get(tx, incident_id)

    @staticmethod
    def _get(tx: IncidentTx, incident_id: int) -> Incident:
        if isinstance(incident_id, bool) or not isinstance(incident_id, int):
            raise IncidentError(f"id: expected an incident number, got {incident_id!r}")
        found = tx.get(incident_id)
        if found is None:
            raise UnknownIncidentError(f"no incident {incident_id}")
        return found


def _text(field: str, value: object) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT:
        raise IncidentError(f"{field}: expected a non-empty text of at most {_MAX_TEXT} characters, got {value!r}")
