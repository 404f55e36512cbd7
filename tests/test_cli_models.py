"""`aisre models` and `aisre incidents` as a user runs them (subprocesses on a real store): tables, --json, and
bad input that exits 2 with one line naming what was wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aisre.respond import Incidents

from .test_cli import aisre_cli


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'aisre.db'}"


def ok(*args: str) -> str:
    out = aisre_cli(*args)
    assert out.returncode == 0, out.stderr
    return out.stdout


def refused(*args: str) -> str:
    out = aisre_cli(*args)
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    return lines[0]


def test_register_promote_rollback_and_history_from_the_command_line(url, monkeypatch):
    monkeypatch.setenv("AISRE_ACTOR", "cli:ci")
    ok(
        "models",
        "register",
        "fraud",
        "v1",
        "--artifact",
        "/models/v1.joblib",
        "--trained-at",
        "2026-11-01",
        "--store",
        url,
    )
    ok(
        "models",
        "register",
        "fraud",
        "v2",
        "--endpoint",
        "http://10.0.0.7:8080",
        "--metadata",
        '{"auc": 0.91}',
        "--store",
        url,
    )
    ok("models", "promote", "fraud", "v1", "--to", "stable", "--reason", "first release", "--store", url)
    ok("models", "promote", "fraud", "v2", "--to", "canary", "--store", url)
    table = ok("models", "list", "--store", url)
    assert "fraud" in table and "canary" in table and "http://10.0.0.7:8080" in table and "2026-11-01" in table
    listed = json.loads(ok("models", "list", "--json", "--store", url))
    assert [(v["version"], v["status"]) for v in listed] == [("v1", "stable"), ("v2", "canary")]
    assert listed[1]["metadata"] == {"auc": 0.91}
    assert "rolled back canary v2; v1 keeps all traffic" in ok("models", "rollback", "fraud", "--store", url)
    history = json.loads(ok("models", "history", "fraud", "--json", "--store", url))
    assert [(h["version"], h["action"], h["to_status"]) for h in history] == [
        ("v1", "register", "candidate"),
        ("v2", "register", "candidate"),
        ("v1", "promote", "stable"),
        ("v2", "promote", "canary"),
        ("v2", "rollback", "retired"),
    ]
    assert {h["actor"] for h in history} == {"cli:ci"} and history[2]["reason"] == "first release"
    shown = json.loads(ok("models", "show", "fraud", "v2", "--json", "--store", url))
    assert shown["stable"] == "v1" and [h["action"] for h in shown["history"]] == ["register", "promote", "rollback"]
    assert shown["versions"][0]["evaluation"] is None  # never evaluated with `aisre eval`


def test_bad_model_commands_exit_2_with_one_line(url):
    ok("models", "register", "fraud", "v1", "--store", url)
    assert "--to: expected one of candidate, shadow" in refused(
        "models", "promote", "fraud", "v1", "--to", "prod", "--store", url
    )
    assert "fraud has no version 'v9'" in refused("models", "promote", "fraud", "v9", "--to", "canary", "--store", url)
    assert "--trained-at: expected a duration" in refused(
        "models", "register", "fraud", "v2", "--trained-at", "soon", "--store", url
    )
    assert "--metadata: expected a JSON object" in refused(
        "models", "register", "fraud", "v2", "--metadata", "{", "--store", url
    )
    assert "nothing to roll back" in refused("models", "rollback", "fraud", "--store", url)
    ok("models", "promote", "fraud", "v1", "--to", "stable", "--store", url)
    assert "cannot go to canary (from stable" in refused(
        "models", "promote", "fraud", "v1", "--to", "canary", "--store", url
    )


def test_incidents_from_the_command_line(url, tmp_path):
    incidents = Incidents(url)
    number = incidents.open("fraud v2 drift", model="fraud", trigger="drift", actor="playbook:x").incident.id
    incidents.close()
    assert "fraud v2 drift" in ok("incidents", "list", "--store", url)
    assert "acknowledged" in ok("incidents", "ack", str(number), "--store", url)
    assert "already acknowledged" in refused("incidents", "ack", str(number), "--store", url)
    ok("incidents", "resolve", str(number), "--note", "rolled back", "--store", url)
    shown = json.loads(ok("incidents", "show", str(number), "--json", "--store", url))
    assert shown["status"] == "resolved" and [e["kind"] for e in shown["events"]] == ["trigger", "ack", "resolve"]
    assert json.loads(ok("incidents", "list", "--status", "open", "--json", "--store", url)) == []
    assert "ID: expected an incident number" in refused("incidents", "show", "twelve", "--store", url)
    assert "ID: no incident 99" in refused("incidents", "resolve", "99", "--store", url)
    assert "--status: expected one of open" in refused("incidents", "list", "--status", "closed", "--store", url)
    assert "no store at" in refused("incidents", "list", "--store", f"sqlite:///{tmp_path / 'none.db'}")


def test_freeze_and_unfreeze_promotions_from_the_command_line(url, monkeypatch):
    monkeypatch.setenv("AISRE_ACTOR", "cli:oncall")
    ok("models", "register", "fraud", "v2", "--store", url)
    assert "promotions frozen by cli:oncall" in ok(
        "models", "freeze", "fraud", "--reason", "incident 12", "--store", url
    )
    line = refused("models", "promote", "fraud", "v2", "--to", "canary", "--store", url)
    assert "cli:oncall" in line
    assert "promotions allowed" in ok("models", "unfreeze", "fraud", "--store", url)
    assert "canary" in ok("models", "promote", "fraud", "v2", "--to", "canary", "--store", url)
