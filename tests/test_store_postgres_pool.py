"""The PostgreSQL store's reader pool: bounded, checked on checkout, and one clear error when it cannot serve."""

from __future__ import annotations

import threading
import time

import pytest

from aisre.errors import StoreError
from aisre.records import InferenceRecord

from .postgres_helpers import pg_server, running_postgres  # noqa: F401 - the session's PostgreSQL


def _store(url: str, **kwargs: object):
    from aisre.store.postgres import PostgresStore

    return PostgresStore(url, **kwargs)  # type: ignore[arg-type]


def test_readers_on_many_threads_share_at_most_pool_size_connections(pg_server) -> None:  # noqa: F811
    store = _store(pg_server.create_schema(), pool_size=2)
    try:
        store.write_batch([InferenceRecord(model="fraud", version="v1", id=f"r{i}") for i in range(5)], durable=True)
        backends: set[int] = set()
        counts: list[int] = []
        failures: list[BaseException] = []

        def read() -> None:
            try:
                for _ in range(15):
                    ((pid, _),) = store._fetch("which backend", "SELECT pg_backend_pid(), pg_sleep(0.002)")
                    backends.add(pid)
                    counts.append(store.count())
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                failures.append(exc)

        threads = [threading.Thread(target=read) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert failures == []
        assert counts == [5] * 8 * 15
        assert 1 <= len(backends) <= 2  # eight threads, two connections (a connection per thread would be eight)
    finally:
        store.close()


def test_a_reader_finding_every_pooled_connection_busy_is_told_to_raise_pool_size(pg_server) -> None:  # noqa: F811
    store = _store(pg_server.create_schema(), pool_size=1, connect_timeout_s=1.0)
    try:
        with store.session("holding the only connection"):
            with pytest.raises(StoreError, match=r"all 1 pooled connections are busy.*pool_size"):
                store.count()
        assert store.count() == 0  # given back: the next read gets it
    finally:
        store.close()


def test_a_stopped_database_is_one_quick_error_naming_the_url_without_its_password_and_a_restart_is_absorbed() -> None:
    with running_postgres(fsync=False) as server:
        url = f"postgresql://aisre:hunter2@127.0.0.1:{server.port}/postgres"
        store = _store(url, connect_timeout_s=30.0)
        try:
            store.write_batch([InferenceRecord(model="fraud", version="v1", id="a")], durable=True)
            assert store.count() == 1
            server.stop()
            started = time.monotonic()
            with pytest.raises(StoreError) as refused:
                store.count()
            # Not the 30 s checkout timeout: the pool's failed attempt to reconnect ends the wait.
            assert time.monotonic() - started < 20
            message = str(refused.value)
            assert f"PostgreSQL store postgresql://aisre:***@127.0.0.1:{server.port}/postgres" in message
            assert "the database is unreachable" in message and "hunter2" not in message
            with pytest.raises(StoreError, match=r"opening the store failed") as at_open:
                _store(url, connect_timeout_s=2.0)
            assert "hunter2" not in str(at_open.value) and "aisre:***@" in str(at_open.value)
            server.start()
            assert store.count() == 1  # the pool reconnects by itself: the same store object reads again
            store.write_batch([InferenceRecord(model="fraud", version="v1", id="b")], durable=True)
            assert store.count() == 2
        finally:
            store.close()


def test_store_pool_size_in_aisre_yaml_bounds_the_recorders_reader_pool(pg_server, tmp_path) -> None:  # noqa: F811
    import aisre

    url = pg_server.create_schema()
    path = tmp_path / "aisre.yaml"
    path.write_text(f"store: {{url: '{url}', pool_size: 3}}\n")
    recorder = aisre.Recorder.from_config(aisre.load_config(path))
    try:
        assert recorder.store._readers._pool.max_size == 3
    finally:
        recorder.close()
    path.write_text(f"store: {{url: '{url}', pool_size: 0}}\n")
    with pytest.raises(aisre.ConfigError, match="pool_size"):
        aisre.load_config(path)
