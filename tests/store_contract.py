"""The `Store` contract, run against every backend (`sqlite`, `postgresql`): same inputs, same outputs.

`tests/test_store_contract.py` collects these tests; the `store` fixture here is parametrised over
the backends, each a fresh empty store (a SQLite file in tmp_path, a new database on the session's
PostgreSQL server).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aisre import open_store
from aisre.errors import UnknownRecordError
from aisre.records import InferenceRecord, Label, Route, Signal, Status
from aisre.store.base import RecordFilter
from aisre.store.writer import BatchingWriter

from .postgres_helpers import PostgresServer

BACKENDS = ["sqlite", "postgresql"]


def backend_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'aisre.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_schema()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return backend_url(request.param, tmp_path, request)


@pytest.fixture
def store(store_url: str) -> Iterator:
    s = open_store(store_url)
    yield s
    s.close()


def rec(i: int, **kw) -> InferenceRecord:
    fields = {
        "model": "fraud",
        "version": "v1",
        "inputs": {"amount": float(i), "country": "FR"},
        "prediction": i % 2,
        "latency_s": 0.001 * i,
        "ts": 1_000.0 + i,
        "id": f"r{i:04d}",
    }
    fields.update(kw)
    return InferenceRecord(**fields)


def ids(records) -> list[str]:
    return [r.id for r in records]


def test_a_record_reads_back_equal_field_for_field(store) -> None:
    llm = InferenceRecord(
        model="chat",
        version="2",
        inputs={"messages": [{"role": "user", "content": "héllo \u0000 nul and \n newline"}], "n": 2**70},
        prediction=None,
        scores=[0.25, 0.75],
        output_text="réponse ✓",
        operation="chat",
        route=Route.CANARY,
        status=Status.ERROR,
        error="upstream 502",
        latency_s=1.5,
        ttft_s=0.2,
        tpot_s=0.01,
        input_tokens=12,
        output_tokens=34,
        cost_usd=0.00042,
        key_id="k1",
        trace_id="t" * 32,
        replica="b",
        tags={"team": "risk"},
        ts=1_700_000_000.123456,
        id="llm-1",
    )
    plain = rec(1)
    store.write_batch([llm, plain], durable=True)
    got = store.get("llm-1")
    assert got is not None
    assert got.inputs["messages"][0]["content"] == "héllo \u0000 nul and \n newline"
    assert got.inputs["n"] == str(2**70)  # beyond 64 bits: kept as its string form, as the codec says
    llm.inputs["n"] = str(2**70)
    assert got == llm
    assert store.get(plain.id) == plain
    assert store.get("nope") is None


def test_a_duplicate_id_is_stored_once_and_the_first_write_wins(store) -> None:
    store.write_batch([rec(1), rec(2), rec(1, prediction=99)], durable=False)
    store.write_batch([rec(2, prediction=77), rec(3)], durable=True)
    assert store.count() == 3
    assert ids(store.records()) == ["r0001", "r0002", "r0003"]
    assert store.get("r0001").prediction == 1
    assert store.get("r0002").prediction == 0


def test_a_large_batch_resent_whole_adds_only_its_new_records_in_batch_order(store) -> None:
    # large batches take PostgreSQL's COPY path; a resent one (a retry after a lost COMMIT) meets the unique id
    first = [rec(i, ts=5_000.0) for i in range(100)]
    store.write_batch(first, durable=True)
    store.write_batch(first + [rec(i, ts=5_000.0) for i in range(100, 150)], durable=False)
    inner = [rec(i, ts=6_000.0) for i in range(200, 300)]
    store.write_batch(inner + [rec(200, ts=6_000.0, prediction=42)], durable=False)  # repeated inside one batch
    assert store.count() == 250
    assert ids(store.records()) == [f"r{i:04d}" for i in (*range(150), *range(200, 300))]  # same ts: batch order
    assert store.get("r0200").prediction == 0


def test_filters_select_by_model_version_and_half_open_time_range(store) -> None:
    batch = [rec(i, version="v1" if i % 2 else "v2") for i in range(10)] + [
        rec(100 + i, model="other") for i in range(3)
    ]
    store.write_batch(batch, durable=False)
    assert store.count() == 13
    assert store.count(RecordFilter(model="fraud")) == 10
    assert ids(store.records(RecordFilter(model="fraud", version="v1"))) == [f"r{i:04d}" for i in (1, 3, 5, 7, 9)]
    window = RecordFilter(model="fraud", since=1_002.0, until=1_005.0)  # since included, until excluded
    assert ids(store.records(window)) == ["r0002", "r0003", "r0004"]
    assert store.count(window) == 3
    assert store.count(RecordFilter(model="absent")) == 0
    assert store.records(RecordFilter(since=5_000.0)) == []


def test_records_are_ordered_by_time_then_by_arrival(store) -> None:
    # same ts for three records: arrival (batch) order breaks the tie, in both directions
    store.write_batch([rec(5), rec(1, ts=2_000.0), rec(2, ts=2_000.0), rec(3, ts=2_000.0), rec(0)], durable=False)
    assert ids(store.records()) == ["r0000", "r0005", "r0001", "r0002", "r0003"]
    assert ids(store.records(newest_first=True)) == ["r0003", "r0002", "r0001", "r0005", "r0000"]
    assert ids(store.records(limit=2)) == ["r0000", "r0005"]
    assert ids(store.records(limit=2, newest_first=True)) == ["r0003", "r0002"]
    chunks = list(store.iter_records(chunk_size=2))
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert [r.id for c in chunks for r in c] == ids(store.records())
    assert list(store.iter_records(RecordFilter(model="absent"))) == []


def test_labels_attach_replace_and_join_records(store) -> None:
    store.write_batch([rec(i) for i in range(4)], durable=False)
    store.add_labels([Label("r0001", 1, 5.0), Label("r0002", {"class": "a"}, 6.0)])
    store.add_labels([Label("r0001", 0, 7.0)])  # a later label replaces the earlier one
    store.add_labels([Label("r0003", "x", 8.0), Label("r0003", "y", 9.0)])  # repeated in one call: the last wins
    assert store.labels_for(["r0001", "r0002", "r0000", "zzz"]) == {
        "r0001": Label("r0001", 0, 7.0),
        "r0002": Label("r0002", {"class": "a"}, 6.0),
    }
    assert store.labels_for(["r0003"]) == {"r0003": Label("r0003", "y", 9.0)}
    joined = store.labeled_records()
    assert [(r.id, label.value) for r, label in joined] == [("r0001", 0), ("r0002", {"class": "a"}), ("r0003", "y")]
    everything = store.labeled_records(only_labeled=False)
    assert [(r.id, None if label is None else label.value) for r, label in everything] == [
        ("r0000", None),
        ("r0001", 0),
        ("r0002", {"class": "a"}),
        ("r0003", "y"),
    ]
    assert store.label_count() == 3
    assert store.labeled_records(RecordFilter(model="fraud", since=1_002.0)) == joined[1:]


def test_labels_with_an_unknown_id_are_rejected_all_or_nothing(store) -> None:
    store.write_batch([rec(1), rec(2)], durable=True)
    with pytest.raises(UnknownRecordError) as caught:
        store.add_labels([Label("r0001", 1, 1.0), Label("ghost", 1, 1.0), Label("ghost2", 0, 1.0)])
    assert caught.value.record_ids == ["ghost", "ghost2"]
    assert store.labels_for(["r0001"]) == {}  # the known id was not labelled either
    store.add_labels([])  # nothing to do, no error
    assert store.label_count() == 0


def test_missing_ids_keeps_the_order_asked_and_names_each_once(store) -> None:
    store.write_batch([rec(1), rec(3)], durable=False)
    assert store.missing_ids(["r0004", "r0001", "r0002", "r0004", "r0003"]) == ["r0004", "r0002"]
    assert store.missing_ids([]) == []


def test_prune_deletes_old_records_and_their_labels_only(store) -> None:
    store.write_batch([rec(i) for i in range(10)], durable=False)
    store.add_labels([Label("r0002", 1, 1.0), Label("r0008", 1, 1.0)])
    assert store.prune(1_005.0, chunk=2) == 5  # several short transactions
    assert ids(store.records()) == [f"r{i:04d}" for i in range(5, 10)]
    assert store.labels_for(["r0002", "r0008"]) == {"r0008": Label("r0008", 1, 1.0)}
    assert store.prune(1_005.0) == 0


def test_retention_is_applied_by_maintain(store_url: str) -> None:
    s = open_store(store_url, retention_days=1)
    try:
        s.write_batch([rec(0, ts=0.0), rec(1, ts=2 * 86_400.0)], durable=False)
        s.maintain(2.5 * 86_400.0)
        assert ids(s.records()) == ["r0001"]
    finally:
        s.close()


def test_signals_round_trip_filtered_and_oldest_first(store) -> None:
    a = Signal("fraud", "v1", "psi", 0.3, 0.2, True, {"column": "amount", "method": "psi"}, 10.0, 20.0)
    b = Signal("fraud", "v2", "accuracy", 0.9, None, False, {}, None, None)
    c = Signal("other", "v1", "psi", 0.1, 0.2, False, {"column": "x"})
    store.write_signals([a, b], ts=100.0)
    store.write_signals([c], ts=50.0)
    store.write_signals([], ts=1.0)
    assert store.signals() == [(50.0, c), (100.0, a), (100.0, b)]
    assert store.signals(model="fraud") == [(100.0, a), (100.0, b)]
    assert store.signals(name="psi", since=60.0) == [(100.0, a)]
    assert store.signals(model="fraud", version="v2") == [(100.0, b)]


def test_summary_readers_agree(store) -> None:
    store.write_batch(
        [
            rec(1, key_id="k1", cost_usd=0.5, input_tokens=3, output_tokens=4),
            rec(2, version="v2", status=Status.ERROR),
            rec(3, model="chat", key_id="k2"),
        ],
        durable=False,
    )
    assert store.model_versions() == [("chat", "v1", 1), ("fraud", "v1", 1), ("fraud", "v2", 1)]
    assert sorted(store.latency_rows(RecordFilter(model="fraud"))) == [
        ("fraud", "v1", "ok", 0.001, 0.5),
        ("fraud", "v2", "error", 0.002, None),
    ]
    assert sorted(store.key_rows(), key=str) == sorted(
        [
            ("k1", "fraud", "ok", 0.5, 3, 4),
            (None, "fraud", "error", None, None, None),
            ("k2", "chat", "ok", None, None, None),
        ],
        key=str,
    )


def test_window_readers_of_the_monitoring_jobs_agree_with_records(store) -> None:
    batch = [rec(i, version=("v1", "v2", "v3")[i % 3], ts=1_000.0 + i // 2) for i in range(30)]
    store.write_batch(batch, durable=False)
    window = RecordFilter(model="fraud", since=1_003.0, until=1_010.0)
    expected = store.records(window)
    assert store.versions_between("fraud", 1_003.0, 1_010.0) == ["v1", "v2", "v3"]
    assert store.versions_between("fraud", 1_000.0, 1_000.5) == ["v1", "v2"]
    assert store.indexed_count(window) == len(expected) == 14
    assert ids(store.indexed_records(window)) == ids(expected)
    lines = store.body_lines(window).split(b"\n")
    assert len(lines) == 14 and b'"amount":' in lines[0]
    keys = store.nth_records(window, 0, limit=100)
    assert [ts for ts, _ in keys] == [r.ts for r in expected]
    assert store.nth_records(window, 3, start=keys[2], limit=2) == keys[5:7]
    assert store.nth_records(window, 0, newest_first=True) == [keys[-1]]
    assert store.nth_records(window, 1, start=keys[-1], newest_first=True) == [keys[-2]]
    assert store.nth_records(window, 14) == []


def test_the_batching_writer_commits_into_the_store(store) -> None:
    writer = BatchingWriter([store], durability="durable", batch_size=50, flush_interval_s=0.01)
    try:
        accepted = writer.submit_many([rec(i) for i in range(120)])
        assert writer.submit(rec(500))
        writer.flush()
    finally:
        writer.close()
    assert accepted == 120
    assert writer.stats().written == 121


def test_the_schema_is_migrated_once_and_recorded(store_url: str) -> None:
    from aisre.store import migrations

    stores = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(open_store(store_url))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]  # many starting on an empty database at once
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    reader = stores[0]
    try:
        if store_url.startswith("sqlite"):
            rows = reader._conn().execute("SELECT version, description FROM schema_migrations").fetchall()
            meta = reader._conn().execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        else:
            rows = reader._connection().execute("SELECT version, description FROM schema_migrations").fetchall()
            meta = reader._connection().execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        assert [tuple(r) for r in rows] == [(m.version, m.description) for m in migrations.MIGRATIONS]
        assert meta[0] == str(migrations.LATEST)
    finally:
        for s in stores:
            s.close()
