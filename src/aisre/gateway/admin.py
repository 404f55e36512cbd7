"""The admin API: route weights, breaker states, API keys, the model registry and incidents, guarded by the admin key.

    GET    /admin/routes                                  every model's weights and open breakers
    PUT    /admin/models/{model}/route        {"weights": {"v1": 90, "v2": 10}}
    PUT    /admin/models/{model}/versions/{version}/breaker   {"open": true}
    GET    /admin/keys                                    keys (never secrets)
    POST   /admin/keys        {"name": ..., "models": [...], "rpm": ..., "expires": "30d", ...}   -> the secret, once
    DELETE /admin/keys/{key}                              revoke (every process refuses it at once)

The registry and incident routes (GET /admin/models, promote, rollback, /admin/incidents ...) are listed in
`aisre.gateway.admin_registry`. `start()` and `stop()` run the registry follower
(`aisre.gateway.registry_sync`), which applies registry changes made outside this process to the routing.

Without `auth.admin_key` the admin API answers 403 and says how to enable it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aisre.errors import StoreError
from aisre.gateway.access import CHALLENGE, bearer_token, token_matches
from aisre.gateway.admin_registry import RegistryAdmin
from aisre.gateway.core import Gateway
from aisre.gateway.errors import GatewayError, openai_error
from aisre.gateway.requests import read_json
from aisre.store.expiry import parse_expiry
from aisre.store.keys import ApiKeyError, InvalidKeyOptionError


class AdminApi:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        key = gateway.config.auth.admin_key
        self._admin = key.strip().encode() if key and key.strip() else None
        self.registry = RegistryAdmin(gateway)

    async def start(self) -> None:
        """Follow the model registry (apply it now, then poll its revision); call after `Gateway.start`."""
        if self.registry.follower is not None:
            await self.registry.follower.start()

    async def stop(self) -> None:
        if self.registry.follower is not None:
            await self.registry.follower.stop()

    def routes(self) -> list[Route]:
        return [
            Route("/admin/routes", self._guard(self.list_routes), methods=["GET"]),
            Route("/admin/models/{model}/route", self._guard(self.set_route), methods=["PUT"]),
            Route("/admin/models/{model}/versions/{version}/breaker", self._guard(self.set_breaker), methods=["PUT"]),
            Route("/admin/keys", self._guard(self.list_keys), methods=["GET"]),
            Route("/admin/keys", self._guard(self.create_key), methods=["POST"]),
            Route("/admin/keys/{key}", self._guard(self.revoke_key), methods=["DELETE"]),
            *self.registry.routes(self._guard),
        ]

    def _guard(self, handler: Any) -> Any:
        async def guarded(request: Request) -> Response:
            if self._admin is None:
                return openai_error(
                    GatewayError(
                        403,
                        "the admin API is off; set auth.admin_key (e.g. admin_key: ${AISRE_ADMIN_KEY}) to enable it",
                    )
                )
            if not token_matches(bearer_token(request.headers), [self._admin]):
                return openai_error(
                    GatewayError(
                        401,
                        "admin API: missing or wrong admin key (Authorization: Bearer <admin key>)",
                        headers=dict(CHALLENGE),
                    )
                )
            try:
                return await handler(request)
            except GatewayError as err:
                return openai_error(err)
            except StoreError as err:  # the database is down or unreachable (PostgreSQL restart): retry later
                return openai_error(
                    GatewayError(503, f"admin API: the store is unavailable: {err}", code="store_unavailable")
                )

        return guarded

    def _model(self, request: Request) -> str:
        model = request.path_params["model"]
        if model not in self.gw.routing.models:
            raise GatewayError(404, f"model '{model}' does not exist; models: {sorted(self.gw.routing.models)}")
        return model

    async def list_routes(self, request: Request) -> Response:
        return JSONResponse(
            {
                name: {
                    "weights": route.weights,
                    "open_breakers": sorted(route.open_breakers),
                    "shadow": route.shadow_version,
                    "fallback": route.fallback,
                }
                for name, route in self.gw.routing.models.items()
            }
        )

    async def set_route(self, request: Request) -> Response:
        model = self._model(request)
        payload, _ = await read_json(request, 64 * 1024)
        weights = payload.get("weights")
        versions = self.gw.config.models[model].versions
        if not isinstance(weights, dict) or not weights:
            raise GatewayError(400, "field 'weights' must be an object of version -> weight", param="weights")
        unknown = [v for v in weights if v not in versions]
        if unknown:
            raise GatewayError(400, f"weights name unknown versions {unknown}; versions: {list(versions)}")
        if not all(isinstance(w, int | float) and not isinstance(w, bool) and w >= 0 for w in weights.values()):
            raise GatewayError(400, "weights must be numbers >= 0", param="weights")
        if sum(weights.values()) <= 0:
            raise GatewayError(400, "weights must not all be 0", param="weights")
        await self.gw.set_weights(model, {v: float(w) for v, w in weights.items()})
        return JSONResponse({"model": model, "weights": self.gw.routing.models[model].weights})

    async def set_breaker(self, request: Request) -> Response:
        model = self._model(request)
        version = request.path_params["version"]
        if version not in self.gw.config.models[model].versions:
            raise GatewayError(404, f"version '{version}' of '{model}' does not exist")
        payload, _ = await read_json(request, 64 * 1024)
        if not isinstance(payload.get("open"), bool):
            raise GatewayError(400, "field 'open' must be true or false", param="open")
        await self.gw.set_breaker(model, version, payload["open"])
        return JSONResponse({"model": model, "version": version, "open": payload["open"]})

    async def list_keys(self, request: Request) -> Response:
        keys = self.gw.key_store()
        return Response(orjson.dumps([dataclasses.asdict(k) for k in keys.list()]), media_type="application/json")

    async def create_key(self, request: Request) -> Response:
        """The same options as `aisre keys create`, checked the same way (one expiry parser, models
        checked against the config); every error names its field."""
        keys = self.gw.key_store()
        payload, _ = await read_json(request, 64 * 1024)
        unknown = sorted(set(payload) - _KEY_FIELDS)
        if unknown:
            raise GatewayError(
                400,
                f"unknown field '{unknown[0]}'; POST /admin/keys accepts: {', '.join(sorted(_KEY_FIELDS))}",
                param=unknown[0],
            )
        name = payload.pop("name", None)
        if not isinstance(name, str) or not name:
            raise GatewayError(400, "field 'name' must be a non-empty string", param="name")
        if "expires" in payload and "expires_at" in payload:
            raise GatewayError(400, "give one of 'expires' and 'expires_at' (the same thing)", param="expires")
        expires_field = "expires_at" if "expires_at" in payload else "expires"
        expires = payload.pop(expires_field, None)
        try:
            if expires is not None:
                payload["expires_at"] = parse_expiry(expires, self.gw.clock.now(), expires_field)
            record, secret = keys.create(name, **payload, known_models=set(self.gw.config.models))
        except InvalidKeyOptionError as exc:
            message = f"field '{exc.field}': expected {exc.expected}, got {exc.got!r}"
            raise GatewayError(400, message, param=exc.field) from None
        except ApiKeyError as exc:
            raise GatewayError(400, str(exc)) from None
        return Response(
            orjson.dumps({**dataclasses.asdict(record), "secret": secret}), 201, media_type="application/json"
        )

    async def revoke_key(self, request: Request) -> Response:
        key = request.path_params["key"]
        try:
            record = self.gw.key_store().revoke(key)
        except (LookupError, ApiKeyError) as exc:
            raise GatewayError(404, str(exc)) from None
        return _key_json(record)


_KEY_FIELDS = {"name", "models", "rpm", "tpm", "max_concurrent", "budget_usd", "budget_period", "expires", "expires_at"}


def _key_json(record: Any) -> Response:
    return Response(orjson.dumps(dataclasses.asdict(record)), media_type="application/json")
