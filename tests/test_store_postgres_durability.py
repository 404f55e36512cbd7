"""PostgreSQL store under failure: a writer SIGKILLed in durable mode, the database restarted mid-run.

Each test runs against its own PostgreSQL server (module scope), so restarting it disturbs no other test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator

import pytest

from aisre import open_store
from aisre.records import InferenceRecord
from aisre.store.base import RecordFilter
from aisre.store.writer import BatchingWriter

from .conftest import PYTHON
from .postgres_helpers import PostgresServer, running_postgres

CHILD = textwrap.dedent(
    """
    import sys, threading
    import aisre
    from aisre.store import open_store
    monitor = aisre.Monitor("fraud", "v1", store=open_store(sys.argv[1]), durability="durable")
    lock = threading.Lock()
    def work(worker):
        i = 0
        while True:
            rid = monitor.record({"worker": worker, "i": i}, prediction=i % 2, latency_s=0.001)
            with lock:  # printed only after record() returned: the acknowledgement
                sys.stdout.write(rid + "\\n")
                sys.stdout.flush()
            i += 1
    for w in range(3):
        threading.Thread(target=work, args=(w,), daemon=True).start()
    threading.Event().wait()
    """
)


@pytest.fixture(scope="module")
def own_server() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


def test_sigkill_of_a_durable_writer_loses_no_acknowledged_record(own_server: PostgresServer) -> None:
    url = own_server.create_database()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), "src") if p)}
    child = subprocess.Popen([PYTHON, "-c", CHILD, url], stdout=subprocess.PIPE, text=True, env=env)
    acked: list[str] = []
    assert child.stdout is not None
    for line in child.stdout:
        acked.append(line.strip())
        if len(acked) >= 600:
            break
    os.kill(child.pid, signal.SIGKILL)
    acked.extend(line.strip() for line in child.stdout)  # acknowledged just before death
    child.wait(10)
    assert child.returncode == -signal.SIGKILL
    store = open_store(url)
    try:
        assert len(acked) >= 600
        assert store.missing_ids(acked) == []
        assert store.count() >= len(acked)
    finally:
        store.close()


@pytest.mark.parametrize("durability", ["durable", "fast"])
def test_a_database_restart_mid_run_is_absorbed_by_the_writer_with_nothing_lost_or_doubled(
    own_server: PostgresServer, durability: str
) -> None:
    url = own_server.create_database()
    store = open_store(url)
    writer = BatchingWriter(
        [store], durability=durability, batch_size=64, flush_interval_s=0.01, ack_timeout_s=120, block_timeout_s=120
    )
    submitted: list[str] = []
    restarted = threading.Event()
    failures: list[BaseException] = []

    def produce() -> None:
        i = 0
        try:
            # keep writing until well after the restart: some batches meet the server down or starting up
            while not restarted.is_set() or i < len(submitted_at_restart) + 300:
                r = InferenceRecord(model="fraud", version="v1", inputs={"i": i}, prediction=i % 2, id=f"rec-{i}")
                writer.submit_many([r, InferenceRecord(model="fraud", version="v1", inputs={"i": -i}, id=f"neg-{i}")])
                submitted.extend([f"rec-{i}", f"neg-{i}"])
                i += 1
                if durability == "fast":
                    time.sleep(0.001)  # a steady trickle (durable mode is paced by its commits): small data
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            failures.append(exc)

    submitted_at_restart: list[str] = []
    producer = threading.Thread(target=produce)
    producer.start()
    while len(submitted) < 400 and producer.is_alive():
        threading.Event().wait(0.01)
    own_server.restart()
    submitted_at_restart.extend(submitted)
    restarted.set()
    producer.join(180)
    assert not producer.is_alive()
    writer.flush(120)  # fast mode: what was accepted is committed, however many retries it took
    writer.close()
    assert failures == []
    stats = writer.stats()
    assert stats.write_errors >= 1  # the restart did interrupt writes: the retries absorbed it
    assert stats.dropped == 0 and stats.rejected == 0
    check = open_store(url)
    try:
        assert check.missing_ids(submitted) == []
        assert check.count() == len(submitted) == len(set(submitted))  # nothing doubled by a retried batch
    finally:
        check.close()


def test_the_gateway_keeps_answering_through_a_database_restart_and_records_every_call_once(
    own_server: PostgresServer, tmp_path
) -> None:
    import httpx

    from aisre.telemetry.recorder import Recorder
    from aisre.testing.openai_server import openai_app
    from aisre.testing.server import serve_in_thread
    from aisre.testing.settings import MockSettings

    from .gateway_helpers import RunningGateway, gateway_config

    url = own_server.create_database()
    upstream = serve_in_thread(openai_app(MockSettings(completion_tokens=4)))
    models = {"chat": {"protocol": "openai", "versions": {"v1": {"replicas": [f"{upstream.url}/v1"]}}}}
    cfg = gateway_config(tmp_path, models, gateway={"health_checks": {"enabled": False}}, dashboard={"enabled": False})
    recorder = Recorder(open_store(url), durability="fast")
    statuses: list[int] = []
    try:
        with RunningGateway(cfg, recorder) as gw, httpx.Client(base_url=gw.url, timeout=30) as client:

            def call() -> None:
                body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
                statuses.append(client.post("/v1/chat/completions", json=body).status_code)

            while len(statuses) < 20:
                call()
            caller = threading.Thread(target=lambda: [call() for _ in range(200)])  # across the restart
            caller.start()
            own_server.restart()
            caller.join(120)
            for _ in range(20):
                call()
            recorder.writer.flush(120)
        assert statuses == [200] * len(statuses) and len(statuses) == 240
        stats = recorder.writer.stats()
        assert stats.write_errors >= 1  # the restart broke the writer's connection: its retries absorbed it
        assert stats.dropped == 0 and stats.rejected == 0
        check = open_store(url)
        try:
            assert check.count(RecordFilter(model="chat")) == 240
        finally:
            check.close()
    finally:
        recorder.close()
        upstream.stop()
