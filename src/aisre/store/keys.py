"""API keys in the inference log's store: create, list, revoke, and verify a secret (keyed hash, constant time).

A secret reads `sk-aisre-<id>-<43 urlsafe chars>`: the id inside it finds the row without a scan. Only
HMAC-SHA256(server secret, secret) is stored. The server secret comes from `$AISRE_KEY_SECRET` (at least 32
characters), or else, on SQLite, from `<db>.key-secret` next to the database (64 hex chars = 32 random bytes,
mode 0600, created on first use), so every process on one host agrees; on PostgreSQL (many hosts, no shared
file) the variable is required. The table lives in a SQLite file or a PostgreSQL database: the SQL dialect is
the one seam (store/key_tables.py); every rule is here, once. `verify` reads the key's row on every call, so a
revocation made by any process is refused by every other one at once.
"""

from __future__ import annotations

import dataclasses
import hmac
import math
import os
import re
import secrets
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Literal

import orjson

from aisre.clock import SYSTEM_CLOCK, Clock
from aisre.errors import (  # the key errors live in the one tree; raised (and re-exported) here
    ApiKeyError,
    DuplicateKeyNameError,
    ExpiredKeyError,
    InvalidKeyOptionError,
    KeyNotFoundError,
    KeySecretError,
    RevokedKeyError,
    UnknownKeyError,
)
from aisre.store.codec import iso_time
from aisre.store.key_tables import key_table
from aisre.store.postgres import PostgresStore
from aisre.store.sqlite import SQLiteStore

__all__ = [
    "ApiKeyError",
    "BUDGET_PERIODS",
    "DuplicateKeyNameError",
    "ExpiredKeyError",
    "InvalidKeyOptionError",
    "KeyNotFoundError",
    "KeyRecord",
    "KeySecretError",
    "KeyStore",
    "MAX_RATE",
    "MIN_SERVER_SECRET_CHARS",
    "RevokedKeyError",
    "SECRET_ENV",
    "SECRET_PREFIX",
    "UnknownKeyError",
    "check_server_secret",
    "read_or_create_secret_file",
]

#: The largest rate (per minute) or concurrency a key or a model may be given: the limiter's
#: exact GCRA keeps rate x 60e6 µs below 2**53, so Redis's Lua (doubles) counts it exactly.
MAX_RATE = 100_000_000

SECRET_ENV = "AISRE_KEY_SECRET"
SECRET_PREFIX = "sk-aisre-"
BUDGET_PERIODS = ("daily", "monthly")
BudgetPeriod = Literal["daily", "monthly"]
MIN_SERVER_SECRET_CHARS = 32
_ID = re.compile(r"key_[0-9a-f]{12}")
_SECRET = re.compile(r"sk-aisre-(key_[0-9a-f]{12})-[A-Za-z0-9_-]{43}")
_SECRET_CHARS = len(SECRET_PREFIX) + 16 + 1 + 43
_MAX_NAME_CHARS = 100
_CACHE_ENTRIES = 4096
_COLUMNS = (
    "id, name, hash, models, rpm, tpm, max_concurrent, budget_usd, budget_period, expires_at, created_at, revoked_at"
)
_SELECT_BY_ID = f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?"
# Compared against when the id is unknown, so "no such id" costs the same as "wrong secret".
_NO_HASH = "0" * 64


@dataclasses.dataclass(frozen=True, slots=True)
class KeyRecord:
    """One API key as stored, without its secret or hash. Times are epoch seconds; `models` None = all."""

    id: str
    name: str
    models: tuple[str, ...] | None
    rpm: int | None
    tpm: int | None
    max_concurrent: int | None
    budget_usd: float | None
    budget_period: BudgetPeriod | None
    expires_at: float | None
    created_at: float
    revoked_at: float | None

    def allows(self, model: str) -> bool:
        """Whether this key may call `model`."""
        return self.models is None or model in self.models

    def status(self, now: float) -> str:
        """'revoked', 'expired' or 'active' at time `now` (epoch seconds)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def _record(row: tuple) -> KeyRecord:
    key_id, name, _hash, models, *rest = row
    return KeyRecord(key_id, name, None if models is None else tuple(orjson.loads(models)), *rest)


class KeyStore:
    """API keys in the `api_keys` table of a store; safe from many threads, processes and (PostgreSQL) hosts.

    `store` is a `SQLiteStore` or a `PostgresStore` (its per-thread connections are shared), or a path, a
    `sqlite:///` or a `postgresql://` URL.
    `server_secret` overrides the environment variable and the secret file (for tests and embedding).
    """

    def __init__(
        self,
        store: SQLiteStore | PostgresStore | str | os.PathLike[str],
        *,
        clock: Clock = SYSTEM_CLOCK,
        secret_env: str = SECRET_ENV,
        server_secret: str | bytes | None = None,
    ) -> None:
        self._owns_store = not isinstance(store, SQLiteStore | PostgresStore)
        if isinstance(store, str) and store.startswith(("postgresql://", "postgres://")):
            store = PostgresStore(store)
        elif isinstance(store, str):
            store = store.removeprefix("sqlite:///")
        self.store = store if isinstance(store, SQLiteStore | PostgresStore) else SQLiteStore(store)
        self.clock = clock
        self.secret_env = secret_env
        # Per process: HMAC of secrets that verified, and records by their row (the row is still read
        # on every call, so revocation and expiry are never cached).
        self._digests: dict[str, str] = {}
        self._records: dict[tuple, KeyRecord] = {}
        self._server_secret_given = server_secret is not None
        self._server_key = None if server_secret is None else check_server_secret(server_secret, "server_secret")
        self._table = key_table(self.store)

    @property
    def secret_file(self) -> Path | None:
        """Where the server secret lives when the environment variable is unset (None on PostgreSQL: required)."""
        return self._table.secret_file

    # -- the hot path ------------------------------------------------------------------
    def verify(self, secret: str) -> KeyRecord:
        """The key a client's secret belongs to; raises Unknown/Revoked/ExpiredKeyError (safe to show)."""
        match = _SECRET.fullmatch(secret) if isinstance(secret, str) and len(secret) == _SECRET_CHARS else None
        if match is None:
            raise UnknownKeyError()
        row = self._table.one(_SELECT_BY_ID, (match[1],))
        digest = self._digests.get(secret) or self._digest(secret)
        # Compare even when the id is unknown, so "no such id" costs about as much as "wrong secret".
        if not hmac.compare_digest(digest, _NO_HASH if row is None else row[2]) or row is None:
            raise UnknownKeyError()
        record = self._records.get(row)
        if record is None:
            if len(self._records) >= _CACHE_ENTRIES:
                self._records.clear()
                self._digests.clear()
            # Only secrets that matched are remembered, so clients cannot grow the caches.
            record = self._records[row] = _record(row)
            self._digests[secret] = digest
        if record.revoked_at is not None:
            raise RevokedKeyError(record.id)
        if record.expires_at is not None and record.expires_at <= self.clock.now():
            raise ExpiredKeyError(record.id, record.expires_at)
        return record

    def _digest(self, secret: str) -> str:
        key = self._server_key if self._server_key is not None else self._load_server_key()
        return hmac.digest(key, secret.encode(), "sha256").hex()

    # -- administration ----------------------------------------------------------------
    def create(
        self,
        name: str,
        models: Iterable[str] | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        max_concurrent: int | None = None,
        budget_usd: float | None = None,
        budget_period: str | None = None,
        expires_at: float | None = None,
        known_models: Collection[str] | None = None,
    ) -> tuple[KeyRecord, str]:
        """A new key and its secret. The secret is returned once and never stored: hand it over now.

        With `known_models` (the models a gateway's config serves), a model outside it is refused, so a typo
        fails here instead of as a 403 on the key's first request.
        """
        now = self.clock.now()
        checked = _checked_models(models, known_models)
        _check_name(name)
        for field, value in (("rpm", rpm), ("tpm", tpm), ("max_concurrent", max_concurrent)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RATE
            ):
                raise InvalidKeyOptionError(field, f"a whole number from 1 to {MAX_RATE:,}", value)
        if budget_usd is not None and (
            isinstance(budget_usd, bool)
            or not isinstance(budget_usd, int | float)
            or not math.isfinite(budget_usd)
            or budget_usd <= 0
        ):
            raise InvalidKeyOptionError("budget_usd", "a number of US dollars > 0", budget_usd)
        if budget_period is not None and budget_period not in BUDGET_PERIODS:
            raise InvalidKeyOptionError("budget_period", "one of " + ", ".join(BUDGET_PERIODS), budget_period)
        if budget_period is not None and budget_usd is None:
            raise InvalidKeyOptionError("budget_period", "a budget_usd to reset", budget_period)
        if expires_at is not None and (
            isinstance(expires_at, bool)
            or not isinstance(expires_at, int | float)
            or not math.isfinite(expires_at)
            or expires_at <= now
        ):
            raise InvalidKeyOptionError("expires_at", f"a time in the future (now is {iso_time(now)})", expires_at)
        key = self._server_key if self._server_key is not None else self._load_server_key()
        insert = f"INSERT INTO api_keys ({_COLUMNS}) VALUES ({', '.join('?' * len(_COLUMNS.split(',')))})"
        while True:
            key_id = "key_" + secrets.token_hex(6)
            secret = f"{SECRET_PREFIX}{key_id}-{secrets.token_urlsafe(32)}"
            digest = hmac.digest(key, secret.encode(), "sha256").hex()
            row = (
                key_id,
                name,
                digest,
                None if checked is None else orjson.dumps(checked).decode(),
                rpm,
                tpm,
                max_concurrent,
                None if budget_usd is None else float(budget_usd),
                budget_period,
                None if expires_at is None else float(expires_at),
                now,
                None,
            )
            clash = self._table.insert(insert, row)
            if clash == "name":
                raise DuplicateKeyNameError(name)
            if clash == "id":
                continue  # a 48-bit id collided: draw another
            return _record(row), secret

    def get(self, key_id: str) -> KeyRecord | None:
        """The key with this id (revoked or not), or None."""
        row = self._table.one(_SELECT_BY_ID, (key_id,))
        return None if row is None else _record(row)

    def list(self, include_revoked: bool = False) -> list[KeyRecord]:
        """Keys, oldest first; expired keys are listed (their status says so), revoked ones only if asked."""
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        rows = self._table.rows(f"SELECT {_COLUMNS} FROM api_keys{where} ORDER BY created_at, id")
        return [_record(row) for row in rows]

    def revoke(self, id_or_name: str) -> KeyRecord:
        """Revoke a key by id, or the active key of that name; returns it. Revoking twice keeps the first time."""
        with self._table.transaction() as execute:
            if _ID.fullmatch(id_or_name):
                execute(
                    "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                    (self.clock.now(), id_or_name),
                )
                row = execute(_SELECT_BY_ID, (id_or_name,)).fetchone()
            else:
                row = execute(
                    f"SELECT {_COLUMNS} FROM api_keys WHERE name = ? AND revoked_at IS NULL", (id_or_name,)
                ).fetchone()
                if row is not None:
                    execute(
                        "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                        (self.clock.now(), row[0]),
                    )
                    row = execute(_SELECT_BY_ID, (row[0],)).fetchone()
        if row is None:
            raise KeyNotFoundError(id_or_name)
        return _record(row)

    def close(self) -> None:
        """Close the store if this KeyStore opened it."""
        if self._owns_store:
            self.store.close()

    # -- the server secret -------------------------------------------------------------
    def check_server_secret(self) -> str:
        """Load the server secret now (creating the secret file if needed) and return its source, so a
        missing or weak secret stops a gateway at start-up instead of failing requests. Raises KeySecretError."""
        if self._server_key is None:
            self._load_server_key()
        return self.server_secret_source

    @property
    def server_secret_source(self) -> str:
        """Where the server secret comes from: the environment variable, the secret file, or the constructor."""
        if self._server_key is not None and self._server_secret_given:
            return "the server_secret argument"
        if self.secret_env in os.environ or self.secret_file is None:
            return f"${self.secret_env}"
        return str(self.secret_file)

    def _load_server_key(self) -> bytes:
        value = os.environ.get(self.secret_env)
        if value is not None:
            self._server_key = check_server_secret(value, f"${self.secret_env}")
        elif self.secret_file is None:
            raise KeySecretError(postgres_secret_missing(self.secret_env))
        else:
            self._server_key = check_server_secret(read_or_create_secret_file(self.secret_file), str(self.secret_file))
        return self._server_key


def postgres_secret_missing(env: str) -> str:
    """Why keys on a PostgreSQL store need the environment variable (the config check says the same)."""
    return (
        f"${env} is not set: API keys on a PostgreSQL store need the server secret in ${env} (at least "
        "32 characters, the same on every gateway host; there is no key-secret file beside a database server)"
    )


def _check_name(name: object) -> None:
    if not isinstance(name, str) or not name or name != name.strip() or len(name) > _MAX_NAME_CHARS:
        raise InvalidKeyOptionError("name", f"1 to {_MAX_NAME_CHARS} characters without surrounding spaces", name)
    if not name.isprintable():
        raise InvalidKeyOptionError("name", "printable characters", name)
    if _ID.fullmatch(name):
        raise InvalidKeyOptionError("name", "a name that does not look like a key id (key_ + 12 hex)", name)


def _checked_models(models: Iterable[str] | None, known: Collection[str] | None) -> list[str] | None:
    if models is None:
        return None
    if isinstance(models, str) or not isinstance(models, Iterable):
        raise InvalidKeyOptionError("models", "a list of model names", models)
    out = list(dict.fromkeys(models))
    if not out or any(not isinstance(m, str) or not m.strip() or m != m.strip() or "," in m for m in out):
        raise InvalidKeyOptionError("models", "one or more model names without commas (None allows every model)", out)
    unknown = [m for m in out if known is not None and m not in known]
    if unknown:
        served = ", ".join(sorted(known)) if known else "none: the config has no models section"
        raise InvalidKeyOptionError("models", f"models the config serves ({served})", ", ".join(unknown))
    return out


def check_server_secret(value: str | bytes, source: str) -> bytes:
    """The server secret as bytes, or an error naming `source` (where it came from) when it is too short."""
    raw = value.encode() if isinstance(value, str) else bytes(value)
    raw = raw.strip()
    if len(raw) < MIN_SERVER_SECRET_CHARS:
        raise KeySecretError(
            f"{source}: the server secret for API keys must be at least {MIN_SERVER_SECRET_CHARS} characters, "
            f"got {len(raw)} (make one with: python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return raw


def read_or_create_secret_file(path: Path) -> bytes:
    """The secret file's contents, creating it (0600, atomically) if absent; refuses a file others can read."""
    if not path.exists():
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, secrets.token_hex(32).encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # atomic and never overwrites: concurrent first uses agree on one file
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    if os.name == "posix" and path.stat().st_mode & 0o077:
        raise KeySecretError(
            f"{path}: the API key server secret is readable by other users (mode "
            f"{path.stat().st_mode & 0o777:o}); run chmod 600 {path}"
        )
    return path.read_bytes()
