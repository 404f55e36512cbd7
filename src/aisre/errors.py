"""One exception tree: every error aisre raises on purpose is an `AisreError`.

Each message says what was wrong and what was expected. The tree, httpx-style:

    AisreError
    ├── ConfigError                 the configuration (aisre.yaml, a CLI option) is invalid
    ├── InvalidParameterError       a library call got a bad argument (also a ValueError)
    │   ├── MethodError             an unknown drift method, threshold, compat mode or correction
    │   └── SchemaError             a JSON schema given for LLM output checks is not valid
    ├── DataError                   input data has the wrong shape, type or content (also a ValueError)
    │   └── TensorError             an Open Inference Protocol tensor does not match its shape/datatype
    ├── InvalidRecordError          a call to record an inference had bad fields (also a ValueError)
    ├── MissingDependencyError      an optional extra is not installed (also an ImportError)
    ├── StoreError                  the store cannot be opened, read or written
    │   ├── UnknownRecordError      a label names record ids the store does not have (also a KeyError)
    │   ├── QueueFullError          the record queue is full and the overflow policy refuses
    │   └── WriterClosedError       a record arrived after the writer was closed
    ├── ApiKeyError                 API keys: unknown, revoked, expired, not found, duplicate name,
    │                               bad options (also a ValueError), a weak or unsafe server secret
    ├── StateUnavailableError       Redis shared state cannot be reached
    ├── RegistryError               the model registry refused a change (also a ValueError)
    │   ├── UnknownVersionError     no such model or version is registered (also a LookupError)
    │   ├── IllegalTransitionError  the version's status cannot go where it was asked to
    │   └── PromotionRefusedError   an SLO freeze or the offline-evaluation gate says no
    ├── IncidentError               an incident change makes no sense (already resolved, ...)
    │   └── UnknownIncidentError    no incident has that id (also a LookupError)
    ├── BudgetExceededError         (aisre.gateway.cost) a spend budget is used up
    ├── GatewayError                an error the gateway answers to its client, with an HTTP status
    ├── ClientDisconnected          the gateway's client closed its connection before the answer
    └── UpstreamError               a model replica could not be reached or answered badly
        ├── ConnectFailed           refused, unreachable, or the connect timeout passed
        ├── ResponseTimeout         the response did not complete in time
        ├── ConnectionBroken        the connection closed or sent garbage mid-response
        └── ResponseTooLarge        the response body is larger than the client accepts

Catch `AisreError` for "anything aisre refused"; catch `ValueError` / `ImportError` /
`KeyError` where the standard meaning is all you need.
"""

from __future__ import annotations

import re


class AisreError(Exception):
    """Base class of every error aisre raises on purpose."""


class ConfigError(AisreError):
    """The configuration is invalid; `problems` lists each bad key path and why."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = problems
        self.source = source
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid {source}:\n{lines}")


class InvalidParameterError(AisreError, ValueError):
    """A library call got an argument outside what it accepts; the message names the parameter."""


class MethodError(InvalidParameterError):
    """A drift method name, threshold, compat mode or correction is not valid."""


class SchemaError(InvalidParameterError):
    """A JSON schema given to the output checks is itself not a valid schema."""


class DataError(AisreError, ValueError):
    """Input data has the wrong shape, type or content; the message names the column."""


class TensorError(DataError):
    """An Open Inference Protocol tensor does not match its declared shape or datatype."""


class InvalidRecordError(AisreError, ValueError):
    """A call to record an inference had bad arguments; the message names each field."""


class MissingDependencyError(AisreError, ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    def __init__(self, package: str, extra: str, feature: str) -> None:
        self.package = package
        self.extra = extra
        super().__init__(
            f"{feature} needs the optional package {package!r}, which is not installed; "
            f"install it with: pip install 'aisre[{extra}]'",
            name=package,
        )


def require(module: str, extra: str, feature: str, package: str | None = None) -> object:
    """Import an optional module, or raise `MissingDependencyError` naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(package or module.split(".")[0], extra, feature) from exc


class StoreError(AisreError):
    """The store cannot be opened, read or written."""


class UnknownRecordError(StoreError, KeyError):
    """A label (or lookup) names inference record ids the store does not have."""

    def __init__(self, record_ids: list[str]) -> None:
        self.record_ids = record_ids
        shown = ", ".join(repr(i) for i in record_ids[:5])
        more = f" and {len(record_ids) - 5} more" if len(record_ids) > 5 else ""
        super().__init__(
            f"no inference record with id {shown}{more}; a label must name the id of a "
            "recorded inference (the `id` returned by Monitor.record)"
        )

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return self.args[0]


class QueueFullError(StoreError):
    """The record queue is full and the overflow policy is `raise` (or `block` timed out)."""


class WriterClosedError(StoreError):
    """A record was submitted after the writer was closed."""


def _iso_time(ts: float) -> str:  # as aisre.store.codec.iso_time; errors.py imports nothing of aisre
    import datetime as dt

    stamp = dt.datetime.fromtimestamp(ts, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


_KEY_ID = re.compile(r"key_[0-9a-f]{12}")  # the id part of an API key, as aisre.store.keys makes them


class ApiKeyError(AisreError):
    """Base class of API key errors."""


class UnknownKeyError(ApiKeyError):
    """No such id, wrong secret or malformed secret: one message for all three, so it tells a client nothing."""

    def __init__(self) -> None:
        super().__init__("invalid API key")


class RevokedKeyError(ApiKeyError):
    """The secret is right but the key was revoked."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"API key {key_id} has been revoked")


class ExpiredKeyError(ApiKeyError):
    """The secret is right but the key's expiry time has passed."""

    def __init__(self, key_id: str, expires_at: float) -> None:
        self.key_id = key_id
        self.expires_at = expires_at
        super().__init__(f"API key {key_id} expired at {_iso_time(expires_at)}")


class KeyNotFoundError(ApiKeyError, LookupError):
    """An admin lookup (`revoke`) names no key."""

    def __init__(self, id_or_name: str) -> None:
        self.id_or_name = id_or_name
        what = "API key with id" if _KEY_ID.fullmatch(id_or_name) else "active API key named"
        super().__init__(f"no {what} {id_or_name!r}")

    def __str__(self) -> str:  # LookupError would otherwise quote the message
        return self.args[0]


class DuplicateKeyNameError(ApiKeyError):
    """An active (not revoked) key already has this name."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"an active API key is already named {name!r}; revoke it or choose another name")


class InvalidKeyOptionError(ApiKeyError, ValueError):
    """A `create` argument is out of range; `field` names it, the message says what was expected."""

    def __init__(self, field: str, expected: str, got: object) -> None:
        self.field, self.expected, self.got = field, expected, got
        super().__init__(f"{field}: expected {expected}, got {got!r}")


class KeySecretError(ApiKeyError):
    """The server secret (environment variable or secret file) is missing, weak or unsafe."""


class StateUnavailableError(AisreError):
    """Redis shared state could not be asked (down, timed out, or in back-off after a failure)."""


class GatewayError(AisreError):
    """An error the gateway answers to its client: an HTTP status, a message, and optionally the
    request field (`param`), a machine-readable `code` and response headers. Rendered in each
    protocol's shape by `aisre.gateway.errors`."""

    def __init__(
        self,
        status: int,
        message: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


class ClientDisconnected(AisreError):
    """The gateway's client closed its connection before the answer was complete.

    Nothing can be sent any more; the work done for it upstream is abandoned and the call is
    recorded with status `cancelled` (not an error: the model did nothing wrong)."""


class UpstreamError(AisreError):
    """A model replica could not be reached, or its answer could not be read."""


class ConnectFailed(UpstreamError):
    """No connection could be made (refused, unreachable, or the connect timeout passed)."""


class ResponseTimeout(UpstreamError):
    """The response did not complete within the timeout."""


class ConnectionBroken(UpstreamError):
    """The connection closed or sent garbage before the response was complete."""


class ResponseTooLarge(ConnectionBroken):
    """The response body is larger than the client's limit (the connection is dropped)."""


class RegistryError(AisreError, ValueError):
    """The model registry refused a change: a bad argument, a duplicate version, no previous stable."""


class UnknownVersionError(RegistryError, LookupError):
    """No such model, or no such version of it, is registered."""

    def __str__(self) -> str:  # LookupError would otherwise quote the message
        return self.args[0]


class IllegalTransitionError(RegistryError):
    """A version cannot move from its status to the one asked for; names both and the allowed ones."""

    def __init__(self, model: str, version: str, current: str, target: str, allowed: tuple[str, ...], hint: str = ""):
        self.model, self.version, self.current, self.target, self.allowed = model, version, current, target, allowed
        can = ", ".join(allowed) if allowed else "nothing by promotion"
        super().__init__(
            f"{model} {version} is {current}; it cannot go to {target} (from {current} it can go to: {can})"
            + (f"; {hint}" if hint else "")
        )


class PromotionRefusedError(RegistryError):
    """A legal promotion refused by policy: an SLO budget freeze or the offline-evaluation gate."""

    def __init__(self, message: str, reasons: list[str]):
        self.reasons = reasons
        super().__init__(message)


class IncidentError(AisreError, ValueError):
    """An incident change that makes no sense: acknowledging a resolved one, a bad severity, ..."""


class UnknownIncidentError(IncidentError, LookupError):
    """No incident has that id."""

    def __str__(self) -> str:
        return self.args[0]
