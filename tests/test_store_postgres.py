"""PostgreSQL store specifics beyond the shared contract: the optional dependency, URL redaction, NUL text,
the CLI on a postgresql:// store, several writer processes on one database."""

from __future__ import annotations

import subprocess
import textwrap

from aisre.store.postgres import redact

from .conftest import PYTHON
from .postgres_helpers import pg_server  # noqa: F401 - the session's PostgreSQL


def test_a_postgresql_url_without_psycopg_names_the_extra_to_install() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["psycopg"] = None  # as if aisre[postgres] were not installed
        from aisre import open_store
        from aisre.errors import MissingDependencyError
        try:
            open_store("postgresql://aisre@127.0.0.1:5432/aisre")
        except MissingDependencyError as exc:
            print(exc)
        """
    )
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "the PostgreSQL store needs the optional package 'psycopg'" in out.stdout
    assert "pip install 'aisre[postgres]'" in out.stdout


def test_redaction_hides_only_the_password() -> None:
    assert redact("postgresql://u:pw@db.example:5432/x?sslmode=require") == (
        "postgresql://u:***@db.example:5432/x?sslmode=require"
    )
    assert redact("postgresql://u@db/x") == "postgresql://u@db/x"
    assert redact("postgresql://u:p%40ss@[::1]:5432/x") == "postgresql://u:***@[::1]:5432/x"


def test_a_nul_character_in_a_text_column_is_replaced_not_a_batch_stuck_forever(pg_server) -> None:  # noqa: F811
    from aisre import open_store
    from aisre.records import InferenceRecord

    store = open_store(pg_server.create_schema())
    try:
        bad = InferenceRecord(model="fr\x00aud", version="v1", inputs={"t": "a\x00b"}, key_id="k\x00", id="nul-1")
        store.write_batch([bad, InferenceRecord(model="fraud", version="v1", id="ok-1")], durable=True)
        got = store.get("nul-1")
        assert got is not None and got.model == "fr\ufffdaud" and got.key_id == "k\ufffd"
        assert got.inputs == {"t": "a\x00b"}  # inside the JSON body it is escaped, kept exactly
        assert store.count() == 2
    finally:
        store.close()


def _aisre(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "aisre", *args], capture_output=True, text=True, timeout=120)


def test_the_log_and_keys_commands_read_a_postgresql_store(pg_server) -> None:  # noqa: F811
    from aisre import open_store
    from aisre.records import InferenceRecord

    url = pg_server.create_schema()
    store = open_store(url)
    store.write_batch(
        [InferenceRecord(model="fraud", version="v7", inputs={"a": i}, latency_s=0.01, id=f"c{i}") for i in range(5)],
        durable=True,
    )
    store.close()
    tail = _aisre("log", "tail", "--store", url, "-n", "2")
    assert tail.returncode == 0, tail.stderr
    assert "c4" in tail.stdout and "fraud" in tail.stdout
    stats = _aisre("log", "stats", "--store", url)
    assert stats.returncode == 0, stats.stderr
    assert "v7" in stats.stdout
    keys = _aisre("keys", "list", "--store", url)  # API keys live in PostgreSQL too (test_store_postgres_keys.py)
    assert keys.returncode == 0, keys.stderr
    assert "no API keys" in keys.stdout


WRITER = textwrap.dedent(
    """
    import sys
    from aisre.records import InferenceRecord
    from aisre.store import BatchingWriter, open_store
    url, name = sys.argv[1], sys.argv[2]
    writer = BatchingWriter([open_store(url)], durability="fast", batch_size=200, flush_interval_s=0.01)
    own = [InferenceRecord(model="fraud", version=name, inputs={"i": i}, id=f"{name}-{i}") for i in range(1500)]
    shared = [InferenceRecord(model="fraud", version=name, inputs={"i": i}, id=f"shared-{i}") for i in range(100)]
    for start in range(0, 1500, 300):  # the shared ids go in with every other batch: concurrent conflicts
        writer.submit_many(own[start : start + 300] + (shared if start % 600 == 0 else []))
    writer.close()
    print(writer.stats().written, writer.stats().dropped)
    """
)


def test_several_processes_writing_one_database_store_every_record_exactly_once(pg_server) -> None:  # noqa: F811
    from aisre import open_store

    url = pg_server.create_schema()
    open_store(url).close()  # migrated once; the writers could also race to do it (see the contract suite)
    procs = [
        subprocess.Popen(
            [PYTHON, "-c", WRITER, url, f"p{n}"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for n in range(3)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outs]
    assert all(out.split()[1] == "0" for out, _ in outs)  # nothing dropped
    store = open_store(url)
    try:
        assert store.count() == 3 * 1500 + 100
        for n in range(3):
            assert store.missing_ids([f"p{n}-{i}" for i in range(1500)]) == []
        assert store.missing_ids([f"shared-{i}" for i in range(100)]) == []
        assert [v for _, v, _ in store.model_versions()] == ["p0", "p1", "p2"]
    finally:
        store.close()


def test_the_start_up_check_passes_every_feature_and_would_name_one_still_sqlite_only(monkeypatch) -> None:
    import pytest

    from aisre.config import AisreConfig
    from aisre.errors import StoreError
    from aisre.store import postgres

    default = AisreConfig()
    everything = default.model_copy(
        update={
            "slos": [object()],
            "breakers": [object()],
            "monitors": [object()],
            "auth": default.auth.model_copy(update={"enabled": True}),
        }
    )
    postgres.check_config(everything)  # SLO buckets, rollups, keys, registry, incidents, monitors: all on PostgreSQL
    monkeypatch.setattr(postgres, "sqlite_only_config", lambda cfg: ["feature.x (why)", "feature.y (why)"])
    with pytest.raises(StoreError) as caught:
        postgres.check_config(everything)
    assert "feature.x (why); feature.y (why)" in str(caught.value) and "issue #12" in str(caught.value)
