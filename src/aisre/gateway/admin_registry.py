"""The admin API's registry and incident routes (mounted by `AdminApi`, behind the admin key).

    GET  /admin/models                                    registered and served models: versions, stable, routing
    GET  /admin/models/{model}                            one model, with its history
    POST /admin/models/{model}/versions/{version}/promote {"to": "canary", "reason": "..."}
    POST /admin/models/{model}/rollback                   {"reason": "..."}   (body optional)
    GET  /admin/incidents?status=open&model=fraud&limit=50
    GET  /admin/incidents/{id}                            with its timeline
    POST /admin/incidents/{id}/ack | /resolve             {"note": "..."}     (body optional)

A promote or rollback of a served model moves its routing at once (`RegistryFollower.apply`). Errors: 400 for a
bad field (named in `param`), 404 for an unknown model, version or incident, 409 when the registry refuses
(an illegal transition, an SLO freeze, the evaluation gate, nothing to roll back to) or an incident is already
in that state.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from aisre.errors import (
    IllegalTransitionError,
    IncidentError,
    PromotionRefusedError,
    RegistryError,
    UnknownIncidentError,
    UnknownVersionError,
)
from aisre.gateway.errors import GatewayError
from aisre.gateway.registry_sync import RegistryFollower
from aisre.gateway.requests import parse_json_object, read_body
from aisre.respond.incidents import INCIDENT_STATUSES, Incidents
from aisre.respond.promotion import configured_registry, evaluation_summary
from aisre.respond.registry import STATUSES, Registry
from aisre.store.postgres import PostgresStore
from aisre.store.sqlite import SQLiteStore

ACTOR = "api:admin"
_MAX_TEXT = 2000


class RegistryAdmin:
    """Registry and incident handlers over the gateway's store; `follower` keeps routing in step."""

    def __init__(self, gateway: Any) -> None:
        self.gw = gateway
        store = gateway.recorder.store
        self.registry: Registry | None = None
        self.incidents: Incidents | None = None
        self.follower: RegistryFollower | None = None
        if isinstance(store, (SQLiteStore, PostgresStore)):  # a JSONL sink or a custom Store keeps no registry
            self.registry = configured_registry(gateway.config, store, gateway.clock)
            self.incidents = Incidents(store, clock=gateway.clock)
            self.follower = RegistryFollower(gateway, self.registry)

    def routes(self, guard: Any) -> list[Route]:
        return [
            Route("/admin/models", guard(self.list_models), methods=["GET"]),
            Route("/admin/models/{model}", guard(self.get_model), methods=["GET"]),
            Route("/admin/models/{model}/versions/{version}/promote", guard(self.promote), methods=["POST"]),
            Route("/admin/models/{model}/rollback", guard(self.rollback), methods=["POST"]),
            Route("/admin/incidents", guard(self.list_incidents), methods=["GET"]),
            Route("/admin/incidents/{id}", guard(self.get_incident), methods=["GET"]),
            Route("/admin/incidents/{id}/ack", guard(self.ack), methods=["POST"]),
            Route("/admin/incidents/{id}/resolve", guard(self.resolve), methods=["POST"]),
        ]

    # -- models -------------------------------------------------------------------------
    async def list_models(self, request: Request) -> Response:
        registry = self._registry()
        versions = await asyncio.to_thread(registry.list)
        names = sorted({v.model for v in versions} | set(self.gw.routing.models))
        return _json({"models": [self._model(n, [v for v in versions if v.model == n]) for n in names]})

    async def get_model(self, request: Request) -> Response:
        registry = self._registry()
        model = request.path_params["model"]
        versions = await asyncio.to_thread(registry.list, model)
        if not versions and model not in self.gw.routing.models:
            served = ", ".join(sorted(self.gw.routing.models)) or "none"
            raise GatewayError(404, f"model '{model}' is neither registered nor served (served: {served})")
        body = self._model(model, versions)
        for entry in body["versions"]:
            entry["evaluation"] = await asyncio.to_thread(evaluation_summary, registry.store, model, entry["version"])
        body["history"] = [h.to_dict() for h in await asyncio.to_thread(registry.tables.read().history, model)]
        return _json(body)

    async def promote(self, request: Request) -> Response:
        registry = self._registry()
        model, version = request.path_params["model"], request.path_params["version"]
        payload = await _payload(request, {"to", "reason"})
        to = payload.get("to")
        if not isinstance(to, str) or to not in STATUSES:
            raise GatewayError(400, f"field 'to' must be one of {', '.join(STATUSES)}; got {to!r}", param="to")
        reason = _text(payload, "reason")
        try:
            entry = await asyncio.to_thread(registry.promote, model, version, to, actor=ACTOR, reason=reason)
        except RegistryError as exc:
            raise _registry_error(exc) from None
        return _json({"model": model, "version": version, "status": entry.status, **await self._routed(model)})

    async def rollback(self, request: Request) -> Response:
        registry = self._registry()
        model = request.path_params["model"]
        reason = _text(await _payload(request, {"reason"}), "reason")
        try:
            result = await asyncio.to_thread(registry.rollback, model, actor=ACTOR, reason=reason)
        except RegistryError as exc:
            raise _registry_error(exc) from None
        return _json({**result.to_dict(), **await self._routed(model)})

    # -- incidents ----------------------------------------------------------------------
    async def list_incidents(self, request: Request) -> Response:
        incidents = self._incidents()
        query = request.query_params
        unknown = sorted(set(query) - {"status", "model", "limit"})
        if unknown:
            raise GatewayError(
                400, f"unknown query parameter '{unknown[0]}'; accepted: status, model, limit", param=unknown[0]
            )
        status = query.get("status")
        if status is not None and status not in INCIDENT_STATUSES:
            allowed = ", ".join(INCIDENT_STATUSES)
            raise GatewayError(400, f"query 'status' must be one of {allowed}; got {status!r}", param="status")
        limit_text = query.get("limit", "100")
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 10_000:
            raise GatewayError(
                400, f"query 'limit' must be a whole number from 1 to 10000; got {limit_text!r}", param="limit"
            )
        found = await asyncio.to_thread(incidents.list, status=status, model=query.get("model"), limit=int(limit_text))
        return _json({"incidents": [i.to_dict() for i in found]})

    async def get_incident(self, request: Request) -> Response:
        incidents = self._incidents()
        number = _incident_id(request)
        try:
            return _json((await asyncio.to_thread(incidents.get, number)).to_dict())
        except UnknownIncidentError as exc:
            raise GatewayError(404, str(exc), param="id") from None

    async def ack(self, request: Request) -> Response:
        return await self._move(request, "ack")

    async def resolve(self, request: Request) -> Response:
        return await self._move(request, "resolve")

    async def _move(self, request: Request, action: str) -> Response:
        incidents = self._incidents()
        number = _incident_id(request)
        note = _text(await _payload(request, {"note"}), "note")
        method = incidents.ack if action == "ack" else incidents.resolve
        try:
            incident = await asyncio.to_thread(method, number, actor=ACTOR, note=note)
        except UnknownIncidentError as exc:
            raise GatewayError(404, str(exc), param="id") from None
        except IncidentError as exc:
            raise GatewayError(409, str(exc), param="id", code="incident_state") from None
        return _json(incident.to_dict())

    # -- helpers ------------------------------------------------------------------------
    def _registry(self) -> Registry:
        if self.registry is None:
            raise GatewayError(400, "the model registry needs a SQLite store; set store: sqlite:///PATH in aisre.yaml")
        return self.registry

    def _incidents(self) -> Incidents:
        if self.incidents is None:
            raise GatewayError(400, "incidents need a SQLite store; set store: sqlite:///PATH in aisre.yaml")
        return self.incidents

    def _model(self, name: str, versions: list[Any]) -> dict[str, Any]:
        stable = next((v.version for v in versions if v.status == "stable"), None)
        return {
            "model": name,
            "stable": stable,
            "served": name in self.gw.routing.models,
            "versions": [v.to_dict() for v in versions],
            "routing": self._routing(name),
        }

    def _routing(self, model: str) -> dict[str, Any] | None:
        route = self.gw.routing.models.get(model)
        if route is None:
            return None
        return {"weights": route.weights, "shadow": route.shadow_version, "open_breakers": sorted(route.open_breakers)}

    async def _routed(self, model: str) -> dict[str, Any]:
        """Apply the registry's plan to a served model now; its routing and the stable version after it."""
        if self.follower is not None and model in self.gw.routing.models:
            await self.follower.apply(model, force=True)
        stable = await asyncio.to_thread(self._registry().stable, model)
        return {"stable": stable.version if stable else None, "routing": self._routing(model)}


async def _payload(request: Request, fields: set[str]) -> dict[str, Any]:
    """The JSON body (an empty body is {}), refusing fields the route does not take."""
    body = await read_body(request, 64 * 1024)
    payload = parse_json_object(body) if body.strip() else {}
    unknown = sorted(set(payload) - fields)
    if unknown:
        accepted = ", ".join(sorted(fields))
        raise GatewayError(400, f"unknown field '{unknown[0]}'; this route accepts: {accepted}", param=unknown[0])
    return payload


def _text(payload: dict[str, Any], field: str) -> str | None:
    value = payload.get(field)
    if value is not None and (not isinstance(value, str) or not value.strip() or len(value) > _MAX_TEXT):
        raise GatewayError(
            400, f"field '{field}' must be a non-empty string of at most {_MAX_TEXT} characters", param=field
        )
    return value


def _incident_id(request: Request) -> int:
    text = request.path_params["id"]
    if not text.isdigit():
        raise GatewayError(400, f"incident id must be a number like 12; got {text!r}", param="id")
    return int(text)


def _registry_error(exc: RegistryError) -> GatewayError:
    if isinstance(exc, UnknownVersionError):
        return GatewayError(404, str(exc), param="version" if "has no version" in str(exc) else "model")
    if isinstance(exc, PromotionRefusedError):
        return GatewayError(409, str(exc), param="to", code="promotion_refused")
    if isinstance(exc, IllegalTransitionError):
        return GatewayError(409, str(exc), param="to", code="illegal_transition")
    return GatewayError(409, str(exc), code="registry_conflict")


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")
