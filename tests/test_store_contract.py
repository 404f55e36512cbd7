"""The store contract (tests/store_contract.py) on SQLite and PostgreSQL, plus schema migration cases."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from aisre import open_store
from aisre.errors import StoreError
from aisre.store import migrations

from .postgres_helpers import PostgresServer, pg_server  # noqa: F401 - the session's PostgreSQL
from .store_contract import *  # noqa: F403 - the contract's tests and fixtures
from .store_contract import rec


def test_an_existing_sqlite_file_from_before_migrations_is_adopted_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(migrations.MIGRATIONS[0].sqlite)  # the schema every SQLite store had before #12
    conn.execute(
        "INSERT INTO inferences (id, ts, model, version, route, status, body) VALUES"
        " ('old-1', 5.0, 'fraud', 'v1', 'primary', 'ok', '{\"inputs\":{\"a\":1},\"prediction\":1}')"
    )
    conn.commit()
    conn.close()
    store = open_store(f"sqlite:///{path}")
    try:
        assert [r.id for r in store.records()] == ["old-1"]
        versions = store._conn().execute("SELECT version FROM schema_migrations").fetchall()
        assert versions == [(m.version,) for m in migrations.MIGRATIONS]  # every version recorded, none re-run
    finally:
        store.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_database_migrated_by_a_newer_aisre_is_refused(backend: str, tmp_path: Path, request) -> None:
    from .store_contract import backend_url

    url = backend_url(backend, tmp_path, request)
    open_store(url).close()
    if backend == "sqlite":
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        conn.execute("INSERT INTO schema_migrations VALUES (999, 'from the future', 0)")
        conn.commit()
        conn.close()
    else:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("INSERT INTO schema_migrations VALUES (999, 'from the future', 0)")
    with pytest.raises(StoreError, match="version 999, newer than this aisre knows"):
        open_store(url)


def test_a_store_url_of_another_kind_is_refused_naming_both_forms() -> None:
    with pytest.raises(StoreError, match=r"expected 'sqlite:///PATH' or 'postgresql://user@host:port/db'"):
        open_store("mysql://db/x")


def test_an_unreachable_postgresql_server_is_a_store_error_naming_the_url_without_its_password() -> None:
    from tests.conftest import free_port

    url = f"postgresql://aisre:s3cret@127.0.0.1:{free_port()}/aisre"
    with pytest.raises(StoreError) as caught:
        open_store(url)
    message = str(caught.value)
    assert "postgresql://aisre:***@127.0.0.1" in message and "s3cret" not in message
    assert "opening the store failed" in message


def test_a_missing_database_is_a_store_error_naming_it(pg_server: PostgresServer) -> None:  # noqa: F811
    with pytest.raises(StoreError, match='database "nowhere" does not exist'):
        open_store(pg_server.url("nowhere"))


@pytest.mark.parametrize(
    "feature",
    [lambda s: s._conn(), lambda s: os.fspath(s)],
    ids=["sqlite-connection", "file-path"],
)  # keys, registry, incidents, evaluations work on PostgreSQL: test_store_postgres_keys.py, test_store_postgres_tables.py
def test_sqlite_only_features_on_a_postgresql_store_raise_a_store_error_naming_issue_12_when_set_up(
    pg_server: PostgresServer,  # noqa: F811
    feature,
) -> None:
    store = open_store(pg_server.create_schema())
    try:
        with pytest.raises(StoreError, match=r"not available on a PostgreSQL store yet \(issue #12"):
            feature(store)
        store.write_batch([rec(1)], durable=True)  # the log itself works
        assert store.count() == 1
    finally:
        store.close()
