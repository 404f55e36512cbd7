"""Incidents over a real SQLite file: one incident per flapping trigger, open -> acknowledged -> resolved with who
and when, and an append-only timeline of trigger, evidence, actions and notes."""

from __future__ import annotations

import sqlite3

import pytest

from aisre.clock import ManualClock
from aisre.errors import IncidentError, UnknownIncidentError
from aisre.respond import Incidents


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def incidents(store, clock) -> Incidents:
    return Incidents(store, clock=clock)


def open_drift(incidents: Incidents, **kw):
    return incidents.open(
        "fraud v2: drift on amount",
        model="fraud",
        version="v2",
        trigger="drift:fraud:v2",
        actor="playbook:drift-rollback",
        evidence={"psi": 0.31, "threshold": 0.2},
        **kw,
    )


def test_a_flapping_trigger_opens_one_incident_and_adds_retrigger_events(incidents, clock):
    first = open_drift(incidents)
    for _ in range(49):
        clock.advance(60)
        again = open_drift(incidents)
        assert not again.created and again.incident.id == first.incident.id
    assert first.created
    assert len(incidents.list()) == 1
    kinds = [e.kind for e in incidents.get(first.incident.id).events]
    assert kinds == ["trigger"] + ["retrigger"] * 49
    assert incidents.get(first.incident.id).events[0].data == {"psi": 0.31, "threshold": 0.2}


def test_after_resolving_the_same_trigger_opens_a_new_incident(incidents):
    first = open_drift(incidents).incident
    incidents.resolve(first.id, actor="cli:ana", note="rolled back; drift came from a broken upstream feed")
    second = open_drift(incidents)
    assert second.created and second.incident.id != first.id
    assert incidents.find_open("drift:fraud:v2").id == second.incident.id


def test_incidents_without_a_trigger_are_never_merged(incidents):
    a = incidents.open("manual check", actor="cli:ana")
    b = incidents.open("manual check", actor="cli:ana")
    assert a.created and b.created and a.incident.id != b.incident.id


def test_ack_then_resolve_records_who_and_when_and_refuses_repeats(incidents, clock):
    incident = open_drift(incidents).incident
    clock.advance(120)
    acked = incidents.ack(incident.id, actor="cli:ana")
    assert (acked.status, acked.acked_by, acked.acked_at - incident.opened_at) == ("acknowledged", "cli:ana", 120)
    with pytest.raises(IncidentError, match=f"incident {incident.id} is already acknowledged \\(by cli:ana\\)"):
        incidents.ack(incident.id, actor="cli:bob")
    clock.advance(600)
    resolved = incidents.resolve(incident.id, actor="cli:bob", note="retrained on fresh data")
    assert (resolved.status, resolved.resolved_by) == ("resolved", "cli:bob")
    for move in (incidents.ack, incidents.resolve):
        with pytest.raises(IncidentError, match="is resolved \\(by cli:bob\\)"):
            move(incident.id, actor="cli:ana")
    timeline = [(e.kind, e.actor, e.summary) for e in incidents.get(incident.id).events]
    assert timeline == [
        ("trigger", "playbook:drift-rollback", "fraud v2: drift on amount"),
        ("ack", "cli:ana", "acknowledged"),
        ("resolve", "cli:bob", "retrained on fresh data"),
    ]


def test_an_open_incident_can_be_resolved_without_an_ack(incidents):
    incident = open_drift(incidents).incident
    assert incidents.resolve(incident.id, actor="cli:ana").status == "resolved"


def test_the_timeline_keeps_evidence_actions_and_outcomes_in_order(incidents, clock):
    incident = open_drift(incidents).incident
    clock.advance(1)
    incidents.add_event(incident.id, "evidence", "accuracy 0.81 < 0.9", actor="monitor", data={"accuracy": 0.81})
    clock.advance(1)
    incidents.add_event(
        incident.id, "action", "rollback fraud", actor="playbook:drift-rollback", data={"ok": False, "error": "x"}
    )
    clock.advance(1)
    incidents.add_event(incident.id, "outcome", "traffic recovered", actor="playbook:drift-rollback")
    events = incidents.get(incident.id).events
    assert [e.kind for e in events] == ["trigger", "evidence", "action", "outcome"]
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert events[2].data == {"ok": False, "error": "x"}
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        incidents.tables.store._conn().execute("DELETE FROM incident_events")


def test_bad_input_names_the_field(incidents):
    with pytest.raises(IncidentError, match="severity: expected one of critical, high, medium, low, info"):
        incidents.open("x", actor="a", severity="sev1")
    with pytest.raises(IncidentError, match="title: expected a non-empty text"):
        incidents.open(" ", actor="a")
    incident = incidents.open("x", actor="a").incident
    with pytest.raises(IncidentError, match="kind: expected one of retrigger, evidence, action, outcome, note"):
        incidents.add_event(incident.id, "ack", "sneaky", actor="a")
    with pytest.raises(UnknownIncidentError, match="no incident 999"):
        incidents.ack(999, actor="a")
    with pytest.raises(IncidentError, match="status: expected one of open, acknowledged, resolved"):
        incidents.list(status="closed")


def test_list_filters_by_status_and_model_newest_first(incidents):
    a = open_drift(incidents).incident
    b = incidents.open("churn latency", model="churn", trigger="latency:churn", actor="slo").incident
    c = incidents.open("fraud bias", model="fraud", trigger="bias:fraud", actor="slo").incident
    incidents.ack(c.id, actor="cli:ana")
    assert [i.id for i in incidents.list()] == [c.id, b.id, a.id]
    assert [i.id for i in incidents.list(status="open")] == [b.id, a.id]
    assert [i.id for i in incidents.list(model="fraud")] == [c.id, a.id]
    assert [i.id for i in incidents.list(limit=1)] == [c.id]
