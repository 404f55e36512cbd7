"""API keys on both backends (SQLite file, real PostgreSQL 15): one `KeyStore`, one set of rules, the same
behaviour; and what only PostgreSQL has: the server secret must come from the environment (no shared file),
and keys created on one host verify and revoke on another at once."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
from pathlib import Path

import pytest

from aisre.clock import ManualClock
from aisre.store import open_store
from aisre.store.keys import (
    DuplicateKeyNameError,
    ExpiredKeyError,
    KeyNotFoundError,
    KeySecretError,
    KeyStore,
    RevokedKeyError,
    UnknownKeyError,
)

from .conftest import PYTHON
from .postgres_helpers import pg_server  # noqa: F401 - the session's PostgreSQL
from .store_contract import BACKENDS, backend_url

SERVER_SECRET = "k" * 40


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request.param, tmp_path, request)


@pytest.fixture
def store(store_url: str):
    s = open_store(store_url)
    yield s
    s.close()


def _raw_rows(store) -> list[tuple]:
    if store_url_is_pg(store):
        with store._errors("test read"):
            return store._connection().execute("SELECT id, name, hash FROM api_keys").fetchall()
    return store._conn().execute("SELECT id, name, hash FROM api_keys").fetchall()


def store_url_is_pg(store) -> bool:
    return type(store).__name__ == "PostgresStore"


def test_a_created_key_verifies_and_only_its_keyed_hash_is_stored(store) -> None:
    keys = KeyStore(store, server_secret=SERVER_SECRET)
    record, secret = keys.create("svc", models=["fraud"], rpm=60, budget_usd=5.0, budget_period="daily")
    assert keys.verify(secret) == record and record.allows("fraud") and not record.allows("churn")
    assert keys.get(record.id) == record and keys.list() == [record]
    [(key_id, name, digest)] = _raw_rows(store)
    assert (key_id, name) == (record.id, "svc") and secret not in digest
    assert digest == hmac.digest(SERVER_SECRET.encode(), secret.encode(), "sha256").hex()
    assert digest != hashlib.sha256(secret.encode()).hexdigest()


def test_wrong_unknown_and_malformed_secrets_are_one_refusal(store) -> None:
    keys = KeyStore(store, server_secret=SERVER_SECRET)
    record, secret = keys.create("svc")
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    unknown_id = secret.replace(record.id, "key_000000000000")
    for bad in (tampered, unknown_id, "sk-aisre-nope", "", "x" * 4096):
        with pytest.raises(UnknownKeyError):
            keys.verify(bad)


def test_revocation_and_expiry_refuse_and_a_name_is_free_again_after_revoking(store) -> None:
    clock = ManualClock(1_000.0)
    keys = KeyStore(store, server_secret=SERVER_SECRET, clock=clock)
    live, secret = keys.create("svc")
    with pytest.raises(DuplicateKeyNameError):
        keys.create("svc")
    assert keys.revoke("svc").revoked_at == 1_000.0
    clock.advance(5)
    assert keys.revoke(live.id).revoked_at == 1_000.0, "revoking twice keeps the first time"
    with pytest.raises(RevokedKeyError):
        keys.verify(secret)
    again, _ = keys.create("svc", expires_at=1_010.0)
    assert [k.id for k in keys.list()] == [again.id]
    assert [k.id for k in keys.list(include_revoked=True)] == [live.id, again.id]
    with pytest.raises(KeyNotFoundError):
        keys.revoke("nobody")
    clock.advance(10)
    expiring_secret = keys.create("short", expires_at=clock.now() + 1)[1]
    clock.advance(2)
    with pytest.raises(ExpiredKeyError):
        keys.verify(expiring_secret)


def test_a_revocation_by_one_keystore_is_refused_by_another_at_once(store, store_url: str) -> None:
    here = KeyStore(store, server_secret=SERVER_SECRET)
    elsewhere = KeyStore(store_url, server_secret=SERVER_SECRET)  # its own connections: another process's view
    try:
        record, secret = here.create("svc")
        assert elsewhere.verify(secret).id == record.id
        here.revoke(record.id)
        with pytest.raises(RevokedKeyError):
            elsewhere.verify(secret)
    finally:
        elsewhere.close()


def test_on_postgresql_the_server_secret_must_come_from_the_environment(pg_server, monkeypatch) -> None:  # noqa: F811
    monkeypatch.delenv("AISRE_KEY_SECRET", raising=False)
    keys = KeyStore(pg_server.create_schema())
    try:
        assert keys.secret_file is None
        with pytest.raises(KeySecretError, match=r"\$AISRE_KEY_SECRET is not set: API keys on a PostgreSQL store"):
            keys.create("svc")
        monkeypatch.setenv("AISRE_KEY_SECRET", SERVER_SECRET)
        _, secret = keys.create("svc")
        assert keys.verify(secret).name == "svc" and keys.server_secret_source == "$AISRE_KEY_SECRET"
    finally:
        keys.close()


def test_the_keys_cli_creates_on_postgresql_and_a_key_made_there_verifies_in_python(pg_server, tmp_path) -> None:  # noqa: F811
    url = pg_server.create_schema()
    env = {**{k: v for k, v in os.environ.items() if k != "AISRE_CONFIG"}, "AISRE_KEY_SECRET": SERVER_SECRET}

    def cli(*args: str) -> subprocess.CompletedProcess:
        cmd = [PYTHON, "-m", "aisre", "keys", *args, "--store", url]
        return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)

    made = cli("create", "--name", "svc")
    assert made.returncode == 0, made.stderr
    secret = next(w for w in made.stdout.split() if w.startswith("sk-aisre-"))
    keys = KeyStore(url, server_secret=SERVER_SECRET)
    try:
        assert keys.verify(secret).name == "svc"
        listed = cli("list")
        assert listed.returncode == 0 and "svc" in listed.stdout and "***" not in listed.stdout
        assert cli("revoke", "svc").returncode == 0
        with pytest.raises(RevokedKeyError):
            keys.verify(secret)
    finally:
        keys.close()
    assert not list(tmp_path.iterdir()), "no secret file or database file is left in the working directory"
