"""`DashboardData`: every answer of the dashboard's JSON API (docs/dashboard.md) as plain dicts.

A library object first - usable from a notebook over a store, with a `ManualClock` - that the HTTP
API only serialises. It reads pre-aggregated series only (the traffic rollup, the SLO minute
buckets, the monitoring jobs' signals, the incident and registry tables), never raw records,
except for the HTML drift report of one window. All times are on the injected clock, so `since=24h`
in an accelerated demo means 24 hours of the demo's time.
"""

from __future__ import annotations

from typing import Any

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.config import AisreConfig
from aisre.dashboard import params, signals, slos
from aisre.dashboard.params import UnknownItem
from aisre.dashboard.state import RouteView
from aisre.dashboard.traffic import empty_window, last_window, traffic_series
from aisre.errors import AisreError
from aisre.respond.incidents import Incidents
from aisre.respond.registry import Registry
from aisre.store import rollups
from aisre.store.incidents import INCIDENT_STATUSES
from aisre.store.sqlite import SQLiteStore

INCIDENT_FILTERS = (*INCIDENT_STATUSES, "unresolved")
SLO_MAX_SPAN_S = 400 * 86_400.0
Param = str | float | int | None


def _text(value: Param) -> str | None:
    return None if value is None else str(value)


class DashboardData:
    """The dashboard's data over one store. `live`: the serving `aisre.gateway.core.Gateway` (route weights
    and breaker states in force), or None when the dashboard runs alone (see `aisre.dashboard.state`)."""

    def __init__(self, config: AisreConfig, store: SQLiteStore, clock: Clock = SYSTEM_CLOCK, live: Any = None):
        self.config = config
        self.store = store
        self.clock = clock
        self.live = live
        self.incidents_db = Incidents(store, clock=clock)
        self.registry_db = Registry(store, clock=clock)
        self.routes = RouteView(config, self.incidents_db, self.registry_db, live)
        self.slo_views = slos.SLOViews(config, store)

    # -- what exists -----------------------------------------------------------------------------
    def _conn(self) -> Any:
        if getattr(self.store, "dialect", "sqlite") == "postgresql":  # the same `?` SQL through psycopg
            from aisre.store.postgres_conn import PgConnection

            return PgConnection(self.store)
        return self.store._conn()  # noqa: SLF001 - the store's connection of this thread: its file holds every table

    def models(self) -> list[str]:
        """Configured models, then registered ones, then any with recorded traffic."""
        names = dict.fromkeys(self.config.models)
        names.update(dict.fromkeys(self.registry_db.models()))
        names.update(dict.fromkeys(m for m, _ in rollups.models(self._conn())))
        return list(names)

    def _versions(self, model: str) -> list[str]:
        names: dict[str, None] = {}
        mcfg = self.config.models.get(model)
        if mcfg is not None:
            names.update(dict.fromkeys(mcfg.versions))
        names.update(dict.fromkeys(v.version for v in self.registry_db.list(model)))
        names.update(dict.fromkeys(v for m, v in rollups.models(self._conn()) if m == model))
        return list(names)

    def _model(self, model: str) -> str:
        known = self.models()
        if model not in known:
            raise UnknownItem("model", f"unknown model {model!r}; known: {', '.join(known) or 'none yet'}")
        return model

    def _version(self, model: str, version: str | None) -> str | None:
        if version is None:
            return None
        known = self._versions(model)
        if version not in known:
            raise UnknownItem("version", f"unknown version {version!r} of {model}; known: {', '.join(known)}")
        return version

    def _maybe_llm(self, model: str) -> bool:
        """False for a model configured over the Open Inference Protocol (no TTFT/TPOT to sum)."""
        mcfg = self.config.models.get(model)
        return mcfg is None or mcfg.protocol != "oip"

    # -- endpoints -------------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        now = self.clock.now()
        summaries = self.slo_views.summaries(now)
        models = []
        self.routes.refresh_shared(self.models())
        for model in self.models():
            models.append(self._model_overview(model, now, summaries))
        counts = {"open": 0, "acknowledged": 0}
        for status, n in self._conn().execute(
            "SELECT status, count(*) FROM incidents WHERE status != 'resolved' GROUP BY status"
        ):
            counts[status] = n
        return {"now": now, "models": models, "slos": summaries, "incidents": counts}

    def _model_overview(self, model: str, now: float, summaries: list[dict[str, Any]]) -> dict[str, Any]:
        mcfg = self.config.models.get(model)
        registered = {v.version: v for v in self.registry_db.list(model)}
        stable = self.registry_db.stable(model)
        weights = self.routes.weights(model)
        hour = last_window(self._conn(), model, now, 3600)
        primary = max(weights, key=lambda v: weights[v]) if weights else None
        versions = []
        for version in self._versions(model):
            if version.startswith("rule:"):  # a breaker's rule fallback: its answers are recorded under it
                status = "fallback"
            elif version in registered:
                status = registered[version].status
            elif stable is None and version == primary:
                status = "stable"
            elif weights.get(version, 0) > 0:
                status = "canary"
            else:
                status = "inactive" if mcfg is None or version not in mcfg.versions else "configured"
            versions.append(
                {
                    "version": version,
                    "status": status,
                    "weight": weights.get(version, 0.0),
                    "breaker": self.routes.breaker(model, version),
                    "last_hour": hour.get(version, empty_window()),
                }
            )
        frozen = [s["name"] for s in summaries if s["model"] == model and s.get("freeze_promotions")]
        return {
            "model": model,
            "protocol": None if mcfg is None else mcfg.protocol,
            "stable": stable.version if stable is not None else primary,
            "promotions_frozen": bool(frozen),
            "versions": versions,
        }

    def traffic(
        self, model: str, since: Param = None, until: Param = None, step: Param = None, version: Param = None
    ) -> dict[str, Any]:
        now = self.clock.now()
        rng = params.time_range(_text(since), _text(until), _text(step), now)
        model = self._model(model)
        ver = self._version(model, _text(version))
        return {
            "model": model,
            "now": now,
            "step": rng.step_s,
            "t": rng.starts,
            "versions": traffic_series(self._conn(), model, rng, ver, llm=self._maybe_llm(model)),
        }

    def signals(
        self, model: str, kind: Param = None, version: Param = None, since: Param = None, until: Param = None
    ) -> dict[str, Any]:
        now = self.clock.now()
        what = params.choice(_text(kind), "kind", signals.KINDS, "all")
        rng = params.time_range(_text(since), _text(until), None, now)
        model = self._model(model)
        ver = self._version(model, _text(version))
        assert what is not None
        series = signals.series(self._conn(), model, what, rng.since, rng.until, ver)
        return {"model": model, "now": now, "kind": what, "series": series}

    def slos(self) -> dict[str, Any]:
        now = self.clock.now()
        return {"now": now, "slos": self.slo_views.summaries(now)}

    def slo(self, name: str, since: Param = None, until: Param = None, step: Param = None) -> dict[str, Any]:
        now = self.clock.now()
        # the budget at each point reads a period before it: the range is bounded so that stays small
        rng = params.time_range(_text(since), _text(until), _text(step), now, max_span_s=SLO_MAX_SPAN_S)
        return {**self.slo_views.detail(name, rng, now), "now": now}

    def incidents(self, status: Param = None, model: Param = None, limit: Param = None) -> dict[str, Any]:
        wanted = params.choice(_text(status), "status", INCIDENT_FILTERS)
        n = params.positive_int(_text(limit), "limit", 100)
        conn = self._conn()
        where, args = [], []
        if wanted == "unresolved":
            where.append("status != 'resolved'")
        elif wanted is not None:
            where.append("status = ?")
            args.append(wanted)
        if model is not None:
            where.append("model = ?")
            args.append(str(model))
        sql = (
            "SELECT i.id, i.title, i.model, i.version, i.severity, i.status, i.opened_at, i.acked_at, i.resolved_at,"
            " (SELECT count(*) FROM incident_events e WHERE e.incident_id = i.id) FROM incidents i"
            + (" WHERE " + " AND ".join(where) if where else "")
            + " ORDER BY i.id DESC LIMIT ?"
        )
        keys = (
            "id",
            "title",
            "model",
            "version",
            "severity",
            "status",
            "opened_at",
            "acked_at",
            "resolved_at",
            "events",
        )
        rows = conn.execute(sql, [*args, n]).fetchall()
        return {"now": self.clock.now(), "incidents": [dict(zip(keys, row, strict=True)) for row in rows]}

    def incident(self, incident_id: Param) -> dict[str, Any]:
        number = params.whole_number(incident_id, "id", "an incident number")
        try:
            incident = self.incidents_db.get(number)
        except AisreError:
            newest = [i.id for i in self.incidents_db.list(limit=10)]
            known = f"newest: {', '.join(map(str, newest))}" if newest else "there are none yet"
            raise UnknownItem("id", f"no incident {number}; {known}") from None
        out = incident.to_dict()
        events = out.pop("events")
        out["events"] = len(events)
        out["timeline"] = [
            {"at": e["at"], "kind": e["kind"], "actor": e["actor"], "summary": e["summary"], "data": e["data"]}
            for e in events
        ]
        return {"now": self.clock.now(), **out}

    def registry(self, model: str) -> dict[str, Any]:
        model = self._model(model)
        if model not in self.registry_db.models():  # served from the config only (e.g. an LLM route): no history
            return {"model": model, "now": self.clock.now(), "stable": None, "versions": [], "history": []}
        stable = self.registry_db.stable(model)
        return {
            "model": model,
            "now": self.clock.now(),
            "stable": None if stable is None else stable.version,
            "versions": [
                {
                    "version": v.version,
                    "status": v.status,
                    "trained_at": v.trained_at,
                    "artifact": v.artifact,
                    "endpoint": v.endpoint,
                }
                for v in self.registry_db.list(model)
            ],
            "history": [
                {
                    "at": h.at,
                    "version": h.version,
                    "action": h.action,
                    "from": h.from_status,
                    "to": h.to_status,
                    "actor": h.actor,
                    "reason": h.reason,
                }
                for h in self.registry_db.history(model)
            ],
        }

    def drift_report(
        self, model: str, version: str, since: Param = None, until: Param = None, monitor: Param = None
    ) -> str:
        """The HTML drift report of one stored window (the only read of raw records); without since/until,
        the newest window the monitoring job checked."""
        from aisre.dashboard.drift import drift_report_html  # numpy/scipy only for this page

        model = self._model(model)
        ver = self._version(model, version)
        assert ver is not None
        args = (_text(since), _text(until), _text(monitor))
        return drift_report_html(self.config, self.store, model, ver, *args, self.clock.now())
