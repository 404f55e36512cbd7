"""A process killed with SIGKILL keeps every record it had acknowledged (durable mode)."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
from pathlib import Path

from aisre import open_store

from .conftest import PYTHON

CHILD = textwrap.dedent(
    """
    import sys, threading
    import aisre
    monitor = aisre.Monitor("fraud", "v1", store=sys.argv[1], durability="durable")
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


def test_sigkill_loses_no_acknowledged_record(tmp_path: Path):
    db = tmp_path / "crash.db"
    child = subprocess.Popen([PYTHON, "-c", CHILD, f"sqlite:///{db}"], stdout=subprocess.PIPE, text=True)
    acked: list[str] = []
    for line in child.stdout:
        acked.append(line.strip())
        if len(acked) >= 600:
            break
    os.kill(child.pid, signal.SIGKILL)
    acked.extend(line.strip() for line in child.stdout)  # acknowledged just before death
    child.wait(10)
    assert child.returncode == -signal.SIGKILL
    store = open_store(f"sqlite:///{db}")
    assert store.missing_ids(acked) == []
    assert store.count() >= len(acked)
    store.close()
